"""A read-only HTTP server for the shards under a root (Starlette app, served by uvicorn).

Routes (when a token is set, every one of them, `/healthz` included, needs `Authorization: Bearer <token>` and
answers 401 without it; probes of a token-guarded server must send the header too):

- `GET /healthz` -> {"status": "ok"}
- `GET /index.json` -> {"shards": [{"url", "path", "samples", "bytes", "sha256", "table", "counts"}],
  "counts": {"source": {...}, "family": {...}, "split": {...}}, "total": N, "manifests": [...], "stats": [...]}
  (`/index.json?tables=1` adds each shard's table under "table_data", so a reader needs one request, not one per
  shard)
- `GET /_table/<shard path>` -> the shard's sample table (see avuie.shards.index): key and byte range per sample
- `GET|HEAD /<path>` -> a `.tar`, `.parquet` or `.json` file under the root, with Range requests
  (`bytes=a-b`, `bytes=a-`, `bytes=-n`, several ranges -> multipart; 206, Content-Range, 416 when unsatisfiable)

Paths never leave the root: `..`, `.`, hidden or empty segments (also when percent-encoded) get 400, a resolved path
outside the root (a symlink leading out) gets 403, anything else missing or of another type gets 404 (a segment
longer than any file name included), a path over `ServerLimits.max_path_bytes` gets 414. When the process
runs out of file descriptors a request gets 503 with `Retry-After`. Connections are guarded (header, keep-alive
and send deadlines, a connection cap, rate-limited logs): see avuie.shards.guard.
Checksums come from the shard's `.done.json` ("tars_info", when its byte size matches), else they are computed once
at startup and kept in memory; the index is rebuilt only for shards whose size or mtime changed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from avuie.shards.guard import (
    BearerTokenGate,
    ConnectionGuard,
    PathRejected,
    ServerLimits,
    connection_budget,
    guarded_protocol,
    install_log_limits,
    os_error_response,
    raise_fd_limit,
    resolve_under,
)
from avuie.shards.http_file import ShardFile
from avuie.shards.index import (
    ShardScan,
    merge_counts,
    read_done,
    scan_local,
    sha256_file,
    tar_facts,
)
from avuie.shards.layout import find_manifests, find_shards

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

    def index(self, tables: bool = False) -> dict:
        """Return the current index JSON dict (rescanning changed shards first); with tables, every shard entry
        also carries its table under "table_data" (one request instead of one per shard)."""
        index = self.refresh()
        if not tables:
            return index
        with self._lock:
            shards = [
                {**entry, "table_data": self._scans[entry["path"]][1].to_table()} for entry in index["shards"]
            ]
        return {**index, "shards": shards}

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


def create_app(
    root: str | os.PathLike,
    token: str | None = None,
    catalog: ShardCatalog | None = None,
    limits: ServerLimits | None = None,
):
    """Return the ASGI app serving root read-only; with token, every request (`/healthz` included) needs
    `Authorization: Bearer <token>`. limits.max_path_bytes bounds URL paths (414 beyond)."""
    import anyio
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    catalog = catalog or ShardCatalog(root)
    served_root, max_path = catalog.root, (limits or ServerLimits()).max_path_bytes

    async def healthz(request):
        return JSONResponse({"status": "ok"})

    async def index(request):
        tables = request.query_params.get("tables", "") in ("1", "true")
        return JSONResponse(await anyio.to_thread.run_sync(catalog.index, tables))

    async def table(request):
        rel = request.path_params["rel"]
        try:
            resolve_under(served_root, rel, max_path)
        except PathRejected as rejected:
            return JSONResponse({"error": rejected.reason}, status_code=rejected.status)
        found = await anyio.to_thread.run_sync(catalog.table, rel)
        return JSONResponse(found) if found else JSONResponse({"error": "not a shard"}, status_code=404)

    async def serve_file(request):
        try:
            target = resolve_under(served_root, request.scope["path"], max_path)
        except PathRejected as rejected:
            return JSONResponse({"error": rejected.reason}, status_code=rejected.status)
        os.close(os.open(target, os.O_RDONLY))  # EMFILE or EACCES now, before the headers go out
        media_type = "application/x-tar" if target.suffix == ".tar" else None
        return ShardFile(target, target.stat(), media_type)

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
        exception_handlers={OSError: os_error_response},
    )
    return BearerTokenGate(app, token) if token else app


def bind_socket(host: str, port: int) -> socket.socket:
    """Return a listening TCP socket bound to (host, port); port 0 picks a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP; with
    # Nagle on, a response's body waited ~40 ms for the ACK of its header segment (delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections queue from now on, before uvicorn starts accepting
    return sock


def _make_server(app, log_level: str, limits: ServerLimits):
    """Return (uvicorn server, its ConnectionGuard) with the fd limit raised and the log rate-limited."""
    import uvicorn

    soft, _ = raise_fd_limit()
    cap = connection_budget(limits, soft)
    if limits.max_connections is not None and soft > 0 and 2 * cap + 64 > soft:
        logging.getLogger("avuie.serve").warning(
            "max_connections %d may exceed what %d open files allow; idle connections are closed on EMFILE",
            cap,
            soft,
        )
    guard = ConnectionGuard(limits, cap)

    class QuietExitServer(uvicorn.Server):
        """uvicorn.Server that drains connections on SIGTERM/SIGINT and then returns (exit status 0), and
        frees idle connections (one log line) instead of logging every failed accept when out of descriptors."""

        async def startup(self, *args, **kwargs):
            import asyncio

            asyncio.get_running_loop().set_exception_handler(guard.accept_error_handler)
            await super().startup(*args, **kwargs)

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
        http=guarded_protocol(guard),
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=limits.keep_alive,
        limit_concurrency=cap
        + 16,  # uvicorn's own cap (503) behind the guard's, which closes idle ones first
        h11_max_incomplete_event_size=limits.max_head_bytes,
        backlog=2048,
    )
    install_log_limits()  # after uvicorn.Config, which configures its loggers
    return QuietExitServer(config), guard


def run_server(
    root: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 8000,
    token: str | None = None,
    *,
    catalog: ShardCatalog | None = None,
    log_level: str = "warning",
    on_ready: Callable[[str], None] | None = None,
    limits: ServerLimits | None = None,
) -> None:
    """Serve root until SIGTERM or SIGINT (then stop cleanly and return). on_ready gets the base URL.

    limits: timeouts and the connection cap (ServerLimits() by default); the soft limit on open files is raised
    to the hard limit first.
    """
    limits = limits or ServerLimits()
    if catalog is None:
        catalog = ShardCatalog(root)
        catalog.refresh()  # checksums before the first client, not during its request
    sock = bind_socket(host, port)
    server, _ = _make_server(create_app(root, token, catalog, limits), log_level, limits)
    url = _base_url(host, sock.getsockname()[1])
    if on_ready is not None:
        on_ready(url)
    server.run(sockets=[sock])


@dataclass
class ServerHandle:
    """A server running in a background thread: `.url` is its base URL; `.stop()` shuts it down.

    `.guard` counts connections closed for being idle over the cap (`evicted`), refused, or past a deadline.
    """

    url: str
    catalog: ShardCatalog
    _server: object
    _thread: threading.Thread
    guard: ConnectionGuard | None = None

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the server to exit, wait for open connections to drain, and join its thread."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_in_thread(
    root: str | os.PathLike,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    limits: ServerLimits | None = None,
) -> ServerHandle:
    """Start the server for root in a daemon thread and return once it accepts connections.

    Returns a ServerHandle (also a context manager) with `.url` (e.g. http://127.0.0.1:41234) and `.stop()`.
    """
    limits = limits or ServerLimits()
    catalog = ShardCatalog(root)
    catalog.refresh()
    sock = bind_socket(host, port)
    server, guard = _make_server(create_app(root, token, catalog, limits), "warning", limits)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="avuie-serve")
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the shard server for {root} failed to start")
        thread.join(0.01)
    return ServerHandle(_base_url(host, sock.getsockname()[1]), catalog, server, thread, guard)


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
