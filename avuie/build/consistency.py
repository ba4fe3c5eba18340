"""Whether a build folder's parts agree: tars, shard markers, manifest and pending commits (`avuie validate`),
and `repair`: finish an interrupted commit and recompute the derived files from the markers (`avuie repair`).

What a marker lists is the truth about a shard; a tar it does not list was not written by this build (a stale
part of an older avuie, or a user's file) and is reported, never deleted. A marker whose tars changed cannot be
repaired from what is on disk: `avuie build` of its source rebuilds that shard.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from avuie.shards.derived import derive
from avuie.shards.index import sha256_file
from avuie.shards.layout import (
    JOURNAL_PREFIX,
    MANIFEST,
    SHARDS_DIR,
    in_work_dir,
    list_done,
    list_journals,
    list_tars,
    marker_source,
    stage_dir,
)
from avuie.shards.owner import hold_all
from avuie.shards.txn import Transaction, recover


def _fail(out: Path, where: str, error: str) -> dict[str, str]:
    return {"id": str(out), "shard": where, "error": error}


def _markers(out: Path) -> tuple[dict[Path, dict[str, Any]], list[dict[str, str]]]:
    markers, failures = {}, []
    for marker in list_done(out):
        try:
            done = json.loads(marker.read_text())
            assert isinstance(done, dict)
        except (OSError, ValueError, AssertionError):
            failures.append(_fail(out, str(marker), "unreadable shard marker"))
            continue
        markers[marker] = done
    return markers, failures


def _tar_failures(out: Path, markers: dict[Path, dict[str, Any]]) -> list[dict[str, str]]:
    """Listed tars that are missing or differ from their marker's facts; tars no marker lists."""
    failures, listed = [], set()
    for marker, done in markers.items():
        for name in done.get("tars", []):
            tar = marker.parent / name
            listed.add(tar)
            facts = done.get("tars_info", {}).get(name, {})
            if not tar.is_file():
                failures.append(_fail(out, str(tar), f"listed by {marker.name} but missing"))
            elif facts.get("bytes") not in (None, tar.stat().st_size) or facts.get("sha256") not in (
                None,
                sha256_file(tar),
            ):
                failures.append(_fail(out, str(tar), f"differs from the size/sha256 {marker.name} records"))
    for tar in list_tars(out):
        if tar not in listed:
            failures.append(
                _fail(out, str(tar), "no shard marker lists this tar (a stale part of an earlier plan?)")
            )
    return failures


def _manifest_failures(out: Path, markers: dict[Path, dict[str, Any]]) -> list[dict[str, str]]:
    want = Counter(
        (r["id"], r["shard"], r.get("content_hash")) for d in markers.values() for r in d.get("manifest", [])
    )
    ids = Counter(i for i, _, _ in want.elements())
    failures = [_fail(out, "", f"sample {i} is listed {n} times") for i, n in ids.items() if n > 1]
    path = out / MANIFEST
    if not path.is_file():
        return failures + ([_fail(out, MANIFEST, "missing")] if markers else [])
    rows = pq.read_table(path, columns=["id", "shard", "content_hash"]).to_pylist()
    have = Counter((r["id"], r["shard"], r["content_hash"]) for r in rows)
    if have != want:
        diff = sorted((have - want) + (want - have))
        failures.append(
            _fail(
                out,
                MANIFEST,
                f"does not match the shard markers ({len(diff)} rows differ, e.g. {diff[0][0]}): "
                f"run `avuie repair {out}`",
            )
        )
    return failures


def check_folder(out: Path) -> list[dict[str, str]]:
    """Every disagreement between a build folder's tars, markers and manifest, and any unfinished commit."""
    out = Path(out)
    failures = [
        _fail(out, str(j), f"an update was interrupted before it finished: run `avuie repair {out}`")
        for j in list_journals(out)
    ]
    markers, bad = _markers(out)
    return failures + bad + _tar_failures(out, markers) + _manifest_failures(out, markers)


def build_folders(root: Path) -> list[Path]:
    """The build folders at or under `root` (folders holding a manifest, shard markers or a pending commit)."""
    root = Path(root)
    found = {p.parent for p in root.rglob(MANIFEST)} | {p.parent.parent.parent for p in list_done_under(root)}
    found |= {p.parent.parent for p in root.rglob(f"{JOURNAL_PREFIX}*.json")}
    return sorted(f for f in found if not in_work_dir(f, root))


def list_done_under(root: Path) -> list[Path]:
    """Shard markers of every build at or under root."""
    return [m for d in root.rglob(SHARDS_DIR) if d.is_dir() for m in list_done(d.parent)]


def repair(out: Path) -> dict[str, Any]:
    """Finish an interrupted commit and recompute manifest, rejects and stats from the markers, under the locks of
    every source in `out`; return {"journals": finished, "failures": what still disagrees}."""
    out = Path(out)
    finished = recover(out)
    markers, _ = _markers(out)
    with hold_all(out, {marker_source(m, d) for m, d in markers.items()} - {""}):
        Transaction(out, stage_dir(out, "repair") / "txn").commit(derive, label="repair")
    return {"journals": finished, "failures": check_folder(out)}
