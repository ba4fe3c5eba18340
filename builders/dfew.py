"""DFEW (Jiang et al., ACM MM 2020): dynamic facial expression in the wild, 7 classes, 16,372 movie clips.

Release layout (docs/SOURCES.md, unverified against the password-protected download): 5-fold lists
`EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv` with a header `video_name,label` (the
authors' code repository names them `label/single_{train,test}set_{1..5}.csv`; both are read). `label` is
1 Happy, 2 Sad, 3 Neutral, 4 Angry, 5 Surprise, 6 Disgust, 7 Fear; 0 marks a clip without a single label and
is rejected as `not_single_label`. Clips are `<id>.mp4` (or `.avi`) with the id zero-padded to 5 digits, looked
up in `Clip/original/` (the clips with their audio), then `Clip/clip_224x224/`, then `Clip/`, then `clips/`.
The raw root is the folder holding `EmoLabel_DataSplit/` (or `label/`).

Parameters: `fold` (1-5, default 1). Media: 4 frames over the clip and its first 4 s of audio.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from avuie.schemas import TaskFamily
from avuie.schemas.classes_clips import DFEW_EMOTIONS

from ._clip import clip_record, find_clip, first_dir, int_param
from .base import Builder, BuilderError, Record, Reject, read_text_lines, register

LIST_FILES = {
    "train": ("EmoLabel_DataSplit/train(single-labeled)/set_{fold}.csv", "label/single_trainset_{fold}.csv"),
    "test": ("EmoLabel_DataSplit/test(single-labeled)/set_{fold}.csv", "label/single_testset_{fold}.csv"),
}
HEADER_WORDS = {"video_name", "label", "video", "name", "clip"}
CLIP_DIRS = ("Clip/original", "Clip/clip_224x224", "Clip", "clips")


def dfew_root(raw: Path) -> Path:
    """The folder holding `EmoLabel_DataSplit/` or `label/`."""
    for cand in (raw, raw / "DFEW", raw / "DFEW-part2"):
        if (cand / "EmoLabel_DataSplit").is_dir() or (cand / "label").is_dir():
            return cand
    raise BuilderError(f"{raw} holds no DFEW split lists (EmoLabel_DataSplit/ or label/)")


def clip_id(text: str) -> str:
    """A clip id as the clip files name it: digits zero-padded to 5 ('1' -> '00001'); other ids unchanged."""
    text = text.strip()
    stem = text.rsplit(".", 1)[0] if text.lower().endswith((".mp4", ".avi")) else text
    return f"{int(stem):05d}" if stem.isdigit() else stem


@register
class DfewBuilder(Builder):
    """DFEW emotion recognition: one sample per single-labelled row of the chosen fold."""

    name = "dfew"
    parameters = ("fold",)
    raw_aliases = ("DFEW",)
    family = TaskFamily.emotion_recognition
    license = "DFEW EULA (academic research only; obtain from the authors)"
    layout = "EmoLabel_DataSplit/{train,test}(single-labeled)/set_<fold>.csv + Clip/original/<id:05d>.mp4"
    splits = ("train", "test")
    description = "movie clips; the facial expression (7 classes), 5-fold lists (`fold`, default 1)"

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield one record per row of the fold's train and test lists."""
        fold = int_param(self.params, "fold", 1, range(1, 6))
        root = dfew_root(Path(raw))
        clips = first_dir(*(root / d for d in CLIP_DIRS))
        found = False
        for split, candidates in LIST_FILES.items():
            path = next(
                (root / c.format(fold=fold) for c in candidates if (root / c.format(fold=fold)).exists()),
                None,
            )
            if path is None:
                continue
            found = True
            fname = str(path.relative_to(root))
            for row, line in enumerate(read_text_lines(path), start=1):
                if not line.strip():
                    continue
                if row == 1 and HEADER_WORDS & {f.strip().lower() for f in line.split(",")}:
                    continue  # the header line (video_name,label)
                yield self._row(split, fname, row, line, clips)
        if not found:
            raise BuilderError(f"{root} has no train or test list for fold {fold}")

    def _row(self, split: str, fname: str, row: int, line: str, clips: Path) -> Record | Reject:
        entry = f"{fname}:{row}"
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or not parts[0]:
            return Reject(
                split, entry, "malformed_row", f"expected 'video_name,label', got {line!r}", "", fname, row
            )
        native_id, label = clip_id(parts[0]), parts[1]
        if not label.lstrip("-").isdigit():
            return Reject(
                split, entry, "malformed_row", f"label {label!r} is not an integer", native_id, fname, row
            )
        if int(label) == 0:
            detail = "label 0: the clip has no single emotion label"
            return Reject(split, entry, "not_single_label", detail, native_id, fname, row)
        if not 1 <= int(label) <= len(DFEW_EMOTIONS):
            detail = f"label {label} is not one of 1-{len(DFEW_EMOTIONS)}"
            return Reject(split, entry, "unknown_class", detail, native_id, fname, row)
        return clip_record(
            self.name,
            self.family,
            native_id=native_id,
            split=split,
            entry=entry,
            raw_label=DFEW_EMOTIONS[int(label) - 1],
            video=find_clip(clips, native_id, (".mp4", ".avi")),
            annotation_file=fname,
            annotation_row=row,
            original_label=label,
        )
