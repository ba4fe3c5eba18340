"""The files derived from a build folder's shard markers and source records: manifest.parquet, rejects.parquet,
stats.json and build.json, staged inside a commit (shards/txn.py) so they change together with the shards.

The markers and the source records are the truth; everything here is recomputed from them at every commit, so a
commit also repairs derived files that drifted. A source record (`sources/<source>.json`) holds what a build of
that source knows beyond its shards: `family`, `entry_rejects` (reject rows of annotation entries that made no
record), `notices` (counts per split and kind), `extra` (stats fields: shards skipped, reasoning counters ...),
`build` (the build.json content of its last complete build) and `rewrites` (chain rewrites applied since).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from avuie.shards.layout import BUILD_INFO, MANIFEST, REJECTS, SOURCES_DIR, STATS, marker_source
from avuie.shards.txn import Transaction
from avuie.shards.writer import MANIFEST_COLUMNS, REJECT_COLUMNS, table_of


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _parquet(rows: list[dict[str, Any]], columns: dict) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table_of(rows, columns), sink)
    return sink.getvalue()


def _split_stats(splits: dict[str, dict[str, Any]], split: str) -> dict[str, Any]:
    return splits.setdefault(split, {"in": 0, "written": 0, "rejected": 0, "reasons": {}, "shards": 0})


def _count_rejects(s: dict[str, Any], rejects: list[dict[str, Any]]) -> None:
    for r in rejects:
        s["reasons"][r["reason"]] = s["reasons"].get(r["reason"], 0) + 1


def source_stats(record: dict[str, Any], markers: list[dict[str, Any]]) -> dict[str, Any]:
    """One source's stats.json part: per split in/written/rejected/reasons/shards, totals, and its record's extras."""
    splits: dict[str, dict[str, Any]] = {}
    for r in record.get("entry_rejects", []):
        s = _split_stats(splits, r["split"])
        s["in"] += 1
        s["rejected"] += 1
        _count_rejects(s, [r])
    for done in markers:
        s = _split_stats(splits, done["split"])
        s["shards"] += len(done.get("tars", []))
        s["in"] += done.get("in", 0)
        s["written"] += len(done.get("manifest", []))
        s["rejected"] += len(done.get("rejects", []))
        _count_rejects(s, done.get("rejects", []))
    totals = {k: sum(s[k] for s in splits.values()) for k in ("in", "written", "rejected")}
    stats = {
        "splits": splits,
        "totals": totals,
        "source": record.get("source", ""),
        "family": record.get("family", ""),
    }
    stats.update(record.get("extra", {}))
    stats["notices"] = record.get("notices", {})
    if record.get("rewrites"):
        stats["reasoning_rewrites"] = record["rewrites"]
    return stats


def _gather(txn: Transaction) -> tuple[dict[str, dict], dict[str, list[dict]], list[dict], list[dict]]:
    """(records by source, markers by source, manifest rows, marker reject rows) of the state after `txn`."""
    records = {}
    for rel, path in txn.view_records():
        rec = _load(path)
        records[rec.get("source") or Path(rel).stem] = rec
    by_source: dict[str, list[dict]] = {}
    rows: list[dict] = []
    rejects: list[dict] = []
    for rel, path in txn.view_markers():
        done = _load(path)
        if "split" not in done:
            continue
        by_source.setdefault(marker_source(rel, done), []).append(done)
        rows.extend(done.get("manifest", []))
        rejects.extend(done.get("rejects", []))
    for source in by_source:
        records.setdefault(source, {"source": source})
    return records, by_source, rows, rejects


def derive(txn: Transaction) -> dict[str, Any]:
    """Stage manifest.parquet, rejects.parquet, stats.json and (when a record holds one) build.json for the state
    after `txn`; return the stats.json content."""
    records, by_source, rows, marker_rejects = _gather(txn)
    entry_rejects = [r for name in sorted(records) for r in records[name].get("entry_rejects", [])]
    txn.write(MANIFEST, _parquet(rows, MANIFEST_COLUMNS))
    txn.write(REJECTS, _parquet(entry_rejects + marker_rejects, REJECT_COLUMNS))
    parts = {name: source_stats(records[name], by_source.get(name, [])) for name in sorted(records)}
    infos = {name: rec["build"] for name, rec in sorted(records.items()) if rec.get("build")}
    if len(parts) == 1:
        stats = next(iter(parts.values()))
    else:
        totals = {k: sum(p["totals"][k] for p in parts.values()) for k in ("in", "written", "rejected")}
        stats = {"sources": parts, "totals": totals}
    txn.write_json(STATS, stats)
    if infos:
        txn.write_json(BUILD_INFO, next(iter(infos.values())) if len(records) == 1 else {"sources": infos})
    return stats


def record_rel(source: str) -> str:
    """The relative path of a source's record (see shards/layout.py `source_record`)."""
    return f"{SOURCES_DIR}/{source}.json"


def read_record(out: str | Path, source: str) -> dict[str, Any]:
    """A source's record as committed ({} when the source has none)."""
    return _load(Path(out) / record_rel(source))


def finalize_build(
    out: Path, entry_rejects: list[dict[str, Any]], extra_stats: dict[str, Any]
) -> dict[str, Any]:
    """Record a source (`extra_stats["source"]`, its entry rejects and extra stats fields) and commit the derived
    files of the markers already in `out`; return the stats.json content. For hand-made builds and tests."""
    from avuie.shards.layout import stage_dir

    out = Path(out)
    source = str(extra_stats.get("source", ""))
    record = {
        "source": source,
        "family": extra_stats.get("family", ""),
        "entry_rejects": entry_rejects,
        "extra": {k: v for k, v in extra_stats.items() if k not in ("source", "family", "notices")},
        "notices": extra_stats.get("notices", {}),
    }
    txn = Transaction(out, stage_dir(out, "finalize"))
    txn.write_json(record_rel(source), record)
    result: dict[str, Any] = {}
    txn.commit(lambda t: result.update(derive(t)), label="finalize")
    return result
