"""AVE (Tian et al., ECCV 2018): audio-visual event localization on 10 s clips.

Release layout (docs/SOURCES.md): `AVE_Dataset/{Annotations.txt, trainSet.txt, valSet.txt, testSet.txt,
AVE/<VideoID>.mp4}`; rows `Category&VideoID&Quality&StartTime&EndTime`, with or without a header line; the
interval is [Start, End) in whole seconds. 45 videos carry two events: each row is its own sample, keyed by
(VideoID, Category).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from avuie.schemas import SingleEventTarget, TaskFamily, canonical

from ._clip import clip_video
from .base import Builder, BuilderError, Record, Reject, error_text, read_text_lines, register
from .instructions import instruction

SPLIT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}
CLIP_SECONDS = 10


def ave_root(raw: Path) -> Path:
    """The AVE_Dataset folder: `raw` itself or `raw/AVE_Dataset`."""
    for cand in (raw, raw / "AVE_Dataset"):
        if (cand / "trainSet.txt").exists() or (cand / "Annotations.txt").exists():
            return cand
    raise BuilderError(f"{raw} holds no AVE_Dataset (expected trainSet.txt/valSet.txt/testSet.txt)")


def parse_ave_row(line: str) -> tuple[str, str, int, int]:
    """Split one `Category&VideoID&Quality&Start&End` row; ValueError with a reason when malformed."""
    parts = line.split("&")
    if len(parts) != 5:
        raise ValueError(f"expected 5 '&'-separated fields, got {len(parts)}")
    category, vid, _quality, start, end = (p.strip() for p in parts)
    if not vid or not category:
        raise ValueError("empty category or video id")
    try:
        return category, vid, int(start), int(end)
    except ValueError:
        raise ValueError(f"start/end {start!r}/{end!r} are not whole seconds") from None


def slug(text: str) -> str:
    """A lower-case id fragment: 'Male speech, man speaking' -> 'male_speech_man_speaking'."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@register
class AveBuilder(Builder):
    """AVE event localization: one sample per annotation row."""

    name = "ave"
    family = TaskFamily.event_localization
    license = "none stated (YouTube-derived, research use)"
    layout = "AVE_Dataset/{Annotations.txt,trainSet.txt,valSet.txt,testSet.txt,AVE/<VideoID>.mp4}"
    description = "10 s clips; the audible-and-visible event and its [start,end) in whole seconds"

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield one record per row of the three split files."""
        root = ave_root(Path(raw))
        found = False
        for split, fname in SPLIT_FILES.items():
            path = root / fname
            if not path.exists():
                continue
            found = True
            for row, line in enumerate(read_text_lines(path), start=1):
                if not line.strip() or (row == 1 and line.startswith("Category&")):
                    continue
                entry = f"{fname}:{row}"
                yield self._record(root, split, entry, fname, row, line)
        if not found:
            raise BuilderError(f"{root} has none of {', '.join(SPLIT_FILES.values())}")

    def _record(self, root: Path, split: str, entry: str, fname: str, row: int, line: str) -> Record | Reject:
        def reject(reason: str, detail: str, native_id: str = "") -> Reject:
            return Reject(split, entry, reason, detail, native_id, fname, row)

        try:
            category, vid, start, end = parse_ave_row(line)
        except ValueError as exc:
            return reject("malformed_row", f"{exc}: {line!r}")
        try:
            label = canonical("ave", category)
        except ValueError as exc:
            return reject("unknown_class", str(exc))
        native_id = f"{vid}_{slug(label)}"
        try:
            target = SingleEventTarget(label=label, start=start, end=end, duration=CLIP_SECONDS)
        except ValueError as exc:
            return reject("invalid_span", error_text(exc), native_id)
        video = clip_video(root / "AVE" / f"{vid}.mp4", CLIP_SECONDS)
        return Record(
            native_id=native_id,
            split=split,
            entry=entry,
            instruction=instruction("ave"),
            media=[video],
            target=target,
            context={"video_id": vid},
            annotation_file=fname,
            annotation_row=row,
        )
