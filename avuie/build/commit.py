"""Commit a build: pack every split's outcomes into shards, stage them with their markers, the source's record and
the derived files, and make them visible together (shards/txn.py).

The commit also deletes what the new state no longer has, and only that: markers of this source's shards that
the plan no longer produces, and tars that this source's markers listed but the new markers do not (stale parts
of an earlier `--shard-bytes`). Other sources' shards and every file avuie did not list are left alone.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avuie.build import counters
from avuie.build.assemble import reject_row
from avuie.build.config import BuildConfig
from avuie.build.finalise import build_info, notice_counts
from avuie.build.ledger import Ledger, Outcome
from avuie.build.pack import pack_split, stage_shard
from avuie.build.plan import BuildPlan
from avuie.builders import Builder, Notice, Record, Reject
from avuie.shards.derived import derive, read_record, record_rel
from avuie.shards.layout import done_name, shard_of_done, shard_rel, split_dir, stage_dir, staged
from avuie.shards.txn import Transaction


@dataclass
class Built:
    """What a commit needs: the plan, the committed and staged ledgers, and what the records read gave."""

    plan: BuildPlan
    committed: Ledger
    pieces: Ledger
    pieces_dir: Path
    by_split: dict[str, list[Record]]
    entry_rejects: list[Reject]
    notices: list[Notice]


def _keep(old: dict[str, Any] | None, records: list[list[str]], fingerprint: str) -> bool:
    return old is not None and old.get("fingerprint") == fingerprint and old.get("records") == records


def _stage_shards(txn: Transaction, config: BuildConfig, source: str, built: Built) -> tuple[dict, int]:
    """Stage every shard that changes; return ({shard name: new marker, or None when kept}, shards kept)."""
    outcomes: dict[str, Outcome] = {**built.pieces.outcomes, **built.committed.outcomes}
    pieces = {
        staged(built.pieces_dir, name): info
        for marker in built.pieces.markers.values()
        for name, info in marker.get("tars_info", {}).items()
    }
    meta = {
        "source": source,
        "fingerprint": config.fingerprint(),
        "content_fingerprint": config.content_fingerprint(),
    }
    old = {shard_of_done(m): d for m, d in built.committed.markers.items()}
    new: dict[str, dict[str, Any] | None] = {}
    for split, digests in built.plan.splits.items():
        for shard in pack_split(source, split, digests, outcomes, config.shard_size):
            if _keep(old.get(shard.name), shard.records, meta["fingerprint"]):
                new[shard.name] = None
            else:
                new[shard.name] = stage_shard(txn, shard, meta, config.shard_bytes, pieces)
    for name, marker in new.items():  # markers after every tar: the journal renames in this order
        if marker is not None:
            txn.write_json(shard_rel(marker["split"], done_name(name)), marker)
    return new, sum(m is None for m in new.values())


def _delete_stale(txn: Transaction, out: Path, committed: Ledger, new: dict[str, Any]) -> None:
    """Delete this source's markers the plan no longer has, and tars its old markers list that the new do not."""
    for marker in list(committed.markers) + committed.untrusted:
        name = shard_of_done(marker)
        if name in new and new[name] is None:
            continue  # kept as it is
        try:
            old_tars = json.loads(marker.read_text()).get("tars", [])
        except (OSError, ValueError):
            old_tars = []
        keep = set(new[name]["tars"]) if name in new else set()
        for tar in old_tars:
            if tar not in keep:
                txn.delete((marker.parent / tar).relative_to(out).as_posix())
        if name not in new:
            txn.delete(marker.relative_to(out).as_posix())


def reasoning_totals(built: Built, previous: dict[str, Any], engine_stats: dict[str, Any]) -> dict[str, Any]:
    """The build's reasoning counters: those of every piece committed now (this run and the killed runs it
    resumed), plus the previous build's when some of its samples are kept; descriptions from the engine."""
    planned = {d for ds in built.plan.splits.values() for d in ds}
    earlier = [previous] if previous and planned & set(built.committed.outcomes) else []
    pieces = [
        m.get("reasoning", {})
        for m in built.pieces.markers.values()
        if any(d in planned for d, _ in m["records"])
    ]  # pieces of an older plan that this one does not use are not counted
    return counters.total(earlier + pieces + [counters.describe(engine_stats)])


def commit_build(
    builder: Builder, config: BuildConfig, built: Built, engine_stats: dict[str, Any], skipped: int
) -> dict[str, Any]:
    """Stage and commit the new state of this source; return its part of stats.json."""
    out = Path(config.out)
    txn = Transaction(out, built.pieces_dir.parent / "txn")
    shutil.rmtree(txn.folder, ignore_errors=True)  # a killed commit's staging (never journaled)
    new, kept = _stage_shards(txn, config, builder.name, built)
    _delete_stale(txn, out, built.committed, new)
    for split in built.plan.splits:
        split_dir(out, split).mkdir(parents=True, exist_ok=True)
    previous = read_record(out, builder.name)
    record = {
        "source": builder.name,
        "family": builder.family.value,
        "entry_rejects": [reject_row(builder.name, r) for r in built.entry_rejects],
        "notices": notice_counts(built.notices),
        "extra": {
            "shards_skipped": skipped,
            "shards_kept": kept,
            "reasoning": reasoning_totals(
                built, previous.get("extra", {}).get("reasoning", {}), engine_stats
            ),
        },
        "build": build_info(builder, config, built.by_split, built.entry_rejects),
        "rewrites": previous.get("rewrites", []),
    }
    txn.write_json(record_rel(builder.name), record)
    stats: dict[str, Any] = {}
    txn.commit(lambda t: stats.update(derive(t)), label=f"build-{builder.name}")
    return stats.get("sources", {}).get(builder.name, stats)


def note_interrupted(builder: Builder, config: BuildConfig, pieces: Ledger, why: str, resume: str) -> None:
    """Record in the source's record (and stats.json) that a build stopped early, what it staged and how to
    resume; the committed shards stay as they were."""
    out = Path(config.out)
    record = read_record(out, builder.name) or {"source": builder.name, "family": builder.family.value}
    rows = list(pieces.outcomes.values())
    record.setdefault("extra", {})
    record["extra"].update(
        interrupted=why,
        resume=resume,
        staged={
            "pieces": len(pieces.markers),
            "written": sum(o.written for o in rows),
            "rejected": sum(not o.written for o in rows),
            "reasoning": counters.total(pieces.counters),
        },
    )
    txn = Transaction(out, stage_dir(out, builder.name) / "note")
    txn.write_json(record_rel(builder.name), record)
    txn.commit(derive, label=f"note-{builder.name}")
