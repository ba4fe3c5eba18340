"""Describe what shards hold (tables of samples with byte ranges, counts, markers, checksums) and find local ones.

A shard is a plain WebDataset tar whose samples are runs of contiguous members `<key>.<ext>`. Its *table* lists
every sample with the byte range it fills in the tar (from the first member header to the end of the last member's
data) and the `source`, `family` and `split` of its JSON, so that a reader can fetch one sample with a single
ranged read (local `pread`, HTTP `Range`, `fs.cat_file(start, end)`).

Tables travel as JSON `{"columns": TABLE_COLUMNS, "rows": [[key, start, end, source, family, split], ...]}`:
the server answers them at `/_table/<shard path>`, and a writer may store one per tar in the shard's marker,
`done["tars_info"][tar_name] = {"bytes", "sha256", "table"}`, so that readers of remote storage (s3://...) need
not read the whole tar once to find its samples.

Finding and reading shards of any source (local, HTTP, fsspec) is avuie.shards.remote's job. This module imports
no torch (the server uses it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

from avuie.shards.layout import done_candidates, find_manifests
from avuie.shards.members import unpack

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


def split_members(blob: bytes | memoryview) -> dict[str, bytes]:
    """Split the bytes of one sample (its byte range in a tar) into its logical {extension: member bytes}
    (`json` in its model_dump form, one member per media file: shards/members.py `unpack`).

    Plain ustar members are read straight from their headers; other header kinds (long names, pax) go through
    tarfile. Raises ValueError when the bytes are not whole tar members of a single key or cannot be unpacked.
    """
    members = _plain_members(blob)
    if members is None:
        members = _tarfile_members(blob)
    files: dict[str, bytes] = {}
    keys = set()
    for name, data in members:
        match = _KEY_EXT.match(name)
        if match is not None:
            keys.add(match.group(1))
            files[match.group(2)] = data
    if len(keys) != 1:
        raise ValueError(f"sample bytes hold {len(keys)} keys, expected 1")
    return unpack(files)


def _plain_members(blob: bytes | memoryview) -> list[tuple[str, bytes]] | None:
    """(name, data) of the regular files in blob when every header is a plain ustar/v7 one, else None.

    Raises ValueError on a header whose checksum is wrong or a member that runs past the end of blob.
    """
    view, found, offset = memoryview(blob), [], 0
    while offset + _BLOCK <= len(view):
        header = bytes(view[offset : offset + _BLOCK])
        if header.count(0) == _BLOCK:
            break  # end-of-archive blocks
        kind, size_field = header[156:157], header[124:136]
        if kind not in (b"0", b"\0", b"5") or size_field[0] & 0x80:
            return None  # long names, pax headers, links, base-256 sizes: tarfile knows them
        stored = int(header[148:156].split(b"\0", 1)[0].strip() or b"0", 8)
        if stored != sum(header[:148]) + 256 + sum(header[156:]):
            raise ValueError(f"sample bytes are not tar members: bad header checksum at byte {offset}")
        size = int(size_field.split(b"\0", 1)[0].strip() or b"0", 8)
        start = offset + _BLOCK
        if start + size > len(view):
            raise ValueError(f"sample bytes are not tar members: a member runs past the end at byte {offset}")
        if kind != b"5":
            name = header[:100].split(b"\0", 1)[0]
            if header[257:262] == b"ustar" and header[345] != 0:
                name = header[345:500].split(b"\0", 1)[0] + b"/" + name
            found.append((name.decode("utf-8", "surrogateescape"), bytes(view[start : start + size])))
        offset = start + -(-size // _BLOCK) * _BLOCK
    if offset < len(view) and bytes(view[offset:]).count(0) != len(view) - offset:
        raise ValueError(f"sample bytes are not tar members: they end inside a header at byte {offset}")
    return found


def _tarfile_members(blob: bytes | memoryview) -> list[tuple[str, bytes]]:
    import io

    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
            return [(m.name, tar.extractfile(m).read()) for m in tar if m.isfile()]
    except tarfile.TarError as error:
        raise ValueError(f"sample bytes are not tar members: {error}") from error
