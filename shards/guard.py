"""Limits that keep the shard server answering while clients misbehave (idle, half-sent, slow, too many).

uvicorn gives a keep-alive timeout, a concurrency limit and h11's cap on the request head, but it never closes a
connection that sends nothing or sends its request head slowly, and under "Too many open files" asyncio logs a
traceback for every failed accept (thousands a second). This module adds, per server:

- a header deadline: a request head must be complete within `header_timeout` seconds of the connection opening
  (or of the previous response ending, plus `keep_alive`); the deadline is not reset by each byte, so a client
  that drips its head is closed as surely as one that stays silent;
- a send deadline: a response blocked for `send_timeout` seconds on a client that does not read is aborted;
- a connection cap (`max_connections`, by default what the file-descriptor limit allows): a new connection over
  the cap closes the connection that has been idle longest (an idle keep-alive client reconnects transparently;
  an attacker's idle sockets are what goes); when every connection is busy the new one is closed;
- the file-descriptor soft limit raised to the hard limit at start (`raise_fd_limit`);
- on EMFILE/ENFILE at accept, idle connections are closed to free descriptors, and one line is logged;
- repeated log lines (uvicorn's and asyncio's) are rate-limited: at most `burst` per message per `window` seconds,
  with the number suppressed reported on the next line that passes.

It also holds what the server refuses per request: paths (`resolve_under`: 400/403/404/414), OS errors of a route
(`os_error_response`: 503 + Retry-After when out of descriptors) and the bearer token (`BearerTokenGate`).
"""

from __future__ import annotations

import errno
import hmac
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

FD_ERRORS = (errno.EMFILE, errno.ENFILE)
RESERVED_FDS = 64  # log files, the listening socket, catalog scans, interpreter and library handles
DEFAULT_CONNECTION_CEILING = 8192
SERVED_SUFFIXES = (".tar", ".parquet", ".json")
NAME_MAX = 255  # bytes in one file name on the file systems we serve from
_log = logging.getLogger("avuie.serve")


@dataclass(frozen=True)
class ServerLimits:
    """What the shard server tolerates from a client (seconds and counts; see the module docstring).

    max_connections None means "what the file-descriptor limit allows" (see `connection_budget`).
    max_head_bytes caps the request line plus headers (h11 answers 400 beyond it); max_path_bytes caps the URL
    path (414 beyond it).
    """

    header_timeout: float = 10.0
    keep_alive: float = 30.0
    send_timeout: float = 120.0
    max_connections: int | None = None
    max_head_bytes: int = 16 * 1024
    max_path_bytes: int = 2048

    def __post_init__(self):
        for name in ("header_timeout", "keep_alive", "send_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, not {getattr(self, name)!r}")
        if self.max_connections is not None and self.max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, not {self.max_connections!r}")


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft limit on open files to its hard limit; return (soft, hard) now in effect.

    Returns (-1, -1) where the platform has no such limit (Windows). A hard limit of "unlimited" is capped at
    1,048,576. Failing to raise it is not an error: the current limits are returned.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return -1, -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def connection_budget(limits: ServerLimits, soft_fd_limit: int) -> int:
    """Return the connection cap: limits.max_connections, else what soft_fd_limit allows.

    Each connection may hold two descriptors (its socket and the file it is sending), and RESERVED_FDS are kept
    for the rest of the process; the default is at most DEFAULT_CONNECTION_CEILING and at least 8.
    """
    if limits.max_connections is not None:
        return limits.max_connections
    if soft_fd_limit < 0:
        return DEFAULT_CONNECTION_CEILING
    return max(8, min(DEFAULT_CONNECTION_CEILING, (soft_fd_limit - RESERVED_FDS) // 2))


class RateLimitFilter(logging.Filter):
    """A logging filter that passes at most `burst` records of one message per `window` seconds.

    Records are grouped by (logger name, message template); the first record that passes after some were
    suppressed says how many were.
    """

    def __init__(self, window: float = 10.0, burst: int = 3):
        super().__init__()
        self.window, self.burst = window, burst
        self._seen: dict[tuple[str, str], list[float]] = {}  # key -> [window start, passed, suppressed]

    def filter(self, record: logging.LogRecord) -> bool:
        """Return True to emit the record (and annotate it with the suppressed count), False to drop it."""
        key = (record.name, str(record.msg)[:200])
        now = time.monotonic()
        state = self._seen.get(key)
        if state is None or now - state[0] >= self.window:
            suppressed = int(state[2]) if state else 0
            if len(self._seen) > 1000:
                self._seen.clear()
            self._seen[key] = state = [now, 0, 0]
            if suppressed:
                record.msg = f"{record.msg} ({suppressed} similar messages suppressed)"
        if state[1] >= self.burst:
            state[2] += 1
            return False
        state[1] += 1
        return True


_FILTER = RateLimitFilter()
GUARDED_LOGGERS = ("uvicorn", "uvicorn.error", "asyncio", "avuie.serve")


def install_log_limits() -> None:
    """Attach the shared rate-limit filter to uvicorn's, asyncio's and this module's loggers (idempotent)."""
    for name in GUARDED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class ConnectionGuard:
    """Server-wide bookkeeping for GuardedH11Protocol: the cap, the idle connections (oldest first), counters."""

    def __init__(self, limits: ServerLimits, max_connections: int):
        self.limits, self.max_connections = limits, max_connections
        self.idle: dict = {}  # protocol -> None, in the order the connections became idle
        self.open: set = set()
        self.evicted = self.refused = self.expired = 0
        self._last_relief = 0.0

    def admit(self, protocol) -> bool:
        """Make room for a new connection; return False (and close it) when every other one is busy."""
        self.open.add(protocol)
        excess = len(self.open) - self.max_connections
        if excess <= 0:
            return True
        closed = self._close_idle(excess, spare=protocol)
        if closed >= excess:
            _log.warning(
                "connection limit %d reached: closing the longest-idle connections", self.max_connections
            )
            return True
        self.refused += 1
        _log.warning(
            "connection limit %d reached and every connection is busy: refusing", self.max_connections
        )
        protocol.transport.close()
        return False

    def relieve(self, reason: str) -> int:
        """Close idle connections (all when several are idle, at most once a second) to free descriptors."""
        now = time.monotonic()
        if now - self._last_relief < 1.0:
            return 0
        self._last_relief = now
        closed = self._close_idle(len(self.idle))
        _log.warning("%s: closed %d idle connections (%d open)", reason, closed, len(self.open))
        return closed

    def forget(self, protocol) -> None:
        """Drop a closed connection from the bookkeeping."""
        self.open.discard(protocol)
        self.idle.pop(protocol, None)

    def _close_idle(self, count: int, spare=None) -> int:
        victims = [p for p in self.idle if p is not spare][:count]
        for victim in victims:
            self.idle.pop(victim, None)
            self.open.discard(victim)
            victim.transport.close()
        self.evicted += len(victims)
        return len(victims)

    def accept_error_handler(self, loop, context: dict) -> None:
        """asyncio exception handler: on EMFILE/ENFILE free idle connections and log one line, else default."""
        error = context.get("exception")
        if isinstance(error, OSError) and error.errno in FD_ERRORS:
            self.relieve(f"out of file descriptors ({error.strerror})")
            return
        loop.default_exception_handler(context)


def _no_delay(transport) -> None:
    """Turn Nagle's algorithm off on a TCP transport's socket (a response is written in several pieces)."""
    import socket

    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class GuardMixin:
    """Mixed into uvicorn's H11Protocol by `guarded_protocol`: a header deadline, a send deadline and the
    connection cap of `guard` (a ConnectionGuard, set on the class)."""

    guard: ConnectionGuard
    _deadline = _stall = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        _no_delay(transport)
        if self.guard.admit(self):
            self._settle(self.guard.limits.header_timeout)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._settle(self.guard.limits.header_timeout)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._settle(self.guard.limits.keep_alive + self.guard.limits.header_timeout)

    def connection_lost(self, exc) -> None:
        super().connection_lost(exc)
        for timer in (self._deadline, self._stall):
            if timer is not None:
                timer.cancel()
        self._deadline = self._stall = None
        self.guard.forget(self)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._stall is None:
            self._stall = self.loop.call_later(self.guard.limits.send_timeout, self._abort_stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None

    def _settle(self, timeout: float) -> None:
        """Track whether a request is being served: if so no deadline, else one (kept, not renewed)."""
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            self.guard.idle.pop(self, None)
        elif self._deadline is None:
            self._deadline = self.loop.call_later(timeout, self._expire)
            self.guard.idle[self] = None

    def _expire(self) -> None:
        self._deadline = None
        self.guard.idle.pop(self, None)
        if not self.transport.is_closing():
            self.guard.expired += 1
            self.transport.close()

    def _abort_stalled(self) -> None:
        self._stall = None
        if not self.transport.is_closing():
            self.guard.expired += 1
            self.transport.abort()


def guarded_protocol(guard: ConnectionGuard) -> type:
    """Return an H11Protocol subclass (uvicorn's pure-Python HTTP/1.1) that enforces guard's limits."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    return type("GuardedH11Protocol", (GuardMixin, H11Protocol), {"guard": guard})


class PathRejected(Exception):
    """A request path that must not be served; carries the HTTP status to answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def resolve_under(root: Path, url_path: str, max_path_bytes: int = ServerLimits.max_path_bytes) -> Path:
    """Map a decoded URL path to a file under root, or raise PathRejected (400, 403, 404 or 414).

    Rejects paths over max_path_bytes (414); '..', '.', hidden and empty segments, backslashes and NUL bytes (400);
    anything that resolves outside root, symlinks included (403); segments longer than a file name, missing files
    and files of other types (404).
    """
    rel = url_path[1:] if url_path.startswith("/") else url_path
    if not rel:
        raise PathRejected(404, "not found (the shard list is at /index.json)")
    if len(rel.encode("utf-8", "surrogateescape")) > max_path_bytes:
        raise PathRejected(414, f"path longer than {max_path_bytes} bytes")
    segments = rel.split("/")
    if "\\" in rel or "\x00" in rel or any(not s or s.startswith(".") for s in segments):
        raise PathRejected(400, "bad path")
    if any(len(s.encode("utf-8", "surrogateescape")) > NAME_MAX for s in segments):
        raise PathRejected(404, "not found")
    try:
        target = (root / rel).resolve()
        if not target.is_relative_to(root):
            raise PathRejected(403, "path leaves the served root")
        if not target.is_file() or not target.name.endswith(SERVED_SUFFIXES):
            raise PathRejected(404, "not found")
    except (OSError, RuntimeError) as error:  # name too long, symlink loop, unreadable folder
        if isinstance(error, OSError) and error.errno in FD_ERRORS:
            raise
        raise PathRejected(404, "not found") from error
    return target


async def os_error_response(request, error: OSError):
    """Answer an OSError raised by a route: 503 + Retry-After when out of file descriptors, else 500.

    Logged through the rate-limited avuie.serve logger, so a storm of failures cannot flood the log.
    """
    from starlette.responses import JSONResponse

    if error.errno in FD_ERRORS:
        _log.warning("out of file descriptors while serving: %s", error.strerror)
        body, status, headers = (
            {"error": "server busy (out of file descriptors), retry"},
            503,
            {"Retry-After": "1"},
        )
    else:
        reason = errno.errorcode.get(error.errno or 0, type(error).__name__)
        _log.warning("OS error while serving %s: %s", request.url.path[:200], reason)
        body, status, headers = {"error": f"server error ({reason})"}, 500, {}
    return JSONResponse(body, status_code=status, headers=headers)


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
