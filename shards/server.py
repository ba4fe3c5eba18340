"""A read-only HTTP server for the shards under a root (Starlette app, served by uvicorn).

Routes (when a token is set, every one of them, `/healthz` included, needs `Authorization: Bearer <token>` and
answers 401 without it; probes of a token-guarded server must send the header too):

- `GET /healthz` -> {"status": "ok"}
- `GET /index.json` -> {"shards": [{"url", "path", "samples", "bytes", "sha256", "table", "counts"}],
  "counts": {"source": {...}, "family": {...}, "split": {...}}, "total": N, "manifests": [...], "stats": [...]}
- `GET /_table/<shard path>` -> the shard's sample table (see avuie.shards.index): key and byte range per sample
- `GET|HEAD /<path>` -> a `.tar`, `.parquet` or `.json` file under the root, with Range requests
  (`bytes=a-b`, `bytes=a-`, `bytes=-n`, several ranges -> multipart; 206, Content-Range, 416 when unsatisfiable)

Paths never leave the root: `..`, `.`, hidden or empty segments (also when percent-encoded) get 400, a resolved path
outside the root (a symlink leading out) gets 403, anything else missing or of another type gets 404.
Checksums come from the shard's `.done.json` ("tars_info", when its byte size matches), else they are computed once
at startup and kept in memory; the index is rebuilt only for shards whose size or mtime changed.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from avuie.shards.index import (
    ShardScan,
    find_manifests,
    find_shards,
    merge_counts,
    read_done,
    scan_local,
    sha256_file,
    tar_facts,
)

SERVED_SUFFIXES = (".tar", ".parquet", ".json")
TABLE_PREFIX = "/_table/"


class ShardCatalog:
    """The shards under a root with their tables, sizes, checksums and counts, cached per (size, mtime)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise FileNotFoundError(f"no such build directory: {root}")
        self._scans: dict[str, tuple[tuple[int, int], ShardScan]] = {}
        self._index: dict | None = None
        self._lock = threading.Lock()

    def refresh(self, progress: Callable[[str], None] | None = None) -> dict:
        """Rescan the root (only new or changed shards are read) and return the index JSON dict.

        progress, when given, is called with each shard's relative path before it is scanned.
        """
        with self._lock:
            entries, scans = [], {}
            for path in find_shards(self.root):
                if not path.resolve().is_relative_to(self.root):
                    continue  # a symlink leading out of the root is neither listed nor served
                rel = path.relative_to(self.root).as_posix()
                stat = path.stat()
                signature = (stat.st_size, stat.st_mtime_ns)
                cached = self._scans.get(rel)
                if cached is None or cached[0] != signature:
                    if progress is not None:
                        progress(rel)
                    cached = (signature, _scan_with_sha256(path, stat.st_size))
                scans[rel] = cached
                scan = cached[1]
                entries.append(
                    {
                        "url": "/" + quote(rel),
                        "path": rel,
                        "samples": len(scan.samples),
                        "bytes": scan.num_bytes,
                        "sha256": scan.sha256,
                        "table": TABLE_PREFIX + quote(rel),
                        "counts": scan.counts(),
                    }
                )
            self._scans = scans
            manifests = [p.relative_to(self.root).as_posix() for p in find_manifests(self.root)]
            stats = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("stats.json"))
            self._index = {
                "shards": entries,
                "counts": merge_counts(entry["counts"] for entry in entries),
                "total": sum(entry["samples"] for entry in entries),
                "manifests": ["/" + quote(rel) for rel in manifests],
                "stats": ["/" + quote(rel) for rel in stats],
            }
            return self._index

    def index(self) -> dict:
        """Return the current index JSON dict (rescanning changed shards first)."""
        return self.refresh()

    def table(self, rel: str) -> dict | None:
        """Return the table JSON of the shard at relative path rel, or None when there is no such shard."""
        cached = self._scans.get(rel)
        if cached is None:
            self.refresh()
            cached = self._scans.get(rel)
        return None if cached is None else cached[1].to_table()


def _scan_with_sha256(path: Path, size: int) -> ShardScan:
    scan = scan_local(path)
    facts = tar_facts(read_done(path), path.name)
    checksum = facts.get("sha256") if facts.get("bytes") == size else None
    if not (isinstance(checksum, str) and len(checksum) == 64):
        checksum = sha256_file(path)
    return ShardScan(scan.samples, size, checksum)


class PathRejected(Exception):
    """A request path that must not be served; carries the HTTP status to answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def resolve_under(root: Path, url_path: str) -> Path:
    """Map a decoded URL path to a file under root, or raise PathRejected (400, 403 or 404).

    Rejects '..', '.', hidden and empty segments, backslashes and NUL bytes (400), anything that resolves
    outside root, symlinks included (403), and missing files or files of other types (404).
    """
    rel = url_path[1:] if url_path.startswith("/") else url_path
    if not rel:
        raise PathRejected(404, "not found (the shard list is at /index.json)")
    segments = rel.split("/")
    if not rel or "\\" in rel or "\x00" in rel or any(not s or s.startswith(".") for s in segments):
        raise PathRejected(400, "bad path")
    target = (root / rel).resolve()
    if not target.is_relative_to(root):
        raise PathRejected(403, "path leaves the served root")
    if not target.is_file() or not target.name.endswith(SERVED_SUFFIXES):
        raise PathRejected(404, "not found")
    return target


def create_app(root: str | os.PathLike, token: str | None = None, catalog: ShardCatalog | None = None):
    """Return the ASGI app serving root read-only; with token, every request (`/healthz` included) needs
    `Authorization: Bearer <token>`."""
    import anyio
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Route

    catalog = catalog or ShardCatalog(root)
    served_root = catalog.root

    class ShardFileResponse(FileResponse):
        chunk_size = 1 << 20

    async def healthz(request):
        return JSONResponse({"status": "ok"})

    async def index(request):
        return JSONResponse(await anyio.to_thread.run_sync(catalog.index))

    async def table(request):
        rel = request.path_params["rel"]
        try:
            resolve_under(served_root, rel)
        except PathRejected as rejected:
            return JSONResponse({"error": rejected.reason}, status_code=rejected.status)
        found = await anyio.to_thread.run_sync(catalog.table, rel)
        return JSONResponse(found) if found else JSONResponse({"error": "not a shard"}, status_code=404)

    async def serve_file(request):
        try:
            target = resolve_under(served_root, request.scope["path"])
        except PathRejected as rejected:
            return JSONResponse({"error": rejected.reason}, status_code=rejected.status)
        media_type = "application/x-tar" if target.suffix == ".tar" else None
        return ShardFileResponse(target, media_type=media_type, stat_result=target.stat())

    @contextlib.asynccontextmanager
    async def lifespan(app):
        anyio.to_thread.current_default_thread_limiter().total_tokens = 256  # file reads of many clients
        yield

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/index.json", index),
            Route(TABLE_PREFIX + "{rel:path}", table),
            Route("/{rel:path}", serve_file, methods=["GET", "HEAD"]),
        ],
        lifespan=lifespan,
    )
    return BearerTokenGate(app, token) if token else app


class BearerTokenGate:
    """ASGI middleware: answer 401 to every HTTP request (`/healthz` too) unless `Authorization: Bearer <token>`
    matches."""

    def __init__(self, app, token: str):
        self.app, self.expected = app, f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = json.dumps({"error": "missing or wrong bearer token"}).encode()
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="avuie"'),
                ]
                await send({"type": "http.response.start", "status": 401, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def bind_socket(host: str, port: int) -> socket.socket:
    """Return a listening TCP socket bound to (host, port); port 0 picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections queue from now on, before uvicorn starts accepting
    return sock


def _make_server(app, log_level: str):
    import uvicorn

    class QuietExitServer(uvicorn.Server):
        """uvicorn.Server that drains connections on SIGTERM/SIGINT and then returns (exit status 0)."""

        @contextlib.contextmanager
        def capture_signals(self):
            import signal

            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=30,
        backlog=2048,
    )
    return QuietExitServer(config)


def run_server(
    root: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    *,
    catalog: ShardCatalog | None = None,
    log_level: str = "warning",
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve root until SIGTERM or SIGINT (then stop cleanly and return). on_ready gets the base URL."""
    if catalog is None:
        catalog = ShardCatalog(root)
        catalog.refresh()  # checksums before the first client, not during its request
    sock = bind_socket(host, port)
    server = _make_server(create_app(root, token, catalog), log_level)
    url = _base_url(host, sock.getsockname()[1])
    if on_ready is not None:
        on_ready(url)
    server.run(sockets=[sock])


@dataclass
class ServerHandle:
    """A server running in a background thread: `.url` is its base URL; `.stop()` shuts it down."""

    url: str
    catalog: ShardCatalog
    _server: object
    _thread: threading.Thread

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the server to exit, wait for open connections to drain, and join its thread."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_in_thread(
    root: str | os.PathLike, host: str = "127.0.0.1", port: int = 0, token: str | None = None
) -> ServerHandle:
    """Start the server for root in a daemon thread and return once it accepts connections.

    Returns a ServerHandle (also a context manager) with `.url` (e.g. http://127.0.0.1:41234) and `.stop()`.
    """
    catalog = ShardCatalog(root)
    catalog.refresh()
    sock = bind_socket(host, port)
    server = _make_server(create_app(root, token, catalog), "warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="avuie-serve")
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the shard server for {root} failed to start")
        thread.join(0.01)
    return ServerHandle(_base_url(host, sock.getsockname()[1]), catalog, server, thread)


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
