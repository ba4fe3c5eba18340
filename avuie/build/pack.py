"""Pack the written samples of a split into full shards, numbered 0, 1, 2 ... without gaps.

Shard k of a split holds written samples k*shard_size ... (k+1)*shard_size - 1 in record order, split into parts
by `shard_bytes` as a writer would (a new part once the current one passed the limit). A rejected record is
listed by the shard that holds the next written sample (the last shard for trailing rejects; shard 0, without
tars, for a split that wrote nothing), so every shard marker keeps in = written + rejected.

A shard whose committed marker has the same settings and the same records is kept as it is (its samples, human
chains included, are not rewritten). Any other shard is staged: a part that is exactly one staged piece is moved,
any other part is copied together from its samples' byte ranges (staged pieces or committed tars); both give the
bytes a fresh writer would.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avuie.build.ledger import Outcome
from avuie.shards.index import TABLE_COLUMNS
from avuie.shards.layout import part_name, shard_name, shard_rel
from avuie.shards.txn import Transaction
from avuie.shards.writer import copy_samples


@dataclass
class PlannedShard:
    """One output shard: name, split, records ([digest, key] in order), its samples and its reject rows."""

    name: str
    split: str
    records: list[list[str]] = field(default_factory=list)
    samples: list[Outcome] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)


def pack_split(
    source: str, split: str, digests: list[str], outcomes: dict[str, Outcome], size: int
) -> list[PlannedShard]:
    """Deal the outcomes of a split's records (in order) into shards of `size` written samples."""
    written = sum(outcomes[d].written for d in digests)
    count = max(1, -(-written // size))
    shards = [PlannedShard(shard_name(source, split, k), split) for k in range(count)]
    seen = 0
    for digest in digests:
        outcome = outcomes[digest]
        shard = shards[min(seen // size, count - 1)]
        shard.records.append([digest, outcome.key])
        if outcome.written:
            shard.samples.append(outcome)
            seen += 1
        else:
            shard.rejects.append(outcome.row)
    return shards


def parts(samples: list[Outcome], max_bytes: int) -> list[list[Outcome]]:
    """Samples split into tar parts: a new part starts once the current one holds more than `max_bytes`."""
    out: list[list[Outcome]] = []
    size = 0
    for sample in samples:
        if not out or size > max_bytes:
            out.append([])
            size = 0
        out[-1].append(sample)
        size += sample.end - sample.start
    return out


def records_digest(records: list[list[str]]) -> str:
    """sha256 over a shard's record digests and keys (the marker's `records_digest`)."""
    return hashlib.sha256("\n".join(f"{d}\t{k}" for d, k in records).encode()).hexdigest()


def _table(samples: list[Outcome]) -> tuple[list[list[Any]], list[tuple[Path, int, int]]]:
    rows, ranges, offset = [], [], 0
    for s in samples:
        length = s.end - s.start
        rows.append([s.key, offset, offset + length, s.row["source"], s.row["family"], s.row["split"]])
        ranges.append((s.tar, s.start, s.end))
        offset += length
    return rows, ranges


def stage_part(
    txn: Transaction, rel: str, samples: list[Outcome], pieces: dict[Path, dict]
) -> dict[str, Any]:
    """Stage one tar part made of `samples`; return its tars_info entry (bytes, sha256, table).

    `pieces` maps each staged piece tar to its tars_info; a part equal to a whole piece moves that file."""
    first = samples[0].tar
    info = pieces.get(first)
    whole = (
        info is not None
        and all(s.tar == first for s in samples)
        and len(samples) == len(info["table"]["rows"])
        and [s.key for s in samples] == [r[0] for r in info["table"]["rows"]]
    )
    if whole:
        txn.move(first, rel)
        return info
    rows, ranges = _table(samples)
    nbytes, sha = copy_samples(txn.stage(rel), ranges)
    txn.move(txn.stage(rel), rel)
    return {"bytes": nbytes, "sha256": sha, "table": {"columns": list(TABLE_COLUMNS), "rows": rows}}


def stage_shard(
    txn: Transaction, shard: PlannedShard, meta: dict[str, Any], max_bytes: int, pieces: dict[Path, dict]
) -> dict[str, Any]:
    """Stage the tars of a planned shard; return its marker (with `meta`: source, fingerprints)."""
    tars, infos, manifest = [], {}, []
    for k, samples in enumerate(parts(shard.samples, max_bytes)):
        name = part_name(shard.name, k)
        rel = shard_rel(shard.split, name)
        infos[name] = stage_part(txn, rel, samples, pieces)
        tars.append(name)
        manifest += [dict(s.row, shard=rel) for s in samples]
    return {
        **meta,
        "shard": shard.name,
        "split": shard.split,
        "records": shard.records,
        "records_digest": records_digest(shard.records),
        "tars": tars,
        "tars_info": infos,
        "in": len(shard.records),
        "manifest": manifest,
        "rejects": shard.rejects,
    }
