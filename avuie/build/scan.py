"""`avuie scan`: parse a source's annotations (no media work) and count entries per split.

`records` counts annotation entries as the original files count them (one per row, question or clip entry),
before any expansion into samples; an entry all of whose records were rejected counts under `rejected`, not
under `records`. `media_missing` counts entries with a record whose raw media file does not exist (up to 5 of
those paths per split in `missing_examples`); `buildable` counts the samples whose media are all there.
`missing_splits` names the source's splits without any entry (their annotation file is missing). With a media
root, media are looked up there as the build does (avuie/build/media_root.py).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avuie.build.media_root import MediaRoot
from avuie.builders import Notice, Record, Reject, get_builder

MISSING_EXAMPLES = 5


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
    buildable: Counter[str] = field(default_factory=Counter)
    missing_paths: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

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
        ready = True
        for p in item.media_paths():
            if p not in self.exists:
                self.exists[p] = Path(p).exists()
            if not self.exists[p]:
                ready = False
                self.missing[item.split].add(item.entry)
                shown = self.missing_paths[item.split]
                if len(shown) < MISSING_EXAMPLES and str(p) not in shown:
                    shown.append(str(p))
        self.buildable[item.split] += ready

    def splits(self) -> dict[str, dict[str, Any]]:
        """The per-split part of the report."""
        out = {}
        for split in sorted(set(self.ok) | set(self.bad)):
            rejected_only = self.bad[split] - self.ok[split]
            out[split] = {
                "records": len(self.ok[split]),
                "samples": self.samples[split],
                "buildable": self.buildable[split],
                "media_missing": len(self.missing[split]),
                "missing_examples": self.missing_paths[split],
                "rejected": len(rejected_only),
                "reject_reasons": dict(self.reasons_by_split[split]),
                "notices": dict(self.notices[split]),
            }
        return out


def scan(
    source: str,
    raw: Path | None,
    params: dict[str, Any] | None = None,
    examples: int = 20,
    media_root: Path | None = None,
) -> dict[str, Any]:
    """Scan a raw root (the bundled sample when None; media under `media_root` when given); return the report."""
    if raw is None:
        from avuie.samples import ensure_sample

        raw = ensure_sample(source)
    builder = get_builder(source, **(params or {}))
    tally = _Tally(examples)
    media = MediaRoot(Path(raw), Path(media_root)) if media_root else None
    for item in builder.entries(Path(raw)):
        tally.add(media.remap(item) if media and isinstance(item, Record) else item)
    splits = tally.splits()
    return {
        "source": source,
        "raw": str(raw),
        "family": builder.family.value,
        "splits": splits,
        "missing_splits": [s for s in builder.splits if s not in splits],
        "reject_reasons": dict(tally.reasons),
        "reject_examples": tally.shown,
    }
