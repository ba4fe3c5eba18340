"""The viewer's routes: thin Starlette endpoints around avuie.view.app.Viewer, with the errors as pages.

Page work (DuckDB queries, byte-range reads, `review apply`) runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs

import anyio
from starlette.responses import HTMLResponse, JSONResponse, Response

from avuie.shards.guard import PathRejected, os_error_response
from avuie.view.auth import same_origin
from avuie.view.html import esc, layout
from avuie.view.tarread import SampleMissing

MAX_FORM_BYTES = 1 << 20
_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")
CACHED = {"Cache-Control": "private, max-age=60"}


def parse_form(body: bytes) -> dict[str, str]:
    """Decode an application/x-www-form-urlencoded body into {name: last value}."""
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


async def _page(render, *args) -> Response:
    """Run render(*args) in a worker thread; its HTML (or (HTML, status)) as a response, errors as pages."""
    try:
        body = await anyio.to_thread.run_sync(render, *args)
    except (LookupError, SampleMissing) as error:
        return HTMLResponse(layout("Not found", f"<p>{esc(error)}</p>"), status_code=404)
    except PathRejected as error:
        return HTMLResponse(layout("Refused", f"<p>{esc(error.reason)}</p>"), status_code=error.status)
    if isinstance(body, tuple):
        return HTMLResponse(body[0], status_code=body[1])
    return HTMLResponse(body)


async def _bytes(
    fetch, params: dict, media_type: str | None = None, byte_range: str | None = None
) -> Response:
    """Run fetch(params) in a worker thread: bytes (or (bytes, type)) as a response (one `byte_range` of them
    when the Range header asks, see `ranged`), a missing member as 404."""
    try:
        found = await anyio.to_thread.run_sync(fetch, params)
    except (LookupError, SampleMissing) as error:
        return Response(str(error), status_code=404, media_type="text/plain")
    except PathRejected as error:
        return Response(error.reason, status_code=error.status, media_type="text/plain")
    data, kind = found if isinstance(found, tuple) else (found, media_type)
    return ranged(data, kind, byte_range)


def ranged(data: bytes, kind: str | None, byte_range: str | None) -> Response:
    """`data` whole (200), or the one range a `Range: bytes=a-b | a- | -n` header asks (206 with Content-Range;
    416 when it starts past the end). A header naming several ranges, or one that does not parse, gets the
    whole body, as HTTP allows; every answer says Accept-Ranges, so a media element can seek."""
    size, headers = len(data), {**CACHED, "Accept-Ranges": "bytes"}
    match = _RANGE.fullmatch((byte_range or "").strip())
    if match is None or match.groups() == ("", "") or (all(match.groups()) and int(match[2]) < int(match[1])):
        return Response(data, media_type=kind, headers=headers)
    first, last = match.groups()
    start = max(0, size - int(last)) if first == "" else int(first)
    end = size - 1 if first == "" or last == "" else min(int(last), size - 1)
    if start >= size or (first == "" and int(last) == 0):
        return Response(b"", status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return Response(data[start : end + 1], status_code=206, media_type=kind, headers=headers)


async def _form(request) -> dict[str, str] | Response:
    """The posted form, or a refusal: 403 unless it comes from the viewer's own page, 413 when too large."""
    if not same_origin(request.headers):
        return Response("refused: the form must come from this viewer's own page", status_code=403)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return Response("form too large", status_code=413)
    return parse_form(body)


class Endpoints:
    """The endpoints of one Viewer."""

    def __init__(self, viewer):
        self.viewer = viewer

    async def browse(self, request):
        """GET /: the sample list."""
        return await _page(self.viewer.browse, dict(request.query_params))

    async def sample(self, request):
        """GET /sample: one sample's page."""
        return await _page(self.viewer.sample, dict(request.query_params))

    async def media(self, request):
        """GET /media: one member's bytes."""
        return await _bytes(
            self.viewer.member, dict(request.query_params), None, request.headers.get("range")
        )

    async def thumb(self, request):
        """GET /thumb: a JPEG thumbnail."""
        return await _bytes(self.viewer.thumb, dict(request.query_params), "image/jpeg")

    async def edit(self, request):
        """POST /edit: save an edit or a flag."""
        form = await _form(request)
        return form if isinstance(form, Response) else await _page(self.viewer.edit, form)

    async def apply(self, request):
        """POST /apply: apply every pending edit."""
        form = await _form(request)
        return form if isinstance(form, Response) else await _page(self.viewer.apply)

    async def review(self, request):
        """GET /review: the pending queue."""
        return await _page(self.viewer.review)

    async def rejects(self, request):
        """GET /rejects: the rejects table."""
        return await _page(self.viewer.rejects, dict(request.query_params))

    async def raw(self, request):
        """GET /raw: a reject's raw lines (HTML fragment)."""
        try:
            text = await anyio.to_thread.run_sync(self.viewer.raw, dict(request.query_params))
        except LookupError as error:
            return Response(str(error), status_code=404, media_type="text/plain")
        return HTMLResponse(text)

    async def stats(self, request):
        """GET /stats: charts and data card."""
        return await _page(self.viewer.stats)

    async def healthz(self, request):
        """GET /healthz: {"status": "ok"}."""
        return JSONResponse({"status": "ok"})


def routes(viewer, static_dir: Path):
    """Return the Starlette app of `viewer` (an avuie.view.app.Viewer); static files come from static_dir."""
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    e = Endpoints(viewer)
    return Starlette(
        routes=[
            Route("/", e.browse),
            Route("/sample", e.sample),
            Route("/media", e.media),
            Route("/thumb", e.thumb),
            Route("/edit", e.edit, methods=["POST"]),
            Route("/review", e.review),
            Route("/apply", e.apply, methods=["POST"]),
            Route("/rejects", e.rejects),
            Route("/raw", e.raw),
            Route("/stats", e.stats),
            Route("/healthz", e.healthz),
            Mount("/static", StaticFiles(directory=static_dir), name="static"),
        ],
        exception_handlers={OSError: os_error_response},
    )
