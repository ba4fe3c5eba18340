"""MER2024 (Lian et al., MER challenge 2024): discrete emotion of the person in a Chinese TV/movie clip, 6 classes.

Release layout (docs/SOURCES.md, unverified against the EULA download; as the challenge's MERTools
read it): `train-label.csv` with columns `name,discrete,valence` (discrete: neutral, angry, happy, sad, worried,
surprise) and the clips `train/<name>.mp4`. The MERTools preprocessing turns this into `label-6way.npz`
(`train_corpus: {name: {emo, val}}`) and copies every clip into `video/`; that form is read too when there is
no CSV (only `train_corpus`: the `test*_corpus` entries carry placeholder labels). A clip may be `.mp4` or
`.avi`; it is looked up in `train/`, then `video/`. Crab+ ships a train split only, so this builder has one
split, `train`. No parameters. Media: 4 frames over the clip and its first 4 s of audio.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from avuie.schemas import TaskFamily

from ._clip import clip_record, find_clip, first_dir
from .base import Builder, BuilderError, Record, Reject, read_csv_rows, register

LABEL_COLUMNS = ("discrete", "emo", "label")


def mer_root(raw: Path) -> Path:
    """The folder holding train-label.csv or label-6way.npz."""
    for cand in (raw, raw / "mer2024-dataset", raw / "mer2024-dataset-process", raw / "MER2024"):
        if (cand / "train-label.csv").exists() or (cand / "label-6way.npz").exists():
            return cand
    raise BuilderError(f"{raw} holds no MER2024 labels (train-label.csv or label-6way.npz)")


def read_label_csv(path: Path) -> list[tuple[int, str, str]]:
    """(row, name, discrete label) of train-label.csv; BuilderError when a column is missing."""
    header, rows = read_csv_rows(path)
    column = next((c for c in LABEL_COLUMNS if c in header), None)
    if "name" not in header or column is None:
        raise BuilderError(f"{path.name}: expected columns name,discrete[,valence], got {header}")
    return [(n, r["name"].strip(), r[column].strip()) for n, r in rows]


def read_label_npz(path: Path) -> list[tuple[int, str, str]]:
    """(index, name, emo) of `train_corpus` in label-6way.npz (a pickled dict, as MERTools writes it)."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=True) as data:
            corpus = data["train_corpus"].item()
    except (OSError, KeyError, ValueError) as exc:
        raise BuilderError(f"{path.name}: cannot read train_corpus ({exc})") from None
    if not isinstance(corpus, dict):
        raise BuilderError(f"{path.name}: train_corpus is not a {{name: {{emo, val}}}} mapping")
    out = []
    for i, (name, info) in enumerate(corpus.items(), start=1):
        emo = info.get("emo", "") if isinstance(info, dict) else ""
        out.append((i, str(name).strip(), str(emo).strip()))
    return out


@register
class Mer24Builder(Builder):
    """MER2024 emotion recognition: one sample per labelled training clip."""

    name = "mer24"
    raw_aliases = ("MER2024", "mer2024")
    family = TaskFamily.emotion_recognition
    license = "MER2024 EULA (academic research only; obtain from the organisers)"
    layout = (
        "{train-label.csv (name,discrete,valence), train/<name>.mp4} or {label-6way.npz, video/<name>.mp4}"
    )
    splits = ("train",)
    description = "Chinese TV/movie clips; the discrete emotion (6 classes), train split only"

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield one record per labelled clip."""
        root = mer_root(Path(raw))
        csv_path = root / "train-label.csv"
        if csv_path.exists():
            fname, rows = csv_path.name, read_label_csv(csv_path)
        else:
            fname, rows = "label-6way.npz", read_label_npz(root / "label-6way.npz")
        clips = first_dir(root / "train", root / "video")
        for row, name, label in rows:
            entry = f"{fname}:{row}"
            if not name:
                yield Reject("train", entry, "malformed_row", "empty name", "", fname, row)
                continue
            if not label:
                yield Reject("train", entry, "malformed_row", "empty discrete label", name, fname, row)
                continue
            yield clip_record(
                self.name,
                self.family,
                native_id=name,
                split="train",
                entry=entry,
                raw_label=label,
                video=find_clip(clips, name, (".mp4", ".avi", ".mkv")),
                annotation_file=fname,
                annotation_row=row,
            )
