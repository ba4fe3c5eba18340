"""WebDataset shard writing: plain tar files (fixed headers, so equal samples give equal bytes), the samples of
existing tars copied into a new one by byte range, and the manifest/rejects columns.

A tar is written as `<path>.tmp` and renamed to `<path>` once complete and fsynced, so nobody sees a truncated tar.
Builds write their tars inside `OUT/.avuie-tmp/` and a commit moves them into place together with their markers
and the manifest (shards/txn.py, shards/derived.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from avuie.shards.layout import tmp_path
from avuie.shards.members import is_packed, pack, unpack

MANIFEST_COLUMNS: dict[str, pa.DataType] = {
    "id": pa.string(),
    "key": pa.string(),
    "source": pa.string(),
    "family": pa.string(),
    "split": pa.string(),
    "shard": pa.string(),
    "num_bytes": pa.int64(),
    "media_duration": pa.float64(),
    "num_frames": pa.int64(),
    "audio_seconds": pa.float64(),
    "label": pa.string(),
    "answer": pa.string(),
    "instruction": pa.string(),
    "response": pa.string(),
    "reasoning_kind": pa.string(),
    "reasoning_chars": pa.int64(),
    "content_hash": pa.string(),
}

REJECT_COLUMNS: dict[str, pa.DataType] = {
    "id_or_row": pa.string(),
    "source": pa.string(),
    "split": pa.string(),
    "reason": pa.string(),
    "detail": pa.string(),
    "annotation_file": pa.string(),
    "annotation_row": pa.string(),
}


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


class TarShardWriter:
    """Write one tar shard atomically: members go to `<path>.tmp`, `close()` syncs and renames it to `path`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_path(self.path)
        self._fh = open(self.tmp, "wb")  # noqa: SIM115 - closed in close()
        self._tar = tarfile.open(fileobj=self._fh, mode="w", format=tarfile.USTAR_FORMAT)
        self.count = 0

    def write(self, key: str, members: dict[str, bytes]) -> int:
        """Add one sample (`key.ext` per member, in the given order); return the bytes it added."""
        before = self._fh.tell()
        for ext, data in members.items():
            self._tar.addfile(_tarinfo(f"{key}.{ext}", len(data)), io.BytesIO(data))
        self.count += 1
        return self._fh.tell() - before

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._fh.tell()

    def close(self) -> None:
        """Finish the tar, fsync it and move it to its final name."""
        self._tar.close()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the temporary file."""
        try:
            self._tar.close()
            self._fh.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to `path` via a temporary file and a rename."""
    path = Path(path)
    tmp = tmp_path(path)
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def iter_tar_samples(path: Path | str, unpacked: bool = True) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield (key, {ext: bytes}) for each sample of a tar shard, members grouped by key (first dot).

    With `unpacked` (the default) the members are the sample's logical ones (`json` in its model_dump form, one
    member per media file, see shards/members.py); else as stored. Raises ValueError on a sample whose stored
    members cannot be unpacked.
    """
    for key, members in _iter_stored(path):
        yield key, unpack(members) if unpacked else members


def _iter_stored(path: Path | str) -> Iterator[tuple[str, dict[str, bytes]]]:
    key: str | None = None
    members: dict[str, bytes] = {}
    with tarfile.open(path, mode="r|*") as tar:
        for info in tar:
            if not info.isfile():
                continue
            base = info.name.rsplit("/", 1)[-1]
            k, _, ext = base.partition(".")
            data = tar.extractfile(info).read()  # type: ignore[union-attr]
            if key is not None and k != key:
                yield key, members
                members = {}
            key = k
            members[ext] = data
    if key is not None:
        yield key, members


def table_of(rows: list[dict[str, Any]], columns: dict[str, pa.DataType]) -> pa.Table:
    """An Arrow table of `rows` with the fixed schema `columns` (missing fields are nulls)."""
    data = {c: [None if r.get(c) is None else r.get(c) for r in rows] for c in columns}
    for c, t in columns.items():
        if t == pa.string():
            data[c] = [None if v is None else str(v) for v in data[c]]
    return pa.table(data, schema=pa.schema(list(columns.items())))


def write_parquet(rows: list[dict[str, Any]], columns: dict[str, pa.DataType], path: Path) -> None:
    """Write rows as a parquet file with a fixed schema (atomically)."""
    path = Path(path)
    tmp = tmp_path(path)
    pq.write_table(table_of(rows, columns), tmp)
    os.replace(tmp, path)


def rewrite_shard(
    src: Path, dst: Path, update: Callable[[str, dict[str, bytes]], dict[str, bytes] | None]
) -> list[str]:
    """Write a copy of tar `src` to `dst` (atomically), passing each sample's members through `update`.

    `update(key, members)` gets the logical members (see `iter_tar_samples`) and returns new ones (logical, or
    as stored: `avuie.build.assemble.sample_members`) or None to keep the sample unchanged. Returns the keys that
    changed. `src` is only read: the caller commits `dst` in its place (shards/txn.py).
    """
    changed: list[str] = []
    writer = TarShardWriter(Path(dst))
    try:
        for key, stored in iter_tar_samples(src, unpacked=False):
            new = update(key, unpack(stored))
            if new is not None:
                changed.append(key)
                stored = new if is_packed(new) else pack(new)
            writer.write(key, stored)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return changed


def copy_samples(dst: Path, ranges: list[tuple[Path, int, int]]) -> tuple[int, str]:
    """Write a tar at `dst` (atomically, fsynced) made of byte ranges [start, end) of other tars, each range one
    whole sample (its members' headers and padded data); return (size, sha256).

    The end-of-archive blocks and padding are those `tarfile` writes, so copying the samples of a tar that
    `TarShardWriter` wrote gives the same bytes as writing them again.
    """
    dst = Path(dst)
    tmp = tmp_path(dst)
    digest, size = hashlib.sha256(), 0
    handles: dict[Path, Any] = {}
    try:
        with open(tmp, "wb") as fh:
            for path, start, end in ranges:
                if path not in handles:
                    handles[path] = open(path, "rb")  # noqa: SIM115 - closed below
                data = os.pread(handles[path].fileno(), end - start, start)
                if len(data) != end - start:
                    raise OSError(f"{path}: short read of bytes {start}-{end}")
                fh.write(data)
                digest.update(data)
                size += len(data)
            tail = b"\0" * (2 * tarfile.BLOCKSIZE)
            tail += b"\0" * (-(size + len(tail)) % tarfile.RECORDSIZE)
            fh.write(tail)
            digest.update(tail)
            size += len(tail)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        for handle in handles.values():
            handle.close()
    os.replace(tmp, dst)
    return size, digest.hexdigest()
