"""The plan of a build: read the records, name each by a digest of everything that makes its sample, and deal
the records that still need work into work units.

A record's digest covers the settings that change a sample's bytes, the builder version, the record (id, entry,
target, instruction, media requests) and the identity of each raw media file (size and modification time), so a
repaired video is rebuilt. Records whose digest a committed shard or a staged piece already holds are reused, not
cut again. Work units are the fixed chunks of `shard_size` records of each split (the plan's shards before
packing); a unit all of whose records are built is skipped. Written samples are then packed into full shards
(build/pack.py), so missing media never leave underfilled shards or gaps in the numbering.

`plan_build` is pure (records and the set of built digests in, units out): executors other than the local one
run the same units.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from avuie.build.config import BuildConfig
from avuie.build.media_root import MediaRoot
from avuie.builders import Builder, Notice, Record, Reject


@dataclass
class WorkUnit:
    """One chunk of a split's records (`number` = its place in the split); `todo` are the indexes still to build."""

    split: str
    number: int
    records: list[Record]
    digests: list[str]
    todo: list[int] = field(default_factory=list)

    @property
    def skipped(self) -> bool:
        """Every record of the unit is built already."""
        return not self.todo


@dataclass
class BuildPlan:
    """The records of each split in build order with their digests, and the work units."""

    splits: dict[str, list[str]]  # split -> record digests in order
    units: list[WorkUnit]

    def todo_records(self) -> int:
        """Records that still need building."""
        return sum(len(u.todo) for u in self.units)


def read_records(
    builder: Builder, config: BuildConfig
) -> tuple[dict[str, list[Record]], list[Reject], list[Notice]]:
    """Read the raw root: records grouped by split (read order, `limit` per split, media looked up under the
    media root when one is set), entry rejects and notices."""
    by_split: dict[str, list[Record]] = {}
    rejects: list[Reject] = []
    notices: list[Notice] = []
    wanted = set(config.splits) if config.splits else None
    media = MediaRoot(config.raw, config.media_root) if config.media_root else None
    for item in builder.entries(Path(config.raw)):
        if wanted is not None and item.split not in wanted:
            continue
        if isinstance(item, Notice):
            notices.append(item)
            continue
        if isinstance(item, Reject):
            rejects.append(item)
            continue
        records = by_split.setdefault(item.split, [])
        if config.limit is None or len(records) < config.limit:
            records.append(media.remap(item) if media else item)
    return by_split, rejects, notices


def media_identity(path: Path) -> str:
    """What identifies a raw file's bytes cheaply: `size:mtime_ns`, or `missing` / the OS error's name."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return "missing" if isinstance(exc, FileNotFoundError) else type(exc).__name__
    return f"{st.st_size}:{st.st_mtime_ns}"


def record_digest(record: Record, content_fingerprint: str, builder_version: str) -> str:
    """sha256 (hex, 32 chars) over what a record's sample is made from (see the module docstring)."""
    target = record.target.model_dump_json() if record.target is not None else ""
    media = [
        (
            type(m).__name__,
            str(m.path),
            media_identity(m.path),
            getattr(m, "start", 0),
            getattr(m, "duration", None),
        )
        for m in record.media
    ]
    text = (
        f"{content_fingerprint}\t{builder_version}\t{record.split}/{record.native_id}\t{record.entry}\t"
        f"{target}\t{media}\t{record.instruction}\t{record.annotation_file}\t{record.annotation_row}"
    )
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def plan_build(
    by_split: dict[str, list[Record]], digests: dict[str, list[str]], built: set[str], shard_size: int
) -> BuildPlan:
    """Deal each split's records (splits sorted) into units of `shard_size`; mark the records not in `built`."""
    units = []
    for split in sorted(by_split):
        records, keys = by_split[split], digests[split]
        for number, i in enumerate(range(0, len(records), shard_size)):
            chunk = keys[i : i + shard_size]
            todo = [j for j, d in enumerate(chunk) if d not in built]
            units.append(WorkUnit(split, number, records[i : i + shard_size], chunk, todo))
    return BuildPlan({s: digests[s] for s in sorted(by_split)}, units)


def digest_records(
    builder: Builder, config: BuildConfig, by_split: dict[str, list[Record]]
) -> dict[str, list[str]]:
    """The digest of every record, per split in order."""
    fp = config.content_fingerprint()
    return {s: [record_digest(r, fp, str(builder.version)) for r in recs] for s, recs in by_split.items()}


def check_splits(builder: Builder, config: BuildConfig, by_split: dict, rejects: list[Reject]) -> None:
    """Raise ValueError when a split the config asks for has no entry at all in the raw root."""
    if not config.splits:
        return
    seen = set(by_split) | {r.split for r in rejects}
    missing = [s for s in config.splits if s not in seen]
    if missing:
        raise ValueError(
            f"{builder.name}: no entries for split(s) {', '.join(missing)} in {config.raw}; "
            f"this source's splits are {', '.join(builder.splits)}"
        )
