"""Find the shards of any source and read their bytes: local folders, the shard server (HTTP), fsspec URLs.

`resolve_shards(sources, ShardReader(...))` lists the shards of any source with their tables (and, where the source
knows it, each tar's byte size and sha256), in canonical order. `ShardReader.read(shard, start, end)` fetches a
byte range: local `pread`, an HTTP `Range` request on a kept-alive connection per thread (the standard library's
http.client: a ranged read of a few MB runs at about twice httpx's rate), or fsspec's `cat_file`;
`ShardReader.download(shard, out)` copies a whole shard in one request. This module imports no torch.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from avuie.shards.index import ShardScan, covers, scan_local, scan_stream, table_from_done
from avuie.shards.layout import done_candidates, find_shards

HTTP_TIMEOUT = 60.0
HTTP_ATTEMPTS = 3


@dataclass
class Shard:
    """One shard to read: canonical name (orders shards), location (path or URL), transport and table."""

    name: str
    location: str
    transport: str  # "local" | "http" | "fsspec"
    scan: ShardScan


class ShardReader:
    """Reads shard bytes and JSON over local files, HTTP (bearer token) and fsspec, for this process.

    Clients are made lazily and re-made after a fork, so a reader can be copied into DataLoader workers; each
    thread keeps its own HTTP connections for data reads.
    """

    def __init__(self, token: str | None = None, storage_options: dict | None = None):
        self.token, self.storage_options = token, dict(storage_options or {})
        self._pid, self._http, self._fs, self._local = None, None, {}, threading.local()

    def __getstate__(self):
        return {"token": self.token, "storage_options": self.storage_options}

    def __setstate__(self, state):
        self.__init__(state["token"], state["storage_options"])

    def _fresh(self) -> None:
        if self._pid != os.getpid():
            self._pid, self._http, self._fs, self._local = os.getpid(), None, {}, threading.local()

    def http(self):
        """Return this process's httpx client (with the bearer token when one is set), for JSON and scans."""
        import httpx

        self._fresh()
        if self._http is None:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            transport = httpx.HTTPTransport(retries=3)
            self._http = httpx.Client(
                headers=headers, timeout=httpx.Timeout(60, connect=10), transport=transport
            )
        return self._http

    def fs(self, url: str):
        """Return (fsspec filesystem, path) for a URL such as s3://bucket/prefix."""
        import fsspec

        self._fresh()
        protocol = url.split("://", 1)[0]
        if protocol not in self._fs:
            try:
                self._fs[protocol] = fsspec.filesystem(protocol, **self.storage_options)
            except (ImportError, ValueError) as error:
                raise ValueError(f"cannot open {url} with fsspec: {error}") from error
        fs = self._fs[protocol]
        return fs, fs._strip_protocol(url)

    def get(self, url: str):
        """GET a URL; raises ValueError with a clear message on 401/403/404 and other failures."""
        response = self.http().get(url)
        if response.status_code == 401:
            raise ValueError(f"{url}: 401 unauthorized (pass token=... matching the server's --token)")
        if response.status_code != 200:
            raise ValueError(f"{url}: HTTP {response.status_code}")
        return response

    def read(self, shard: Shard, start: int, end: int) -> bytes:
        """Return bytes [start, end) of a shard; raises ValueError (HTTP status, short read) or OSError."""
        if shard.transport == "local":
            return read_local(shard.location, start, end)
        if shard.transport == "http":
            return self._http_read(shard.location, start, end)
        fs, path = self.fs(shard.location)
        return fs.cat_file(path, start=start, end=end)

    def download(self, shard: Shard, out: IO[bytes]) -> int:
        """Write the whole shard to the binary file out in one request; return the number of bytes written.

        Over HTTP a dropped connection is retried from the start (out is truncated first).
        """
        if shard.transport == "local":
            with open(shard.location, "rb") as handle:
                return _copy(iter(lambda: handle.read(1 << 20), b""), out)
        if shard.transport == "http":

            def whole(response) -> int:
                out.seek(0)
                out.truncate()
                return _copy(iter(lambda: response.read(1 << 20), b""), out)

            return self._http_retrying(shard.location, None, whole)
        fs, path = self.fs(shard.location)
        with fs.open(path, "rb", block_size=8 << 20) as handle:
            return _copy(iter(lambda: handle.read(8 << 20), b""), out)

    def _http_read(self, url: str, start: int, end: int) -> bytes:
        def body(response) -> bytes:
            data = response.read()
            return data[start:end] if response.status == 200 else data  # 200: a server without Range support

        data = self._http_retrying(url, (start, end), body)
        if len(data) != end - start:
            raise ValueError(f"{url}: short read, {len(data)} of {end - start} bytes at {start}")
        return data

    def _http_retrying(self, url: str, byte_range: tuple[int, int] | None, consume):
        """GET url (ranged when byte_range is given) on this thread's kept-alive connection; return consume(response).

        A dropped connection, a timeout or a cut body is retried on a new connection, and 503 (server busy) after
        its Retry-After, up to HTTP_ATTEMPTS times in all; 401 and other statuses raise ValueError at once.
        """
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if byte_range is not None:
            headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1] - 1}"
        for attempt in range(1, HTTP_ATTEMPTS + 1):
            try:
                connection = self._connection(parts.scheme, parts.netloc)
                connection.request("GET", target, headers=headers)
                response = connection.getresponse()
                if response.status in (200, 206):
                    return consume(response)
                response.read()
            except (http.client.HTTPException, OSError) as error:
                self._drop(parts.scheme, parts.netloc)
                if attempt == HTTP_ATTEMPTS:
                    raise ValueError(f"{url}: {type(error).__name__}: {error}") from error
                continue
            if response.status == 503 and attempt < HTTP_ATTEMPTS:
                time.sleep(_retry_after(response))
                continue
            if response.status == 401:
                raise ValueError(f"{url}: 401 unauthorized (pass token=... matching the server's --token)")
            asked = f" for bytes {headers['Range'][6:]}" if byte_range else ""
            raise ValueError(f"{url}: HTTP {response.status}{asked}")
        raise AssertionError("unreachable")

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        self._fresh()
        connections = self._local.__dict__.setdefault("connections", {})
        if (scheme, netloc) not in connections:
            kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            connections[(scheme, netloc)] = kind(netloc, timeout=HTTP_TIMEOUT)
        return connections[(scheme, netloc)]

    def _drop(self, scheme: str, netloc: str) -> None:
        connection = self._local.__dict__.get("connections", {}).pop((scheme, netloc), None)
        if connection is not None:
            connection.close()


def _retry_after(response) -> float:
    """Seconds to wait before retrying a 503: its Retry-After in seconds, at most 2, else 1."""
    try:
        return min(2.0, max(0.0, float(response.getheader("Retry-After") or 1)))
    except ValueError:
        return 1.0


def read_local(path: str | os.PathLike, start: int, end: int) -> bytes:
    """Return bytes [start, end) of a local file (one pread); raises ValueError on a short read."""
    with open(path, "rb") as handle:
        data = os.pread(handle.fileno(), end - start, start)
    if len(data) != end - start:
        raise ValueError(f"{path}: short read, {len(data)} of {end - start} bytes at {start}")
    return data


def _copy(chunks: Iterator[bytes], out: IO[bytes]) -> int:
    written = 0
    for chunk in chunks:
        out.write(chunk)
        written += len(chunk)
    return written


def _stream_reader(chunks: Iterator[bytes]):
    """Wrap an iterator of byte chunks as a minimal file object with read(n)."""

    class Reader:
        def __init__(self):
            self.buffer = bytearray()

        def read(self, size: int = -1) -> bytes:
            while size < 0 or len(self.buffer) < size:
                chunk = next(chunks, None)
                if chunk is None:
                    break
                self.buffer += chunk
            size = len(self.buffer) if size < 0 else min(size, len(self.buffer))
            data = bytes(self.buffer[:size])
            del self.buffer[:size]
            return data

    return Reader()


def remote_scan(reader: ShardReader, url: str) -> ShardScan:
    """Table of a remote tar: from its `.done.json` marker when that stores one, else by reading the tar once."""
    folder, tar_name = url.rsplit("/", 1)
    is_http = url.startswith(("http://", "https://"))
    for marker in done_candidates(tar_name):
        try:
            if is_http:
                response = reader.http().get(f"{folder}/{marker}")
                done = response.json() if response.status_code == 200 else None
            else:
                fs, _ = reader.fs(url)
                done = json.loads(fs.cat_file(fs._strip_protocol(f"{folder}/{marker}")))
        except (OSError, ValueError):
            continue
        if covers(done, tar_name):
            scan = table_from_done(done, tar_name)
            if scan is not None:
                return scan
            break
    if is_http:
        with reader.http().stream("GET", url) as response:
            if response.status_code != 200:
                raise ValueError(f"{url}: HTTP {response.status_code}")
            return scan_stream(_stream_reader(response.iter_bytes(1 << 20)))
    fs, path = reader.fs(url)
    with fs.open(path, "rb", block_size=8 << 20) as handle:
        return scan_stream(handle)


def resolve_shards(sources, reader: ShardReader) -> list[Shard]:
    """Turn sources into shards with tables, in canonical order.

    sources: a local build dir or root, a .tar path, a server base URL (reads /index.json), an http(s) .tar URL,
    an fsspec URL (s3://bucket/prefix or .../x.tar), or a list of those (kept in list order).
    """
    if isinstance(sources, (str, os.PathLike)):
        return _resolve_one(os.fspath(sources), reader)
    shards = []
    for number, source in enumerate(sources):
        for shard in _resolve_one(os.fspath(source), reader):
            shards.append(Shard(f"{number:05d}/{shard.name}", shard.location, shard.transport, shard.scan))
    if not shards:
        raise ValueError("no sources given")
    return shards


def _resolve_one(source: str, reader: ShardReader) -> list[Shard]:
    protocol = source.split("://", 1)[0] if "://" in source else "file"
    if protocol == "file":
        root = source.removeprefix("file://")
        paths = find_shards(root)
        if not paths:
            raise ValueError(f"no shards (*.tar) under {root}")
        names = [p.name if Path(root).is_file() else p.relative_to(root).as_posix() for p in paths]
        return [Shard(n, str(p), "local", scan_local(p)) for n, p in zip(names, paths, strict=True)]
    if protocol in ("http", "https"):
        if source.endswith(".tar"):
            return [Shard(source.rsplit("/", 1)[-1], source, "http", remote_scan(reader, source))]
        base = source.rstrip("/")
        index = reader.get(f"{base}/index.json?tables=1").json()
        shards = []
        for entry in index.get("shards", []):
            url = base + entry["url"]
            if isinstance(entry.get("table_data"), dict):  # inline: this server answers ?tables=1
                scan = ShardScan.from_table(entry["table_data"], entry.get("bytes", -1), entry.get("sha256"))
            elif entry.get("table"):
                table = reader.get(base + entry["table"]).json()
                scan = ShardScan.from_table(table, entry.get("bytes", -1), entry.get("sha256"))
            else:
                scan = remote_scan(reader, url)
            shards.append(Shard(entry.get("path") or entry["url"].lstrip("/"), url, "http", scan))
        if not shards:
            raise ValueError(f"{base}/index.json lists no shards")
        return shards
    fs, path = reader.fs(source)
    if path.endswith(".tar"):
        return [Shard(path.rsplit("/", 1)[-1], source, "fsspec", remote_scan(reader, source))]
    found = sorted(p for p in fs.find(path) if p.endswith(".tar"))
    if not found:
        raise ValueError(f"no shards (*.tar) under {source}")
    return [
        Shard(
            p[len(path) :].lstrip("/"),
            fs.unstrip_protocol(p),
            "fsspec",
            remote_scan(reader, fs.unstrip_protocol(p)),
        )
        for p in found
    ]
