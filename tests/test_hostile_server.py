"""The shard server under hostile clients, over real HTTP on 127.0.0.1: idle and half-sent sockets, too many
connections for its file descriptors, clients that stop reading, long paths, and a log that must stay small.

Servers run as `avuie serve` subprocesses (their own descriptor limits, their log captured to a file) or in a
thread (serve_in_thread) where a test needs limits the command line does not expose. Every wait is a bounded loop.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from avuie.shards import guard
from avuie.shards.guard import RateLimitFilter, ServerLimits, connection_budget
from avuie.shards.server import serve_in_thread

from tests.shardkit import write_build, write_shard

resource = pytest.importorskip("resource")  # descriptor limits: POSIX only
LOG_LIMIT = 20_000  # bytes: a few lines; the unguarded server wrote 71 MB in 40 s


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return write_build(tmp_path_factory.mktemp("hostile") / "out", {"ave": {"train": [3]}}, frames=2, size=32)


def raise_own_fd_limit(wanted: int) -> int:
    """Raise this test process's soft descriptor limit towards wanted (at most the hard limit); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class CliServer:
    """`avuie serve ROOT --port 0 ...` in a subprocess with given descriptor limits; stdout+stderr to a file."""

    def __init__(self, root: Path, log: Path, *args: str, fds: tuple[int, int] | None = None):
        def limit():
            if fds is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, fds)

        self.log = log
        with open(log, "wb") as out:
            command = [sys.executable, "-m", "avuie", "serve", str(root), "--port", "0", *args]
            self.process = subprocess.Popen(command, stdout=out, stderr=out, preexec_fn=limit)
        self.url = self._wait_for_url()
        parts = urlsplit(self.url)
        self.address = (parts.hostname, parts.port)

    def _wait_for_url(self) -> str:
        for _ in range(600):  # 60 s at most
            for line in self.log.read_text(errors="replace").splitlines():
                if line.startswith("Serving ") and " at http://" in line:
                    return line.split(" at ", 1)[1].split()[0]
            if self.process.poll() is not None:
                raise AssertionError(f"avuie serve exited: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        raise AssertionError("avuie serve did not start within 60 s")

    def log_bytes(self) -> int:
        return self.log.stat().st_size

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def cli_server(build, tmp_path):
    started = []

    def start(*args: str, fds: tuple[int, int] | None = None) -> CliServer:
        server = CliServer(build.root, tmp_path / f"serve-{len(started)}.log", *args, fds=fds)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def open_idle(address, count: int) -> list[socket.socket]:
    """Open count TCP connections that send nothing."""
    sockets = []
    for _ in range(count):
        sockets.append(socket.create_connection(address, timeout=10))
    return sockets


def closed_by_peer(sock: socket.socket) -> bool:
    """True when the server has closed this connection (EOF or reset), without blocking."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    finally:
        sock.setblocking(True)


def healthz(url: str, timeout: float = 5.0) -> int:
    return httpx.get(url + "/healthz", timeout=timeout).status_code


def wait_closed(sock: socket.socket, seconds: float) -> bool:
    """Wait up to seconds for the server to close sock (reading and discarding whatever it sends)."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def close_all(sockets) -> None:
    for sock in sockets:
        sock.close()


def test_healthz_answers_while_1000_idle_sockets_are_open(cli_server):
    # Issue 12's done-when: /healthz answers within 1 s while 1,000 idle sockets are open. They need ~1,000
    # descriptors here and ~1,000 in the server (which raises its soft limit to the hard one). Where the hard limit
    # is lower, as many as it allows are opened, and the message says how many.
    wanted = 1000
    allowed = raise_own_fd_limit(wanted + 200) - 200
    count = min(wanted, allowed)
    server = cli_server()
    idle = open_idle(server.address, count)
    try:
        note = f"{count} idle sockets (hard descriptor limit allows {allowed})"
        # the kernel completes the handshakes before the server accepts them; the server accepts in order, so
        # once this first probe (generous timeout) is answered, every idle socket is held by the server
        assert healthz(server.url) == 200, note
        for _ in range(5):  # then each probe must be answered within the 1 s client timeout
            assert healthz(server.url, timeout=1.0) == 200, note
        assert httpx.get(server.url + "/index.json", timeout=5).json()["total"] == 3
        if count <= connection_budget(ServerLimits(), allowed + 200):
            assert not any(closed_by_peer(sock) for sock in idle), f"{note}: under the cap none is closed"
    finally:
        close_all(idle)
    assert server.log_bytes() < LOG_LIMIT


def test_idle_sockets_beyond_the_descriptor_limit_close_the_longest_idle(cli_server):
    # The reported attack: a server limited to 256 descriptors (soft = hard: it cannot raise them) and more idle
    # unauthenticated sockets than that. The connection cap keeps descriptors free: the longest-idle sockets are
    # closed, /healthz answers, and nothing floods the log.
    count = min(1000, raise_own_fd_limit(1200) - 200)
    server = cli_server(fds=(256, 256))
    idle = open_idle(server.address, count)
    try:
        for _ in range(3):
            assert healthz(server.url) == 200
        still_open = sum(not closed_by_peer(sock) for sock in idle)
        assert still_open <= connection_budget(ServerLimits(), 256), (
            f"{still_open} of {count} idle sockets open"
        )
        assert still_open < count
    finally:
        close_all(idle)
    assert healthz(server.url) == 200
    log = server.log.read_text(errors="replace")
    assert server.log_bytes() < LOG_LIMIT, log[-3000:]
    assert "Traceback" not in log
    assert "connection limit" in log


def test_out_of_descriptors_at_accept_frees_idle_connections_with_one_log_line(cli_server):
    # A cap set above what the descriptors allow: accept() fails with EMFILE. The server closes its idle
    # connections (rate-limited log line) instead of logging a traceback per failed accept.
    count = min(400, raise_own_fd_limit(600) - 100)
    server = cli_server("--max-connections", "1000", fds=(128, 128))
    idle = open_idle(server.address, count)
    try:
        assert (
            healthz(server.url, timeout=30) == 200
        )  # generous: the server may pause accepting for 1 s twice
    finally:
        close_all(idle)
    log = server.log.read_text(errors="replace")
    assert server.log_bytes() < LOG_LIMIT, log[-3000:]
    assert "out of file descriptors" in log
    assert log.count("out of file descriptors") <= 10
    assert "Traceback" not in log


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads /proc/<pid>/limits (Linux)")
def test_the_server_raises_its_descriptor_soft_limit_to_the_hard_limit(cli_server):
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = 4096 if hard == resource.RLIM_INFINITY else min(hard, 4096)
    server = cli_server(fds=(128, hard))
    limits = Path(f"/proc/{server.process.pid}/limits").read_text()
    row = next(line for line in limits.splitlines() if line.startswith("Max open files")).split()
    assert (int(row[3]), int(row[4])) == (hard, hard)


def test_silent_half_sent_and_dripping_connections_are_closed(cli_server):
    server = cli_server("--header-timeout", "1", "--keep-alive", "1")
    silent = socket.create_connection(server.address, timeout=10)
    half = socket.create_connection(server.address, timeout=10)
    half.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # no blank line: the head never ends
    kept = socket.create_connection(server.address, timeout=10)
    kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert kept.recv(65536).startswith(b"HTTP/1.1 200")
    try:
        assert wait_closed(silent, 15), "a connection that never sends a byte stays open"
        assert wait_closed(half, 15), "a half-sent request head stays open"
        assert wait_closed(kept, 15), "an idle keep-alive connection stays open"
        dripping = socket.create_connection(server.address, timeout=10)
        dripping.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        dripped = 0
        for _ in range(100):  # 20 s of one byte every 0.2 s, far past the 1 s header deadline
            if closed_by_peer(dripping):
                break
            try:
                dripping.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
            dripped += 1
            time.sleep(0.2)
        assert dripped < 100, "a client dripping its request head one byte at a time is never closed"
        dripping.close()
        assert healthz(server.url) == 200
    finally:
        close_all([silent, half, kept])
    assert server.log_bytes() < LOG_LIMIT


@pytest.fixture(scope="module")
def thread_server(build):
    loop_link = build.root / "shards" / "loop.tar"
    loop_link.symlink_to(loop_link)  # a symlink to itself: resolving it fails
    with serve_in_thread(build.root) as handle:
        yield handle
    loop_link.unlink()


@pytest.mark.parametrize(
    ("path", "statuses"),
    [
        ("/" + "a" * 300 + ".tar", {404}),
        ("/shards/" + "b" * 300 + "/x.tar", {404}),
        ("/_table/" + "c" * 300 + ".tar", {404}),
        ("/" + "%41" * 300 + ".tar", {404}),
        ("/" + "/".join(["d" * 200] * 15) + ".tar", {414}),
        ("/_table/" + "/".join(["e" * 200] * 15) + ".tar", {414}),
        ("/shards/loop.tar", {404}),
        ("/" + "f" * 20_000, {400, 414, 431}),  # past h11's cap on the request head
    ],
)
def test_long_and_looping_paths_answer_4xx_never_500(thread_server, path, statuses):
    sock = socket.create_connection(_address(thread_server.url), timeout=10)
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = sock.recv(65536).split(b"\r\n", 1)[0]
    finally:
        sock.close()
    assert int(head.split()[1]) in statuses, head
    assert healthz(thread_server.url) == 200


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def test_a_client_that_stops_reading_is_dropped_after_the_send_timeout(tmp_path):
    big = tmp_path / "out" / "shards" / "big.tar"
    big.parent.mkdir(parents=True)
    payload = os.urandom(1 << 20)
    write_shard(big, [({"key": f"k{i:03d}"}, {"bin": payload}) for i in range(48)])  # ~48 MB
    with serve_in_thread(tmp_path / "out", limits=ServerLimits(send_timeout=1)) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(_address(server.url))
        sock.sendall(b"GET /shards/big.tar HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(100):  # up to 10 s for the 1 s send deadline to fire
            if server.guard.expired:
                break
            time.sleep(0.1)
        received = 0
        sock.settimeout(15)
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        sock.close()
        assert server.guard.expired >= 1
        assert received < big.stat().st_size
        assert healthz(server.url) == 200


def test_repeated_log_lines_are_rate_limited(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(guard.time, "monotonic", lambda: clock[0])
    limiter = RateLimitFilter(window=10.0, burst=3)

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)

    passed = [limiter.filter(record("socket.accept() out of system resource")) for _ in range(5000)]
    assert sum(passed) == 3
    assert limiter.filter(record("another message"))
    clock[0] += 10.0
    later = record("socket.accept() out of system resource")
    assert limiter.filter(later)
    assert "4997 similar messages suppressed" in later.getMessage()
