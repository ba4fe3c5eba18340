"""What is already built: the outcome of each record digest in the committed shards of a source and in the pieces
staged by earlier (killed) runs.

Every shard marker lists its records in order as `records: [[digest, key], ...]` (key "" for a record that was
rejected; the n-th such record's reject row is the marker's n-th reject), and so does every staged piece. An
outcome tells where a record's sample lies (tar file and byte range, from the marker's table) with its manifest
row, or gives its reject row. A committed marker whose tars are missing or changed size is not trusted: its
records are built again (and its files replaced), which is how a build repairs a damaged folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avuie.shards.index import SampleEntry, scan_local, sha256_file, table_from_done
from avuie.shards.layout import list_done, marker_source, staged, staged_markers


@dataclass
class Outcome:
    """A built record: its sample (key, manifest row, tar and byte range) or its reject row (key "")."""

    key: str
    row: dict[str, Any]
    tar: Path | None = None
    start: int = 0
    end: int = 0

    @property
    def written(self) -> bool:
        """True for a sample, False for a reject."""
        return bool(self.key)


@dataclass
class Ledger:
    """Outcomes by record digest, the markers they were read from, and reasoning counters of staged pieces."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    markers: dict[Path, dict[str, Any]] = field(default_factory=dict)
    counters: list[dict[str, Any]] = field(default_factory=list)
    untrusted: list[Path] = field(default_factory=list)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        done = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return done if isinstance(done, dict) else None


def _tars_ok(marker: Path, done: dict[str, Any]) -> bool:
    """Every tar the marker lists exists with the size it records, and a tar changed after its marker was written
    (modified later than the marker) still has the sha256 it records. A commit writes tars before their marker,
    so the hash is read only for tars touched since (or copied without their times)."""
    try:
        written = marker.stat().st_mtime_ns
    except OSError:
        return False
    for name in done.get("tars", []):
        path = marker.parent / name
        facts = done.get("tars_info", {}).get(name, {})
        try:
            stat = path.stat()
        except OSError:
            return False
        if facts.get("bytes") not in (None, stat.st_size):
            return False
        if stat.st_mtime_ns > written and facts.get("sha256") not in (None, sha256_file(path)):
            return False
    return True


def add_outcomes(ledger: Ledger, done: dict[str, Any], folder: Path, tar_path: Any = None) -> None:
    """Add the outcomes of one marker (committed shard or staged piece) whose tars lie in `folder`.

    `tar_path(name)` maps a tar name the marker lists to its file (default `folder / name`)."""
    tar_path = tar_path or (lambda name: folder / name)
    where: dict[str, tuple[Path, int, int]] = {}
    for name in done.get("tars", []):
        path = tar_path(name)
        for entry in _samples(path, done, name):
            where[entry.key] = (path, entry.start, entry.end)
    rows = {r["key"]: r for r in done.get("manifest", [])}
    rejects = iter(done.get("rejects", []))
    for digest, key in done.get("records", []):
        if key:
            if key in where and key in rows:
                tar, start, end = where[key]
                ledger.outcomes[digest] = Outcome(key, rows[key], tar, start, end)
        else:
            row = next(rejects, None)
            if row is not None:
                ledger.outcomes[digest] = Outcome("", row)


def _samples(path: Path, done: dict[str, Any], name: str) -> list[SampleEntry]:
    """The samples of a tar with their byte ranges: from the marker's table, else by scanning the tar."""
    scan = table_from_done(done, name) or scan_local(path)
    return scan.samples


def committed(out: Path, source: str) -> Ledger:
    """The outcomes held by the committed shards of `source` in `out` (markers with damaged tars left out)."""
    ledger = Ledger()
    for marker in list_done(out):
        done = _load(marker)
        if done is None or marker_source(marker, done) != source:
            continue
        if not _tars_ok(marker, done):
            ledger.untrusted.append(marker)
            continue
        ledger.markers[marker] = done
        if "records" in done:
            add_outcomes(ledger, done, marker.parent)
    return ledger


def staged_pieces(folder: Path) -> Ledger:
    """The outcomes of the pieces staged in `folder` by this source's earlier runs, with their reasoning counters."""
    ledger = Ledger()
    for marker in staged_markers(folder):
        done = _load(marker)
        if done is None or not all(staged(folder, name).is_file() for name in done.get("tars", [])):
            continue
        ledger.markers[marker] = done
        ledger.counters.append(done.get("reasoning", {}))
        add_outcomes(ledger, done, folder, lambda name: staged(folder, name))
    return ledger
