"""Corrections made in the viewer: each build's review file, and applying it through `avuie review apply`.

An edit or a flag becomes one row of `<build>/review.jsonl`, the same row `avuie review export` writes
(avuie.curate.review.review_row) with the new chain; an edited chain is first checked by the same answer check
`review apply` runs (`check_edit`), and a chain that fails is refused with the check's reason, nothing saved.
Rows are replaced by sample id, so editing twice keeps one row. "Apply" calls `apply_review(build, review file)`,
the one write path into shards; afterwards the applied rows move to `<build>/review.applied.jsonl` (nothing is
lost) and rows it refused stay pending with the reason. Flag-only rows (chain unchanged) stay in the file as
flags: `review apply` leaves them as they are.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avuie.curate.review import apply_review, check_edit, is_edited, read_rows, review_row, write_rows

__all__ = ["ApplyOutcome", "EditOutcome", "ReviewFiles", "is_edited"]
REVIEW_FILE = "review.jsonl"
APPLIED_FILE = "review.applied.jsonl"


@dataclass
class EditOutcome:
    """What saving an edit did: `ok`, `message` for the page, the check's `reason` when refused."""

    ok: bool
    message: str
    reason: str | None = None


@dataclass
class ApplyOutcome:
    """What applying one build's review file did (ids changed, refused with why, shards rewritten)."""

    build: str
    changed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)
    error: str | None = None


def _write_atomic(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write_rows(tmp, rows, "jsonl")
    os.replace(tmp, path)


class ReviewFiles:
    """The review files of the builds under a root, edited under one lock (one viewer process)."""

    def __init__(self, builds: dict[str, Path]):
        self.builds = builds
        self._lock = threading.Lock()

    def path(self, build: str) -> Path:
        """Return the review file of build `build` (its name under the root)."""
        return self.builds[build] / REVIEW_FILE

    def pending(self, build: str) -> list[dict[str, Any]]:
        """Return the rows of a build's review file ([] when it has none)."""
        path = self.path(build)
        return read_rows(path) if path.is_file() else []

    def pending_all(self) -> dict[str, list[dict[str, Any]]]:
        """Return {build: rows} for every build whose review file holds rows."""
        found = {}
        for build in sorted(self.builds):
            rows = self.pending(build)
            if rows:
                found[build] = rows
        return found

    def row_of(self, build: str, sample_id: str) -> dict[str, Any] | None:
        """Return the pending row of a sample, or None."""
        return next((r for r in self.pending(build) if r.get("id") == sample_id), None)

    def save(self, build: str, tar: Path, sample: dict[str, Any], text: str, flagged: bool) -> EditOutcome:
        """Save an edited chain and/or a flag for `sample` (read from `tar`) into the build's review file.

        An unchanged chain without a flag removes the sample's row. A changed chain must pass `check_edit`.
        """
        text = str(text or "").replace("\r\n", "\n").strip()
        edited = bool(text) and text != sample["reasoning"].strip()
        if edited:
            result = check_edit(text, sample)
            if not result.ok:
                return EditOutcome(False, f"not saved: {result.reason}: {result.detail}", result.reason)
        folder = self.builds[build]
        row = review_row(sample, tar.relative_to(folder).as_posix())
        row["flagged"] = bool(flagged) or row["flagged"]
        row["reasoning"] = text if edited else sample["reasoning"]
        with self._lock:
            rows = [r for r in self.pending(build) if r.get("id") != sample["id"]]
            if edited or flagged:
                rows.append(row)
            _write_atomic(self.path(build), rows)
        if edited:
            return EditOutcome(True, "saved: the chain passes the check and waits in the review file")
        return EditOutcome(
            True, "flagged in the review file" if flagged else "nothing pending for this sample"
        )

    def apply(self, build: str) -> ApplyOutcome:
        """Apply a build's review file with `apply_review`, then move the applied rows to the applied file."""
        outcome = ApplyOutcome(build)
        with self._lock:
            path = self.path(build)
            if not path.is_file():
                return outcome
            try:
                report = apply_review(self.builds[build], path)
            except (OSError, ValueError) as error:
                outcome.error = str(error)
                return outcome
            outcome.changed, outcome.shards = list(report.changed), list(report.shards)
            outcome.failed = dict(report.failed)
            rows = read_rows(path)
            applied = [r for r in rows if r["id"] in set(report.changed)]
            if applied:
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
                with open(self.builds[build] / APPLIED_FILE, "a", encoding="utf-8") as handle:
                    for row in applied:
                        handle.write(json.dumps({**row, "applied_at": stamp}, ensure_ascii=False) + "\n")
                _write_atomic(path, [r for r in rows if r["id"] not in set(report.changed)])
        return outcome

    def apply_all(self) -> list[ApplyOutcome]:
        """Apply every build's pending edits; return one outcome per build that had a review file."""
        return [self.apply(build) for build in self.pending_all()]
