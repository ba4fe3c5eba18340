"""The viewer's web app (Starlette) and its server (uvicorn, with `avuie serve`'s connection guard and token rule).

Routes (all GET unless said; with a token every one needs it, see avuie.view.auth):
`/` browse, `/sample` one sample, `/media` and `/thumb` bytes of one member (by byte range from the tar),
`POST /edit` save an edit or flag, `/review` the pending queue, `POST /apply` apply it (`review apply`),
`/rejects` and `/raw` the rejects with their raw lines, `/stats` charts and data card, `/healthz`, `/static/*`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from avuie.shards.guard import PathRejected, ServerLimits
from avuie.shards.server import _base_url, _make_server, bind_socket
from avuie.view import pages, sample_page, stats_page
from avuie.view.auth import BrowserTokenGate, LoopbackHostGate, is_loopback
from avuie.view.edits import ReviewFiles
from avuie.view.html import esc, layout, link
from avuie.view.provenance import build_facts, raw_lines
from avuie.view.store import Filters, Store
from avuie.view.tarread import SampleMissing, ShardPages, media_type


class Viewer:
    """Everything the routes share: the query store, the byte-range reader and the review files."""

    def __init__(self, root: str | Path):
        self.store = Store(root)
        self.pages = ShardPages()
        self.reviews = ReviewFiles(self.store.builds)

    def pending_ids(self) -> set[str]:
        """Ids of every sample with a row in its build's review file."""
        return {row["id"] for rows in self.reviews.pending_all().values() for row in rows}

    def browse(self, params) -> str:
        """The browse page for query parameters params."""
        filters = Filters.from_params(params)
        page = self.store.samples(filters, _page_number(params))
        body = pages.browse_page(
            page, self.store.facets(), filters, self.store.text_columns, self.pending_ids()
        )
        return layout("Samples", body, "/")

    def sample(self, params, notice: str = "", error: bool = False, text: str | None = None) -> str:
        """The page of the sample named by params["build"], params["key"] (LookupError when there is none)."""
        build, key = params.get("build", ""), params.get("key", "")
        folder, tar, row = self.store.locate(build, key)
        data = self.pages.sample(tar, key)
        filters = Filters.from_params(params)
        pending = self.reviews.row_of(build, data["id"])
        if text is not None:
            pending = {**(pending or {}), "reasoning": text}
        before, after = self.store.neighbours(build, key, filters)
        back = pages.sample_href(build, key, filters)
        steps = " ".join(
            link(pages.sample_href(b, k, filters), label, id=f"{name}-sample")
            for (b, k), label, name in ((before, "« previous", "prev"), (after, "next »", "next"))
            if k
        )
        head = (
            f'<h1 id="sample-id">{esc(data["id"])}</h1><p>{esc(data["source"])} · {esc(data["split"])} · '
            f"{esc(data['family'])} · reasoning: {esc(row.get('reasoning_kind'))} {steps}</p>"
        )
        body = (
            head
            + '<div class="grid2"><div>'
            + sample_page.media_section(build, key, data)
            + sample_page.edit_section(build, key, data, pending, back)
            + "</div><div>"
            + sample_page.text_section(data)
            + sample_page.provenance_section(
                row, data, build_facts(folder, data["source"]), self.pages.sample_range(tar, key)
            )
            + "</div></div>"
        )
        return layout(data["id"], body, "/", notice, error)

    def member(self, params) -> tuple[bytes, str]:
        """(bytes, content type) of member params["m"] of a sample."""
        _, tar, _ = self.store.locate(params.get("build", ""), params.get("key", ""))
        name = params.get("m", "")
        return self.pages.read(tar, params["key"], name), media_type(name)

    def thumb(self, params) -> bytes:
        """A JPEG thumbnail of a sample's first frame or image (SampleMissing when it has none)."""
        key = params.get("key", "")
        _, tar, _ = self.store.locate(params.get("build", ""), key)
        names = [n for n in self.pages.members(tar, key) if n.endswith((".jpg", ".jpeg", ".png"))]
        pictures = [n for n in names if not n.startswith("mask")]
        if not pictures:
            raise SampleMissing(f"sample {key!r} has no picture")
        return self.pages.thumbnail(tar, key, sorted(pictures)[0])

    def edit(self, form: dict[str, str]) -> tuple[str, int]:
        """Save an edit; return (page HTML, status): the sample page with the outcome (422 when refused)."""
        build, key = form.get("build", ""), form.get("key", "")
        _, tar, _ = self.store.locate(build, key)
        outcome = self.reviews.save(
            build, tar, self.pages.sample(tar, key), form.get("reasoning", ""), "flagged" in form
        )
        params = {"build": build, "key": key}
        kept = None if outcome.ok else form.get("reasoning", "")
        return self.sample(params, outcome.message, not outcome.ok, kept), 200 if outcome.ok else 422

    def review(self) -> str:
        """The review queue page."""
        pending = self.reviews.pending_all()
        keys = {}
        for build, rows in pending.items():
            for row in rows:
                found = self.store.key_of(build, row["id"])
                if found:
                    keys[row["id"]] = found
        return layout("Review", pages.review_page(pending, keys), "/review")

    def apply(self) -> str:
        """Apply every pending edit; the outcome page."""
        return layout("Applied", pages.applied_page(self.reviews.apply_all()), "/review")

    def rejects(self, params) -> str:
        """The rejects page."""
        filters = Filters.from_params(params)
        page = self.store.rejects(filters, _page_number(params))
        return layout("Rejects", pages.rejects_page(page, self.store.facets(), filters), "/rejects")

    def raw(self, params) -> str:
        """An HTML fragment: the raw lines of a reject's annotation row."""
        folder = self.store.builds.get(params.get("build", ""))
        known = folder is not None and self.store.query(
            "SELECT source FROM rejects WHERE build_dir = ? AND annotation_file = ? AND annotation_row = ? LIMIT 1",
            [str(folder), params.get("file", ""), params.get("row", "")],
        )
        if not known:
            raise LookupError("no such rejected entry")  # only the lines of a listed reject are shown
        note, lines = raw_lines(folder, params["file"], params["row"], _first_source(known))
        return esc(note) + "\n" + "\n".join(f"{n:>6}  {esc(text)}" for n, text in lines)

    def stats(self) -> str:
        """The stats and data card page."""
        return layout("Stats and data card", stats_page.stats_page(self.store), "/stats")


def _first_source(rows: list[dict]) -> str:
    """The `source` of the first row of a store query's result."""
    return str(rows[0].get("source") or "") if rows else ""


def _page_number(params) -> int:
    try:
        return max(0, int(params.get("page", "1")) - 1)
    except ValueError:
        return 0


def create_view_app(
    root: str | Path, token: str | None = None, viewer: Viewer | None = None, host: str = "127.0.0.1"
):
    """Return the ASGI app of the viewer over the builds under root (with token: the serve token rule; listening
    on a loopback `host`: only loopback Host headers, see avuie.view.auth)."""
    from avuie.view.routes import routes

    viewer = viewer or Viewer(root)
    static = resources.files("avuie.view").joinpath("static")
    app = routes(viewer, Path(str(static)))
    app = BrowserTokenGate(app, token) if token else app
    return LoopbackHostGate(app) if is_loopback(host) else app


@dataclass
class ViewHandle:
    """A viewer running in a background thread: `.url`, `.viewer`, `.stop()`; a context manager."""

    url: str
    viewer: Viewer
    _server: object
    _thread: threading.Thread

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the server to exit and join its thread."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ViewHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _server_for(root, host, port, token, log_level: str = "warning"):
    viewer = Viewer(root)
    limits = ServerLimits()
    sock = bind_socket(host, port)
    server, _ = _make_server(create_view_app(root, token, viewer, host), log_level, limits)
    return viewer, sock, server, _base_url(host, sock.getsockname()[1])


def run_view(
    root: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    on_ready: Callable[[str, Viewer], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve the viewer until SIGTERM or Ctrl-C; on_ready gets the base URL and the Viewer."""
    viewer, sock, server, base = _server_for(root, host, port, token, log_level)
    if on_ready is not None:
        on_ready(base, viewer)
    server.run(sockets=[sock])


def view_in_thread(
    root: str | Path, host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> ViewHandle:
    """Start the viewer in a daemon thread and return once it accepts connections."""
    viewer, sock, server, base = _server_for(root, host, port, token)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="avuie-view")
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the viewer for {root} failed to start")
        thread.join(0.01)
    return ViewHandle(base, viewer, server, thread)


__all__ = ["PathRejected", "ViewHandle", "Viewer", "create_view_app", "run_view", "view_in_thread"]
