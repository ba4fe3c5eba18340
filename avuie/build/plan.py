"""The shard plan of a build: read the records, deal them into shards, tell finished shards from the rest.

Records of each split are dealt into fixed chunks of `shard_size` records in read order; each chunk becomes one
shard (named by shards/layout.py). A shard whose completion marker matches the build's settings and records is
finished and skipped on a rerun; markers of shards the plan no longer has are removed with their tars.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from avuie.build.config import BuildConfig
from avuie.builders import Builder, Notice, Record, Reject
from avuie.shards.layout import done_name, list_done, shard_name, shard_of_done, split_dir


@dataclass
class ShardJob:
    """One shard to build: its split, name, folder and records."""

    split: str
    name: str
    folder: Path
    records: list[Record]

    @property
    def marker(self) -> Path:
        """The shard's completion marker."""
        return self.folder / done_name(self.name)


def read_records(
    builder: Builder, config: BuildConfig
) -> tuple[dict[str, list[Record]], list[Reject], list[Notice]]:
    """Read the raw root: records grouped by split (read order, `limit` per split), entry rejects and notices."""
    by_split: dict[str, list[Record]] = {}
    rejects: list[Reject] = []
    notices: list[Notice] = []
    wanted = set(config.splits) if config.splits else None
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
            records.append(item)
    return by_split, rejects, notices


def plan_shards(source: str, by_split: dict[str, list[Record]], config: BuildConfig) -> list[ShardJob]:
    """Deal each split's records (splits in sorted order) into shards of `config.shard_size` records."""
    jobs = []
    for split in sorted(by_split):
        records = by_split[split]
        for i in range(0, len(records), config.shard_size):
            name = shard_name(source, split, i // config.shard_size)
            jobs.append(
                ShardJob(split, name, split_dir(config.out, split), records[i : i + config.shard_size])
            )
    return jobs


def chunk_digest(records: list[Record]) -> str:
    """sha256 over what a shard is made from (ids, entries, targets, raw media paths and cut settings)."""
    h = hashlib.sha256()
    for r in records:
        target = r.target.model_dump_json() if r.target is not None else ""
        media = [
            (type(m).__name__, str(m.path), getattr(m, "start", 0), getattr(m, "duration", None))
            for m in r.media
        ]
        h.update(f"{r.split}/{r.native_id}\t{r.entry}\t{target}\t{media}\t{r.instruction}\n".encode())
    return h.hexdigest()


def is_done(marker: Path, fingerprint: str, digest: str) -> bool:
    """A shard counts as finished when its marker exists and was made with the same settings and records."""
    if not marker.exists():
        return False
    try:
        done = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return done.get("fingerprint") == fingerprint and done.get("records_digest") == digest


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


def drop_orphans(out: Path, jobs: list[ShardJob]) -> None:
    """Remove shards of an earlier build that this build's plan no longer produces."""
    wanted = {job.name for job in jobs}
    for marker in list_done(out):
        if shard_of_done(marker) not in wanted:
            done = json.loads(marker.read_text())
            for tar in done.get("tars", []):
                (marker.parent / tar).unlink(missing_ok=True)
            marker.unlink()
