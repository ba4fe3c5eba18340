"""MELD (Poria et al., ACL 2019): emotion of one utterance in a Friends dialogue, 7 classes.

Release layout (docs/SOURCES.md): `{train,dev,test}_sent_emo.csv` (in `data/MELD/` of the GitHub repo;
columns `Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime`;
utterances hold commas and curly quotes, so a CSV reader) and the clips of `MELD.Raw.tar.gz`, one per utterance,
`dia{Dialogue_ID}_utt{Utterance_ID}.mp4`, in per-split folders: `train_splits/`, `dev_splits_complete/`,
`output_repeated_splits_test/`. dev is this project's `val`.

The raw root may be the folder holding the CSVs or a parent with `data/MELD/`, `MELD/` or `MELD.Raw/`; the clip
folders are looked up beside the CSVs, under the raw root, under `MELD.Raw/` and under `MELD.Raw/<train|dev|test>/`
(as the inner tarballs extract). The utterance goes in the instruction. No parameters.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from avuie.schemas import TaskFamily

from ._clip import clip_record, first_dir
from .base import Builder, BuilderError, Record, Reject, read_csv_rows, register

# split -> (csv file, clip folder, the folder's parent inside MELD.Raw)
SPLITS = {
    "train": ("train_sent_emo.csv", "train_splits", "train"),
    "val": ("dev_sent_emo.csv", "dev_splits_complete", "dev"),
    "test": ("test_sent_emo.csv", "output_repeated_splits_test", "test"),
}
REQUIRED = ("Utterance", "Emotion", "Dialogue_ID", "Utterance_ID")


def meld_root(raw: Path) -> Path:
    """The folder holding the `*_sent_emo.csv` files."""
    for cand in (raw, raw / "data" / "MELD", raw / "MELD", raw / "MELD.Raw"):
        if any((cand / f).exists() for f, _, _ in SPLITS.values()):
            return cand
    raise BuilderError(f"{raw} holds no MELD annotation file (train_sent_emo.csv, dev_sent_emo.csv, ...)")


def clip_folder(root: Path, raw: Path, folder: str, split_dir: str) -> Path:
    """Where a split's clips are (the first existing candidate; the one beside the CSVs when none exists)."""
    bases = [root, raw, root / "MELD.Raw", raw / "MELD.Raw"]
    return first_dir(*(b / folder for b in bases), *(b / split_dir / folder for b in bases))


@register
class MeldBuilder(Builder):
    """MELD emotion recognition: one sample per utterance row."""

    name = "meld"
    raw_aliases = ("MELD",)
    family = TaskFamily.emotion_recognition
    license = "GPL-3.0 (annotations); clips from the TV series Friends, research use"
    layout = (
        "{train,dev,test}_sent_emo.csv + {train_splits,dev_splits_complete,output_repeated_splits_test}/"
        "dia<D>_utt<U>.mp4"
    )
    description = (
        "Friends utterance clips; the speaker's emotion (7 classes), the utterance in the instruction"
    )

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield one record per CSV row of the three splits."""
        raw = Path(raw)
        root = meld_root(raw)
        for split, (fname, folder, split_dir) in SPLITS.items():
            path = root / fname
            if not path.exists():
                continue
            header, rows = read_csv_rows(path)
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                yield Reject(
                    split, f"{fname}:0", "malformed_header", f"missing columns {missing}", "", fname, 0
                )
                continue
            clips = clip_folder(root, raw, folder, split_dir)
            for row, fields in rows:
                yield self._row(split, fname, row, fields, clips)

    def _row(self, split: str, fname: str, row: int, fields: dict[str, str], clips: Path) -> Record | Reject:
        entry = f"{fname}:{row}"
        dia, utt = fields["Dialogue_ID"].strip(), fields["Utterance_ID"].strip()
        if not (dia.isdigit() and utt.isdigit()):
            detail = f"Dialogue_ID/Utterance_ID {dia!r}/{utt!r} are not integers"
            return Reject(split, entry, "malformed_row", detail, "", fname, row)
        native_id = f"dia{int(dia)}_utt{int(utt)}"
        utterance = " ".join(fields["Utterance"].split())
        if not utterance:
            return Reject(split, entry, "malformed_row", "empty utterance", native_id, fname, row)
        return clip_record(
            self.name,
            self.family,
            native_id=native_id,
            split=split,
            entry=entry,
            raw_label=fields["Emotion"],
            video=clips / f"{native_id}.mp4",
            annotation_file=fname,
            annotation_row=row,
            instruction_fields={"utterance": utterance},
            context={
                "utterance": utterance,
                "speaker": fields.get("Speaker", "").strip(),
                "sentiment": fields.get("Sentiment", "").strip(),
            },
        )
