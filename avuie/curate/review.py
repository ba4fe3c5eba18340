"""The human-correction loop: export the chains that need a look, edit them anywhere, apply them back.

`export_review(out, file)` writes every fallback, retried or flagged chain as one row of an editable JSONL or CSV
file (by suffix), with the sample's frames and audio extracted next to it (`<file stem>_media/<key>/...`, paths
relative to the file), the ground truth in words, the tagged answer and the chain. `apply_review(out, file)`
takes the rows whose `reasoning` was edited, re-checks each (avuie.reasoning.check), and writes the ones that pass
back as `human` chains, rewriting only the shards that hold them, in one all-or-nothing commit (tars, markers,
manifest and the rewrite log become visible together).
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avuie.curate.rewrite import apply_chains, iter_samples, locate
from avuie.reasoning.check import CheckResult, CheckSettings, check_human_chain
from avuie.reasoning.prompts import describe_target
from avuie.shards.writer import iter_tar_samples

FIELDS = (
    "id", "source", "split", "shard", "kind", "check_outcome", "fallback_reason", "attempts", "flagged",
    "instruction", "label", "answer", "frames", "audio", "content_hash", "reasoning_sha", "reasoning",
)  # fmt: skip
LIST_FIELDS = ("frames", "audio")


@dataclass
class ApplyReport:
    """What `apply_review` did: ids changed, ids left as they were, ids refused (with why), shards rewritten."""

    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)


def _sha(text: str) -> str:
    return hashlib.sha1(text.strip().encode()).hexdigest()[:16]


def is_edited(row: dict[str, Any]) -> bool:
    """True when a review row's `reasoning` differs from the chain it was exported with (its `reasoning_sha`)."""
    return _sha(str(row.get("reasoning") or "").strip()) != row.get("reasoning_sha")


def _format(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in (".jsonl", ".csv"):
        raise ValueError(f"{path}: the review file must end in .jsonl or .csv")
    return suffix[1:]


def needs_review(info: dict[str, Any]) -> bool:
    """A chain needs a look when it fell back to the template, needed a retry, or was flagged by the check."""
    if info.get("kind") == "human":
        return False
    return info.get("kind") == "fallback" or int(info.get("attempts") or 0) > 1 or bool(info.get("flagged"))


def export_review(out: Path, to: Path, everything: bool = False) -> int:
    """Write the chains that need review (every model/fallback chain with `everything`) to `to`; return rows."""
    out, to = Path(out), Path(to)
    fmt = _format(to)
    media_dir = to.parent / f"{to.stem}_media"
    rows = []
    for tar, sample, files in iter_samples(out):
        info = sample.get("reasoning_info") or {}
        if not (needs_review(info) or (everything and info.get("kind") in ("model", "fallback"))):
            continue
        paths: dict[str, list[str]] = {"frames": [], "audio": []}
        for item in sample["media"]:
            group = {"video_frames": "frames", "image": "frames", "audio": "audio"}.get(item["kind"])
            for name in item["files"] if group else []:
                target = media_dir / sample["key"] / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(files[name])
                paths[group].append(str(target.relative_to(to.parent)))
        rows.append(review_row(sample, str(tar.relative_to(out)), paths))
    write_rows(to, rows, fmt)
    return len(rows)


def review_row(
    sample: dict[str, Any], shard: str, paths: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """The review-file row of a sample as it is now (its chain unedited): FIELDS, `shard` relative to OUT,
    `paths` the extracted {"frames": [...], "audio": [...]} (empty lists when none were extracted)."""
    info = sample.get("reasoning_info") or {}
    return {
        "id": sample["id"],
        "source": sample["source"],
        "split": sample["split"],
        "shard": shard,
        "kind": info.get("kind"),
        "check_outcome": info.get("check_outcome"),
        "fallback_reason": info.get("fallback_reason"),
        "attempts": info.get("attempts"),
        "flagged": bool(info.get("flagged")),
        "instruction": sample["instruction"],
        "label": describe_target(sample["target"]),
        "answer": sample["answer"],
        **(paths or {"frames": [], "audio": []}),
        "content_hash": sample["content_hash"],
        "reasoning_sha": _sha(sample["reasoning"]),
        "reasoning": sample["reasoning"],
    }


def check_edit(text: str, sample: dict[str, Any], settings: CheckSettings = CheckSettings()) -> CheckResult:
    """Check an edited chain of a sample dict exactly as `apply_review` will; return the CheckResult."""
    return check_human_chain(str(text or "").strip(), sample, settings)


def write_rows(path: Path, rows: list[dict[str, Any]], fmt: str | None = None) -> None:
    """Write review rows as JSONL (one object a line) or CSV (list fields joined by '|')."""
    fmt = fmt or _format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        if fmt == "jsonl":
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            return
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "|".join(v) if k in LIST_FIELDS else v for k, v in row.items()})


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Read review rows back from JSONL or CSV; raises ValueError naming the line of a broken row."""
    fmt = _format(path)
    rows = []
    with open(path, encoding="utf-8", newline="") as fh:
        if fmt == "jsonl":
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise ValueError(f"{path}:{n}: not a JSON object ({exc.msg})") from exc
        else:
            for row in csv.DictReader(fh):
                rows.append(
                    {k: (v.split("|") if v else []) if k in LIST_FIELDS else v for k, v in row.items()}
                )
    for n, row in enumerate(rows, 1):
        if not row.get("id") or "reasoning" not in row:
            raise ValueError(f"{path}: row {n} needs 'id' and 'reasoning'")
    return rows


def apply_review(out: Path, path: Path, settings: CheckSettings = CheckSettings()) -> ApplyReport:
    """Merge edited chains back: re-check each, write the ones that pass as `human`; return what happened."""
    out = Path(out)
    report = ApplyReport()
    edited = {}
    for row in read_rows(Path(path)):
        if is_edited(row):
            edited[row["id"]] = (str(row["reasoning"] or "").strip(), row)
        else:
            report.unchanged.append(row["id"])
    where = locate(out, set(edited))
    current: dict[str, dict[str, Any]] = {}
    for tar in sorted(set(where.values())):
        for _, members in iter_tar_samples(tar):
            sample = json.loads(members["json"])
            if sample["id"] in edited:
                current[sample["id"]] = sample
    updates = {}
    for sample_id, (text, row) in edited.items():
        sample = current.get(sample_id)
        if sample is None:
            report.failed[sample_id] = "no such sample in this build"
            continue
        if row.get("content_hash") and row["content_hash"] != sample["content_hash"]:
            report.failed[sample_id] = "the sample changed since the export; export it again"
            continue
        result = check_human_chain(text, sample, settings)
        if not result.ok:
            report.failed[sample_id] = f"{result.reason}: {result.detail}"
            continue
        old = sample.get("reasoning_info") or {}
        info = {
            "kind": "human",
            "model": old.get("model"),
            "prompt_version": old.get("prompt_version"),
            "checked": True,
            "attempts": old.get("attempts", 0),
            "check_outcome": "passed_human",
            "fallback_reason": None,
            "flagged": False,
            "usage": old.get("usage") or {},
        }
        updates[sample_id] = (result.reasoning, info)
    log = {"command": "review apply", "file": str(path)}
    written = apply_chains(out, updates, where=where, log=log if updates else None)
    report.changed, report.shards = written.changed, written.shards
    report.failed.update(written.invalid)
    return report
