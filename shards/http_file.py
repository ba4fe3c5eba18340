"""Send a served file, whole or one byte range of it, with few thread hand-offs (the shard server's hot path).

Starlette's FileResponse opens, reads (in 1 MB chunks) and closes a file through a worker thread each time, about
nine hand-offs per ranged read; `ShardFile` reads up to READ_BYTES per hand-off (open + pread + close in one) and
sends each piece as one body message. It answers GET and HEAD without a Range header (200) and with one
satisfiable range `bytes=a-b`, `bytes=a-` or `bytes=-n` (206 + Content-Range). Anything else (several ranges,
unsatisfiable or malformed ranges, If-Range) is left to Starlette's FileResponse, which answers multipart, 416 or
400 as before. Headers (type, length, Last-Modified, ETag, Accept-Ranges) are FileResponse's own.
"""

from __future__ import annotations

import os
import re

READ_BYTES = 8 << 20
_SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def single_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return [start, end) for a Range header naming one satisfiable range of a file of size bytes, else None."""
    match = _SINGLE_RANGE.match((header or "").strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # the last n bytes
        count = int(last)
        return (max(0, size - count), size) if 0 < count and size > 0 else None
    start = int(first)
    end = size if last == "" else min(size, int(last) + 1)
    return (start, end) if start < size and start < end else None


def _read(path: str, start: int, count: int) -> bytes:
    with open(path, "rb") as handle:
        return os.pread(handle.fileno(), count, start)


class ShardFile:
    """An ASGI response for a file under the served root (see the module docstring)."""

    def __init__(self, path, stat: os.stat_result, media_type: str | None = None, chunk_size: int = 1 << 20):
        from starlette.responses import FileResponse

        self.path, self.size = os.fspath(path), stat.st_size
        self.fallback = FileResponse(path, media_type=media_type, stat_result=stat)
        self.fallback.chunk_size = chunk_size

    async def __call__(self, scope, receive, send) -> None:
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        wanted = headers.get("range")
        span = (0, self.size) if wanted is None else single_range(wanted, self.size)
        if span is None or "if-range" in headers:
            await self.fallback(scope, receive, send)
            return
        start, end = span
        raw = [(k, v) for k, v in self.fallback.raw_headers if k != b"content-length"]
        raw.append((b"content-length", str(end - start).encode()))
        if wanted is not None:
            raw.append((b"content-range", f"bytes {start}-{end - 1}/{self.size}".encode()))
        await send({"type": "http.response.start", "status": 200 if wanted is None else 206, "headers": raw})
        if scope["method"] == "HEAD" or start == end:
            await send({"type": "http.response.body", "body": b""})
            return
        await self._send_body(send, start, end)

    async def _send_body(self, send, start: int, end: int) -> None:
        import anyio

        offset = start
        while offset < end:
            data = await anyio.to_thread.run_sync(_read, self.path, offset, min(READ_BYTES, end - offset))
            if not data:
                raise OSError(f"{self.path} shrank while it was being sent")
            offset += len(data)
            await send({"type": "http.response.body", "body": data, "more_body": offset < end})
