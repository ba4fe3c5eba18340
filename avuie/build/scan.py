"""`avuie scan`: parse a source's annotations (no media work) and count entries per split.

`records` counts annotation entries as the original files count them (one per row, question or clip entry),
before any expansion into samples; an entry all of whose records were rejected counts under `rejected`, not
under `records`. `media_missing` counts entries with a record whose raw media file does not exist.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avuie.builders import Notice, Record, Reject, get_builder


@dataclass
class _Tally:
    """Entries, samples, rejects and notices per split as a scan reads them."""

    examples: int
    ok: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    bad: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    missing: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    samples: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    reasons_by_split: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    notices: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    shown: list[dict[str, Any]] = field(default_factory=list)
    exists: dict[Path, bool] = field(default_factory=dict)

    def _show(self, row: dict[str, Any]) -> None:
        if len(self.shown) < self.examples:
            self.shown.append(row)

    def add(self, item: Record | Reject | Notice) -> None:
        """Count one item a builder yielded."""
        if isinstance(item, Notice):
            self.notices[item.split][item.kind] += 1
            self._show({"split": item.split, "entry": item.entry, "notice": item.kind, "detail": item.detail})
            return
        if isinstance(item, Reject):
            self.bad[item.split].add(item.entry)
            self.reasons[item.reason] += 1
            self.reasons_by_split[item.split][item.reason] += 1
            self._show(
                {"split": item.split, "entry": item.entry, "reason": item.reason, "detail": item.detail}
            )
            return
        self.ok[item.split].add(item.entry)
        self.samples[item.split] += 1
        for p in item.media_paths():
            if p not in self.exists:
                self.exists[p] = Path(p).exists()
            if not self.exists[p]:
                self.missing[item.split].add(item.entry)

    def splits(self) -> dict[str, dict[str, Any]]:
        """The per-split part of the report."""
        out = {}
        for split in sorted(set(self.ok) | set(self.bad)):
            rejected_only = self.bad[split] - self.ok[split]
            out[split] = {
                "records": len(self.ok[split]),
                "samples": self.samples[split],
                "media_missing": len(self.missing[split]),
                "rejected": len(rejected_only),
                "reject_reasons": dict(self.reasons_by_split[split]),
                "notices": dict(self.notices[split]),
            }
        return out


def scan(
    source: str, raw: Path | None, params: dict[str, Any] | None = None, examples: int = 20
) -> dict[str, Any]:
    """Scan a raw root (the bundled sample when None) and return the report dict."""
    if raw is None:
        from avuie.samples import ensure_sample

        raw = ensure_sample(source)
    builder = get_builder(source, **(params or {}))
    tally = _Tally(examples)
    for item in builder.entries(Path(raw)):
        tally.add(item)
    return {
        "source": source,
        "raw": str(raw),
        "family": builder.family.value,
        "splits": tally.splits(),
        "reject_reasons": dict(tally.reasons),
        "reject_examples": tally.shown,
    }
