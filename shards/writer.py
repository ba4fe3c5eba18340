"""WebDataset shard writing: plain tar files, written atomically, with a completion marker per shard.

A shard is written as `<name>.tar.tmp` and renamed to `<name>.tar` once complete, so a reader never sees a
truncated tar. The per-shard `<name>.done.json` (written last) holds the shard's manifest rows, its rejects and its
counts: its presence is what tells a rerun that the shard is finished. `finalize_build` gathers every marker into
`manifest.parquet`, `rejects.parquet` and `stats.json`.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from avuie.shards.layout import MANIFEST, REJECTS, STATS, list_done, temp_files, tmp_path

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


def iter_tar_samples(path: Path | str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Yield (key, {ext: bytes}) for each sample of a tar shard, members grouped by key (first dot)."""
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


def remove_stale_temp(directory: Path) -> int:
    """Delete `*.tmp` leftovers of a killed run under `directory`; return how many were removed."""
    n = 0
    for p in temp_files(directory):
        p.unlink(missing_ok=True)
        n += 1
    return n


def _table(rows: list[dict[str, Any]], columns: dict[str, pa.DataType]) -> pa.Table:
    data = {c: [None if r.get(c) is None else r.get(c) for r in rows] for c in columns}
    for c, t in columns.items():
        if t == pa.string():
            data[c] = [None if v is None else str(v) for v in data[c]]
    return pa.table(data, schema=pa.schema(list(columns.items())))


def write_parquet(rows: list[dict[str, Any]], columns: dict[str, pa.DataType], path: Path) -> None:
    """Write rows as a parquet file with a fixed schema (atomically)."""
    path = Path(path)
    tmp = tmp_path(path)
    pq.write_table(_table(rows, columns), tmp)
    os.replace(tmp, path)


def finalize_build(
    out: Path, entry_rejects: list[dict[str, Any]], extra_stats: dict[str, Any]
) -> dict[str, Any]:
    """Gather shard markers into manifest.parquet, rejects.parquet and stats.json; return the stats."""
    out = Path(out)
    rows: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = list(entry_rejects)
    splits: dict[str, dict[str, Any]] = {}

    def split_stats(split: str) -> dict[str, Any]:
        return splits.setdefault(split, {"in": 0, "written": 0, "rejected": 0, "reasons": {}, "shards": 0})

    for r in entry_rejects:
        s = split_stats(r["split"])
        s["in"] += 1
        s["rejected"] += 1
        s["reasons"][r["reason"]] = s["reasons"].get(r["reason"], 0) + 1
    for marker in list_done(out):
        done = json.loads(marker.read_text())
        rows.extend(done["manifest"])
        rejects.extend(done["rejects"])
        s = split_stats(done["split"])
        s["shards"] += len(done["tars"])
        s["in"] += done["in"]
        s["written"] += len(done["manifest"])
        s["rejected"] += len(done["rejects"])
        for r in done["rejects"]:
            s["reasons"][r["reason"]] = s["reasons"].get(r["reason"], 0) + 1
    write_parquet(rows, MANIFEST_COLUMNS, out / MANIFEST)
    write_parquet(rejects, REJECT_COLUMNS, out / REJECTS)
    totals = {k: sum(s[k] for s in splits.values()) for k in ("in", "written", "rejected")}
    stats = {"splits": splits, "totals": totals, **extra_stats}
    write_json_atomic(out / STATS, stats)
    return stats


def rewrite_shard(
    tar_path: Path, update: Callable[[str, dict[str, bytes]], dict[str, bytes] | None]
) -> list[str]:
    """Rewrite a shard in place (atomically), passing each sample's members through `update`.

    `update(key, members)` returns new members or None to keep the sample unchanged. Returns the keys that
    changed. The caller updates the manifest rows (see `update_done_rows`).
    """
    tar_path = Path(tar_path)
    changed: list[str] = []
    writer = TarShardWriter(tar_path)
    try:
        for key, members in iter_tar_samples(tar_path):
            new = update(key, members)
            if new is not None:
                changed.append(key)
                members = new
            writer.write(key, members)
    except BaseException:
        writer.abort()
        raise
    writer.close()
    return changed


def update_done_rows(marker: Path, rows_by_key: dict[str, dict[str, Any]]) -> None:
    """Replace manifest rows (by key) inside a shard's done marker."""
    done = json.loads(Path(marker).read_text())
    done["manifest"] = [rows_by_key.get(r["key"], r) for r in done["manifest"]]
    write_json_atomic(Path(marker), done)
