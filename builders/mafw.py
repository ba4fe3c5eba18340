"""MAFW (Liu et al., ACM MM 2022): emotion of the person in a movie/TV clip, 11 single-label classes.

Release layout (docs/SOURCES.md, unverified against the EULA download; as the widely used loaders read
it): 5-fold lists `Train & Test Set/single/no_caption/set_{1..5}/{train,test}.txt`, one `<clip>.mp4 <label>`
per line (space-separated, no header; the label is a class name such as `anger`, or its 1-based index in the
order anger, disgust, fear, happiness, neutral, sadness, surprise, contempt, anxiety, helplessness,
disappointment). Clips are looked up in `data/clips/` (the release's clip folder), then `clips/`, then
`data/video/`. The raw root is the folder holding `Train & Test Set/` (or a parent with `MAFW/`).

Parameters: `fold` (1-5, default 1). Media: 4 frames over the clip and its first 4 s of audio.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from avuie.schemas import TaskFamily
from avuie.schemas.classes_clips import MAFW_EMOTIONS

from ._clip import clip_record, first_dir, int_param
from .base import Builder, BuilderError, Record, Reject, read_text_lines, register

LIST_DIR = Path("Train & Test Set") / "single" / "no_caption"
CLIP_DIRS = ("data/clips", "clips", "data/video")


def mafw_root(raw: Path) -> Path:
    """The folder holding `Train & Test Set/`."""
    for cand in (raw, raw / "MAFW"):
        if (cand / LIST_DIR).is_dir():
            return cand
    raise BuilderError(f"{raw} holds no MAFW split lists ({LIST_DIR}/set_N/{{train,test}}.txt)")


def mafw_label(text: str) -> str:
    """A class name from a label field (a name, or a 1-based index into the MAFW class order)."""
    text = text.strip()
    if text.isdigit() and 1 <= int(text) <= len(MAFW_EMOTIONS):
        return MAFW_EMOTIONS[int(text) - 1]
    return text


@register
class MafwBuilder(Builder):
    """MAFW emotion recognition: one sample per line of the chosen fold's lists."""

    name = "mafw"
    parameters = ("fold",)
    raw_aliases = ("MAFW",)
    family = TaskFamily.emotion_recognition
    license = "MAFW EULA (academic research only; obtain from the authors)"
    layout = "Train & Test Set/single/no_caption/set_<fold>/{train,test}.txt + data/clips/<clip>.mp4"
    splits = ("train", "test")
    description = "movie/TV clips; the person's emotion (11 classes), 5-fold lists (`fold`, default 1)"

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield one record per line of set_<fold>/train.txt and test.txt."""
        fold = int_param(self.params, "fold", 1, range(1, 6))
        root = mafw_root(Path(raw))
        clips = first_dir(*(root / d for d in CLIP_DIRS))
        lists = root / LIST_DIR / f"set_{fold}"
        found = False
        for split in self.splits:
            path = lists / f"{split}.txt"
            if not path.exists():
                continue
            found = True
            fname = f"set_{fold}/{split}.txt"
            for row, line in enumerate(read_text_lines(path), start=1):
                if line.strip():
                    yield self._row(split, fname, row, line, clips)
        if not found:
            raise BuilderError(f"{lists} has neither train.txt nor test.txt")

    def _row(self, split: str, fname: str, row: int, line: str, clips: Path) -> Record | Reject:
        entry = f"{fname}:{row}"
        parts = line.split()
        if len(parts) != 2:
            detail = f"expected '<clip>.mp4 <label>', got {line!r}"
            return Reject(split, entry, "malformed_row", detail, "", fname, row)
        clip, label = parts
        native_id = clip.rsplit(".", 1)[0] if "." in clip else clip
        video = clips / (clip if "." in clip else f"{clip}.mp4")
        return clip_record(
            self.name,
            self.family,
            native_id=native_id,
            split=split,
            entry=entry,
            raw_label=mafw_label(label),
            video=video,
            annotation_file=fname,
            annotation_row=row,
            context={"clip": clip},
        )
