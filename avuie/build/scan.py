"""`avuie scan`: parse a source's annotations (no media work) and count entries per split.

`records` counts annotation entries as the original files count them (one per row, question or clip entry),
before any expansion into samples; an entry all of whose records were rejected counts under `rejected`, not
under `records`. `media_missing` counts entries with a record whose raw media file does not exist.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from avuie.builders import Notice, Record, Reject, get_builder


def scan(
    source: str, raw: Path | None, params: dict[str, Any] | None = None, examples: int = 20
) -> dict[str, Any]:
    """Scan a raw root (the bundled sample when None) and return the report dict."""
    if raw is None:
        from avuie.samples import ensure_sample

        raw = ensure_sample(source)
    builder = get_builder(source, **(params or {}))
    ok: dict[str, set[str]] = defaultdict(set)
    bad: dict[str, set[str]] = defaultdict(set)
    missing: dict[str, set[str]] = defaultdict(set)
    samples: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    reasons_by_split: dict[str, Counter[str]] = defaultdict(Counter)
    shown: list[dict[str, Any]] = []
    exists_cache: dict[Path, bool] = {}
    notices: dict[str, Counter[str]] = defaultdict(Counter)
    for item in builder.entries(Path(raw)):
        if isinstance(item, Notice):
            notices[item.split][item.kind] += 1
            if len(shown) < examples:
                shown.append(
                    {"split": item.split, "entry": item.entry, "notice": item.kind, "detail": item.detail}
                )
            continue
        if isinstance(item, Reject):
            bad[item.split].add(item.entry)
            reasons[item.reason] += 1
            reasons_by_split[item.split][item.reason] += 1
            if len(shown) < examples:
                shown.append(
                    {"split": item.split, "entry": item.entry, "reason": item.reason, "detail": item.detail}
                )
            continue
        assert isinstance(item, Record)
        ok[item.split].add(item.entry)
        samples[item.split] += 1
        for p in item.media_paths():
            if p not in exists_cache:
                exists_cache[p] = Path(p).exists()
            if not exists_cache[p]:
                missing[item.split].add(item.entry)
    splits = {}
    for split in sorted(set(ok) | set(bad)):
        rejected_only = bad[split] - ok[split]
        splits[split] = {
            "records": len(ok[split]),
            "samples": samples[split],
            "media_missing": len(missing[split]),
            "rejected": len(rejected_only),
            "reject_reasons": dict(reasons_by_split[split]),
            "notices": dict(notices[split]),
        }
    return {
        "source": source,
        "raw": str(raw),
        "family": builder.family.value,
        "splits": splits,
        "reject_reasons": dict(reasons),
        "reject_examples": shown,
    }
