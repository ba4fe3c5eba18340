"""Find shards (local roots, the shard server, fsspec URLs), describe what each holds, and read their bytes.

A shard is a plain WebDataset tar whose samples are runs of contiguous members `<key>.<ext>`. Its *table* lists
every sample with the byte range it fills in the tar (from the first member header to the end of the last member's
data) and the `source`, `family` and `split` of its JSON, so that a reader can fetch one sample with a single
ranged read (local `pread`, HTTP `Range`, `fs.cat_file(start, end)`).

Tables travel as JSON `{"columns": TABLE_COLUMNS, "rows": [[key, start, end, source, family, split], ...]}`:
the server answers them at `/_table/<shard path>`, and a writer may store one per tar in the shard's marker,
`done["tars_info"][tar_name] = {"bytes", "sha256", "table"}`, so that readers of remote storage (s3://...) need
not read the whole tar once to find its samples.

`resolve_shards(sources, ShardReader(...))` lists the shards of any source with their tables, in canonical order,
and `ShardReader.read(shard, start, end)` fetches a byte range. This module imports no torch (the server uses it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

from avuie.shards.layout import done_candidates, find_manifests, find_shards

TABLE_COLUMNS = ("key", "start", "end", "source", "family", "split")
COUNT_FIELDS = ("source", "family", "split")
_KEY_EXT = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")  # webdataset's rule: key = path up to the first dot
_BLOCK = 512


class SampleEntry(NamedTuple):
    """One sample of a shard: its key, byte range [start, end) in the tar, and where it comes from."""

    key: str
    start: int
    end: int
    source: str
    family: str
    split: str


@dataclass
class ShardScan:
    """What a shard holds: its samples in file order, its byte size and (when known) its sha256."""

    samples: list[SampleEntry]
    num_bytes: int
    sha256: str | None = None

    def counts(self) -> dict[str, dict[str, int]]:
        """Return the number of samples per source, family and split."""
        return count_samples(self.samples)

    def to_table(self) -> dict:
        """Return the JSON form of the table: {"columns": [...], "rows": [[...], ...]}."""
        return {"columns": list(TABLE_COLUMNS), "rows": [list(entry) for entry in self.samples]}

    @classmethod
    def from_table(cls, table: dict, num_bytes: int = -1, sha256: str | None = None) -> ShardScan:
        """Build a scan from the JSON form of a table (see `to_table`); raises ValueError when it is malformed."""
        columns = table.get("columns") if isinstance(table, dict) else None
        if list(columns or []) != list(TABLE_COLUMNS) or not isinstance(table.get("rows"), list):
            raise ValueError(f"not a shard table (expected columns {list(TABLE_COLUMNS)})")
        samples = [
            SampleEntry(str(k), int(s), int(e), str(a), str(b), str(c)) for k, s, e, a, b, c in table["rows"]
        ]
        return cls(samples, num_bytes, sha256)


def count_samples(samples: Iterable[SampleEntry]) -> dict[str, dict[str, int]]:
    """Count samples per source, family and split: {"source": {name: n}, "family": {...}, "split": {...}}."""
    counters = {field: Counter() for field in COUNT_FIELDS}
    for entry in samples:
        for field in COUNT_FIELDS:
            counters[field][getattr(entry, field)] += 1
    return {field: dict(sorted(counter.items())) for field, counter in counters.items()}


def merge_counts(all_counts: Iterable[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    """Add up several `count_samples` results into one."""
    total = {field: Counter() for field in COUNT_FIELDS}
    for counts in all_counts:
        for field in COUNT_FIELDS:
            total[field].update(counts.get(field, {}))
    return {field: dict(sorted(counter.items())) for field, counter in total.items()}


def manifest_counts(root: str | os.PathLike) -> dict[str, dict[str, int]]:
    """Count the rows of every manifest under root per source, family and split (needs pyarrow)."""
    import pyarrow.parquet as pq

    counters = {field: Counter() for field in COUNT_FIELDS}
    for path in find_manifests(root):
        table = pq.read_table(path, columns=list(COUNT_FIELDS))
        for field in COUNT_FIELDS:
            counters[field].update(table.column(field).to_pylist())
    return {field: dict(sorted(counter.items())) for field, counter in counters.items()}


def covers(done: object, tar_name: str) -> bool:
    """True when a parsed marker is a dict that covers tar_name (its "tars" list names it, or it has none)."""
    return isinstance(done, dict) and tar_name in done.get("tars", [tar_name])


def read_done(tar_path: str | os.PathLike) -> dict | None:
    """Return the `.done.json` marker covering a local tar as a dict, or None when there is none."""
    tar_path = Path(tar_path)
    for name in done_candidates(tar_path.name):
        try:
            done = json.loads((tar_path.parent / name).read_text())
        except (OSError, ValueError):
            continue
        if covers(done, tar_path.name):
            return done
    return None


def tar_facts(done: dict | None, tar_name: str) -> dict:
    """Return what a marker records about one of its tars: `done["tars_info"][tar_name]` ({} when absent).

    Recognised keys: "bytes", "sha256" and "table" (the JSON form of the shard's table, see ShardScan.to_table).
    """
    facts = (done or {}).get("tars_info", {})
    return facts.get(tar_name, {}) if isinstance(facts, dict) else {}


def table_from_done(done: dict | None, tar_name: str) -> ShardScan | None:
    """Return the table a marker stores for tar_name (under "tars_info"), or None when it stores none."""
    facts = tar_facts(done, tar_name)
    if "table" not in facts:
        return None
    return ShardScan.from_table(facts["table"], int(facts.get("bytes", -1)), facts.get("sha256"))


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class _HashingReader:
    """A read-only file wrapper that hashes and counts every byte read through it (for one-pass scans)."""

    def __init__(self, raw: IO[bytes]):
        self.raw, self.digest, self.count = raw, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data


def _sample_meta(data: bytes) -> tuple[str, str, str]:
    try:
        sample = json.loads(data)
    except ValueError:
        return "", "", ""
    if not isinstance(sample, dict):
        return "", "", ""
    return tuple(str(sample.get(field) or "") for field in COUNT_FIELDS)  # type: ignore[return-value]


def _scan_members(tar: tarfile.TarFile) -> list[SampleEntry]:
    samples: list[SampleEntry] = []
    key, start, end, meta = None, 0, 0, ("", "", "")
    for member in tar:
        if not member.isfile():
            continue
        match = _KEY_EXT.match(member.name)
        if match is None:
            continue
        member_key, ext = match.groups()
        if member_key != key:
            if key is not None:
                samples.append(SampleEntry(key, start, end, *meta))
            key, start, meta = member_key, member.offset, ("", "", "")
        end = member.offset_data + -(-member.size // _BLOCK) * _BLOCK
        if ext == "json":
            meta = _sample_meta(tar.extractfile(member).read())
    if key is not None:
        samples.append(SampleEntry(key, start, end, *meta))
    return samples


def scan_stream(fileobj: IO[bytes], *, with_sha256: bool = False) -> ShardScan:
    """Scan a tar read front to back from any readable file object (HTTP body, fsspec file, pipe).

    Reads the whole stream once; with_sha256 also hashes it. Returns the shard's table, byte size and hash.
    """
    reader = _HashingReader(fileobj)
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            samples = _scan_members(tar)
    except tarfile.TarError as error:
        raise ValueError(f"not a readable tar: {error}") from error
    while reader.read(1 << 20):  # the end-of-archive blocks and any padding count for size and hash
        pass
    return ShardScan(samples, reader.count, reader.digest.hexdigest() if with_sha256 else None)


_LOCAL_CACHE: dict[tuple[str, int, int], ShardScan] = {}


def scan_local(path: str | os.PathLike) -> ShardScan:
    """Scan a local tar by seeking from header to header (media bytes are skipped, JSON members read).

    Cached per (path, size, mtime); the sha256 is left None (see `sha256_file`). Raises ValueError on a bad tar.
    """
    path = Path(path)
    stat = path.stat()
    cache_key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if cache_key not in _LOCAL_CACHE:
        try:
            with tarfile.open(path, mode="r:") as tar:
                samples = _scan_members(tar)
        except tarfile.TarError as error:
            raise ValueError(f"{path}: not a readable tar: {error}") from error
        _LOCAL_CACHE[cache_key] = ShardScan(samples, stat.st_size)
    return _LOCAL_CACHE[cache_key]


def split_members(blob: bytes) -> dict[str, bytes]:
    """Split the bytes of one sample (its byte range in a tar) into {extension: member bytes}.

    Raises ValueError when the bytes are not whole tar members of a single key.
    """
    import io

    files: dict[str, bytes] = {}
    keys = set()
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
            for member in tar:
                match = _KEY_EXT.match(member.name) if member.isfile() else None
                if match is None:
                    continue
                keys.add(match.group(1))
                files[match.group(2)] = tar.extractfile(member).read()
    except tarfile.TarError as error:
        raise ValueError(f"sample bytes are not tar members: {error}") from error
    if len(keys) != 1:
        raise ValueError(f"sample bytes hold {len(keys)} keys, expected 1")
    return files


@dataclass
class Shard:
    """One shard to read: canonical name (orders shards), location (path or URL), transport and table."""

    name: str
    location: str
    transport: str  # "local" | "http" | "fsspec"
    scan: ShardScan


class ShardReader:
    """Reads shard bytes and JSON over local files, HTTP (httpx, bearer token) and fsspec, for this process.

    Clients are made lazily and re-made after a fork, so a reader can be copied into DataLoader workers.
    """

    def __init__(self, token: str | None = None, storage_options: dict | None = None):
        self.token, self.storage_options = token, dict(storage_options or {})
        self._pid, self._http, self._fs = None, None, {}

    def __getstate__(self):
        return {"token": self.token, "storage_options": self.storage_options}

    def __setstate__(self, state):
        self.__init__(state["token"], state["storage_options"])

    def _fresh(self) -> None:
        if self._pid != os.getpid():
            self._pid, self._http, self._fs = os.getpid(), None, {}

    def http(self):
        """Return this process's httpx client (with the bearer token when one is set)."""
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
        """Return bytes [start, end) of a shard."""
        if shard.transport == "local":
            with open(shard.location, "rb") as handle:
                return os.pread(handle.fileno(), end - start, start)
        if shard.transport == "http":
            response = self.http().get(shard.location, headers={"Range": f"bytes={start}-{end - 1}"})
            if response.status_code == 206:
                return response.content
            if response.status_code == 200:  # a server without Range support: slice the whole body
                return response.content[start:end]
            raise ValueError(f"{shard.location}: HTTP {response.status_code} for bytes {start}-{end - 1}")
        fs, path = self.fs(shard.location)
        return fs.cat_file(path, start=start, end=end)


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
        index = reader.get(f"{base}/index.json").json()
        shards = []
        for entry in index.get("shards", []):
            url = base + entry["url"]
            if entry.get("table"):
                scan = ShardScan.from_table(reader.get(base + entry["table"]).json(), entry.get("bytes", -1))
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
