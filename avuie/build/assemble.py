"""Sample assembly: one record -> media cut -> target -> draft; draft + reasoning -> validated Sample; and the
rows and tar members a written sample leaves (manifest row, reject row, content hash).

Every failure on the way is a `Reject` with its reason, never an exception: in = written + rejected.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from avuie.build.config import BuildConfig
from avuie.build.cutting import cut_record, ffmpeg_threads
from avuie.builders import Builder, Record, Reject
from avuie.builders.base import error_text
from avuie.media.ffmpeg import MediaError
from avuie.reasoning.engine import Draft
from avuie.schemas import Provenance, Sample, draft_fields, make_sample_id, target_labels, with_reasoning
from avuie.shards.members import pack_sample


@dataclass
class Prepared:
    """A record after media cutting: either a draft ready for reasoning, or a reject."""

    record: Record
    draft: Draft | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    masks: dict[str, Any] = field(default_factory=dict)
    reject: Reject | None = None


def record_reject(record: Record, reason: str, detail: str) -> Reject:
    """A reject of one record, carrying the record's split, entry, id and annotation place."""
    return Reject(
        record.split,
        record.entry,
        reason,
        detail,
        record.native_id,
        record.annotation_file,
        record.annotation_row,
    )


def _provenance(
    builder: Builder, record: Record, config: BuildConfig, checksums: dict[str, str]
) -> Provenance:
    """Where a sample came from: its annotation place, builder and the raw files' checksums (relative to the raw
    root, or to the media root for media found there)."""
    roots = [Path(config.raw)] + ([Path(config.media_root)] if config.media_root else [])

    def rel(p: str) -> str:
        for root in roots:
            if Path(p).is_relative_to(root):
                return str(Path(p).relative_to(root))
        return p

    return Provenance(
        annotation_file=record.annotation_file,
        annotation_row=record.annotation_row,
        builder=builder.name,
        builder_version=builder.version,
        raw_checksums={rel(p): c for p, c in checksums.items()},
    )


def prepare(builder: Builder, record: Record, config: BuildConfig) -> Prepared:
    """Cut a record's media and make its target and draft; any failure becomes a reject with its reason."""
    try:
        cut, checksums = cut_record(record, builder.family, config.profile, ffmpeg_threads(config.workers))
    except MediaError as exc:
        return Prepared(record, reject=record_reject(record, exc.reason, exc.detail))
    try:
        target = builder.make_target(record, cut)
    except (ValueError, ValidationError) as exc:
        reason = getattr(exc, "reason", "invalid_target")
        detail = getattr(exc, "detail", None) or error_text(exc)
        return Prepared(record, reject=record_reject(record, reason, detail))
    past = labels_past_media(target, cut.media)
    if past:
        return Prepared(record, reject=record_reject(record, "labels_past_media", past))
    sample = draft_fields(
        source=builder.name,
        family=builder.family,
        split=record.split,
        native_id=record.native_id,
        media=cut.media,
        instruction=record.instruction,
        target=target,
        provenance=_provenance(builder, record, config, checksums),
        license=builder.license,
    )
    draft = Draft(sample=sample, media_files=cut.files, context=record.context)
    return Prepared(record, draft=draft, files=cut.files, masks=cut.object_masks)


# A clip may be a little shorter than its release says (9.8 s for "10 s"); labels reaching a whole second past
# the media's end describe media that is not there.
LABEL_SLACK_S = 1.0


def labels_past_media(target: Any, media: list[Any]) -> str | None:
    """Why a target's time labels reach past the end of its cut media (the detail of a `labels_past_media`
    reject), or None when they fit or the target has no times or the media no duration."""
    seconds = max((m.duration or 0.0 for m in media if m.kind in ("video_frames", "audio")), default=0.0)
    end = labelled_end(target)
    if end is None or seconds <= 0 or end <= seconds + LABEL_SLACK_S:
        return None
    return f"the labels reach {end:g} s but the media last {seconds:g} s"


def labelled_end(target: Any) -> float | None:
    """The latest time (seconds) a target's labels reach: event ends and segment ends; None without times."""
    kind = getattr(target, "kind", "")
    if kind == "single_event":
        return float(target.end) if target.end > target.start else None
    if kind == "dense_events":
        return max(e.end for e in target.events)
    if kind == "av_parsing":
        ends = [e for segs in [*target.audio.values(), *target.visual.values()] for _, e in segs]
        return float(max(ends)) if ends else None
    return None


def finish_sample(draft: Draft, reasoning: str, info: dict[str, Any], masks: dict[str, Any]) -> Sample:
    """Attach the reasoning, compute the content hash and validate (points checked against the masks)."""
    sample = Sample.model_validate(with_reasoning(draft.sample, reasoning, info), context={"masks": masks})
    sample.content_hash = content_hash(sample.model_dump(mode="json"), draft.media_files)
    return sample


def content_hash(sample_dict: dict[str, Any], files: dict[str, bytes]) -> str:
    """sha256 over the sample JSON (without content_hash) and every media file in order."""
    h = hashlib.sha256()
    body = {k: v for k, v in sample_dict.items() if k != "content_hash"}
    h.update(json.dumps(body, sort_keys=True, default=str).encode())
    for name in sorted(files):
        h.update(name.encode())
        h.update(hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def sample_members(sample: Sample, files: dict[str, bytes]) -> dict[str, bytes]:
    """The tar members of a sample: its JSON first, then its media in the stored layout (shards/members.py)."""
    return pack_sample(sample.model_dump(mode="json"), {name: files[name] for name in sample.media_files()})


def reject_row(source: str, r: Reject) -> dict[str, Any]:
    """A rejects.parquet row."""
    return {
        "id_or_row": make_sample_id(source, r.split, r.native_id) if r.native_id else r.entry,
        "source": source,
        "split": r.split,
        "reason": r.reason,
        "detail": r.detail,
        "annotation_file": r.annotation_file,
        "annotation_row": "" if r.annotation_row is None else str(r.annotation_row),
    }


def _label_summary(target: Any) -> str:
    labels = target_labels(target)
    if labels:
        return "|".join(dict.fromkeys(labels))
    for attr in ("answer", "caption"):
        if hasattr(target, attr):
            return str(getattr(target, attr))[:80]
    return target.kind


def manifest_row(sample: Sample, shard: str, num_bytes: int) -> dict[str, Any]:
    """A manifest.parquet row of a written sample."""
    video = [m for m in sample.media if m.kind == "video_frames"]
    audio = [m for m in sample.media if m.kind == "audio"]
    return {
        "id": sample.id,
        "key": sample.key,
        "source": sample.source,
        "family": sample.family.value,
        "split": sample.split,
        "shard": shard,
        "num_bytes": num_bytes,
        "media_duration": max((m.duration or 0.0 for m in video + audio), default=0.0),
        "num_frames": sum(m.frame_count or 0 for m in video)
        or sum(1 for m in sample.media if m.kind == "image"),
        "audio_seconds": sum(m.duration or 0.0 for m in audio),
        "label": _label_summary(sample.target),
        "answer": sample.answer,
        "instruction": sample.instruction,
        "response": sample.response,
        "reasoning_kind": sample.reasoning_info.kind,
        "reasoning_chars": len(sample.reasoning),
        "content_hash": sample.content_hash,
    }
