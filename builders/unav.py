"""UnAV-100 (Geng et al., CVPR 2023): dense audio-visual event localization in untrimmed videos.

Release layout (docs/SOURCES.md): the raw root is the folder holding `data/unav100/` (the code release's
root), `data/unav100/` itself also works:

    data/unav100/annotations/unav100_annotations.json
    raw_videos/<vid>.mp4        (as download_video.csv cuts them; also accepted: videos/, and both inside
                                 data/unav100/)

The annotation file is ActivityNet style: `{"database": {"<vid>": {"subset": "train|validation|test",
"duration": 60.0, "fps": 25 (optional), "annotations": [{"segment": [t0, t1], "label": "dog barking",
"label_id": 12}, ...]}}}`. Subsets are read case-insensitively; `validation` becomes the split `val`.

One sample per video (native id = the video id). Events are float [start, end] seconds kept in the target as
released (the answer shows them with one decimal, for display only), may overlap and repeat (the same class
several times); they are sorted by (start, end, label). The duration comes from the JSON. The released times are
validated, never rounded ones: an end that passes the duration by at most `end_tolerance` seconds (default 0.5,
ActivityNet-style annotations often overshoot by a frame) is clamped to it; anything else outside [0, duration],
an end not after its start, or a span that shows as nothing at one decimal (the answer could not say it)
rejects the video (`invalid_segment`). The real release (10,790 videos) builds whole. Labels are open (the class list is the annotation file's own); a label that maps to two
`label_id`s, or an id to two labels, is reported (`inconsistent_label`).

Media: the clip up to the JSON duration, 10 frames, 16 kHz audio annotated with ten equal windows over the duration (the
interface fixes 1 s windows only for 10 s clips).

Rejects: `malformed_entry` (not an object, no subset/duration/annotations), `unknown_subset`, `no_events`,
`malformed_event`, `invalid_segment`, `inconsistent_label`. An unreadable annotation file is a BuilderError (it is the release's only file).
Parameters: `end_tolerance` (float seconds, default 0.5).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avuie.schemas import DenseEventsTarget, TaskFamily, canonical
from avuie.schemas.tags import fmt_time

from .base import Builder, BuilderError, Record, Reject, VideoMedia, error_text, register
from .instructions import instruction

ANNOTATION = "annotations/unav100_annotations.json"
SUBSETS = {
    "train": "train",
    "training": "train",
    "validation": "val",
    "val": "val",
    "test": "test",
    "testing": "test",
}
VIDEO_DIRS = ("raw_videos", "videos")
NUM_WINDOWS = 10


def unav_dir(raw: Path) -> Path:
    """The `unav100` folder (holding annotations/unav100_annotations.json) under raw; BuilderError if none."""
    for cand in (raw / "data" / "unav100", raw / "unav100", raw):
        if (cand / ANNOTATION).exists():
            return cand
    raise BuilderError(f"{raw} holds no UnAV-100 release (expected data/unav100/{ANNOTATION})")


def video_dir(raw: Path, ann_root: Path) -> Path:
    """The first existing video folder (raw_videos/ or videos/, at the raw root or in unav100/)."""
    cands = [base / d for d in VIDEO_DIRS for base in (raw, ann_root)]
    return next((c for c in cands if c.is_dir()), cands[0])


def parse_events(annotations: Any, duration: float, tolerance: float) -> list[dict[str, Any]]:
    """Validated, sorted events of one video; ValueError("<reason>: <detail>") for the first bad one."""
    if not isinstance(annotations, list) or not annotations:
        raise ValueError("no_events: the video has no annotated event")
    events = []
    for i, ann in enumerate(annotations):
        seg = ann.get("segment") if isinstance(ann, dict) else None
        label = ann.get("label") if isinstance(ann, dict) else None
        if (
            not isinstance(seg, list | tuple)
            or len(seg) != 2
            or not isinstance(label, str)
            or not label.strip()
        ):
            raise ValueError(f"malformed_event: event {i} needs a two-number segment and a label: {ann!r}")
        try:
            start, end = float(seg[0]), float(seg[1])
        except (TypeError, ValueError):
            raise ValueError(f"malformed_event: event {i} segment {seg!r} is not numeric") from None
        if duration < end <= duration + tolerance:
            end = duration
        if not 0 <= start < end <= duration:
            raise ValueError(f"invalid_segment: event {i} ({label}) [{start}, {end}] in a {duration} s video")
        if round(start, 1) >= round(end, 1):
            raise ValueError(f"invalid_segment: event {i} ({label}) [{start}, {end}] is empty at one decimal")
        events.append(
            {"label": canonical("unav", label), "start": start, "end": end, "id": ann.get("label_id")}
        )
    events.sort(key=lambda e: (e["start"], e["end"], e["label"]))
    return events


def label_clash(events: list[dict[str, Any]], label_ids: dict[str, Any], id_labels: dict[Any, str]) -> str:
    """A message when an event's label/label_id pair contradicts the pairs seen so far (else ""); records new pairs."""
    for ev in events:
        label, lid = ev["label"], ev["id"]
        if lid is None:
            continue
        if label_ids.get(label, lid) != lid or id_labels.get(lid, label) != label:
            return (
                f"{label!r} has label_id {lid} here, but earlier {label!r} had "
                f"{label_ids.get(label)} and id {lid} was {id_labels.get(lid)!r}"
            )
    for ev in events:
        if ev["id"] is not None:
            label_ids.setdefault(ev["label"], ev["id"])
            id_labels.setdefault(ev["id"], ev["label"])
    return ""


@register
class UnavBuilder(Builder):
    """UnAV-100 dense event localization: one sample per untrimmed video."""

    name = "unav"
    parameters = ("end_tolerance",)
    raw_aliases = ("unav100", "UnAV-100")
    family = TaskFamily.event_localization
    license = "CC BY-NC 4.0 (UnAV-100 project page); videos YouTube-derived, research use"
    layout = "data/unav100/annotations/unav100_annotations.json, raw_videos/<vid>.mp4"
    description = (
        "untrimmed clips; every audio-visual event with its float [start,end] (overlapping, repeating)"
    )

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield one record (or reject) per video of the annotation file's database."""
        raw = Path(raw)
        root = unav_dir(raw)
        videos = video_dir(raw, root)
        tolerance = float(self.params.get("end_tolerance", 0.5))
        path = root / ANNOTATION
        fname = f"unav100/{ANNOTATION}"
        try:
            database = json.loads(path.read_bytes().decode("utf-8-sig"))["database"]
            if not isinstance(database, dict):
                raise TypeError("'database' is not an object")
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BuilderError(f"{path} is not an ActivityNet-style annotation file: {exc!r}") from None
        label_ids: dict[str, Any] = {}
        id_labels: dict[Any, str] = {}
        for vid, entry in database.items():
            yield self._record(str(vid), entry, fname, videos, tolerance, label_ids, id_labels)

    def _record(
        self,
        vid: str,
        entry: Any,
        fname: str,
        videos: Path,
        tolerance: float,
        label_ids: dict[str, Any],
        id_labels: dict[Any, str],
    ) -> Record | Reject:
        subset = str(entry.get("subset", "")).strip().lower() if isinstance(entry, dict) else ""
        split = SUBSETS.get(subset, "unknown")
        ref = f"{fname}:{vid}"

        def reject(reason: str, detail: str) -> Reject:
            return Reject(split, ref, reason, detail, vid, fname, vid)

        if not isinstance(entry, dict):
            return reject("malformed_entry", f"entry is a {type(entry).__name__}, not an object")
        if split == "unknown":
            return reject("unknown_subset", f"subset {entry.get('subset')!r} is not train/validation/test")
        try:
            duration = float(entry["duration"])
            if duration <= 0:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            return reject("malformed_entry", f"duration {entry.get('duration')!r} is not a positive number")
        try:
            events = parse_events(entry.get("annotations"), duration, tolerance)
        except ValueError as exc:
            reason, _, detail = str(exc).partition(": ")
            return reject(reason, detail)
        clash = label_clash(events, label_ids, id_labels)
        if clash:
            return reject("inconsistent_label", clash)
        try:
            target = DenseEventsTarget(
                events=[{k: e[k] for k in ("label", "start", "end")} for e in events], duration=duration
            )
        except ValueError as exc:
            return reject("invalid_segment", error_text(exc))
        step = duration / NUM_WINDOWS
        video = VideoMedia(
            path=videos / f"{vid}.mp4",
            num_frames=10,
            duration=duration,
            audio_windows=[(round(i * step, 3), round((i + 1) * step, 3)) for i in range(NUM_WINDOWS)],
        )
        return Record(
            native_id=vid,
            split=split,
            entry=ref,
            instruction=instruction("unav", duration=fmt_time(duration)),
            media=[video],
            target=target,
            context={"video_id": vid, "fps": entry.get("fps")},
            annotation_file=fname,
            annotation_row=vid,
        )
