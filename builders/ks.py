"""Kinetics-Sounds (Arandjelovic & Zisserman, 2017): action recognition on 10 s Kinetics clips whose action is
audible, filtered from the Kinetics-400 annotation by a class list.

Release layout (docs/SOURCES.md): there is no stand-alone release. The Kinetics CSVs
(`train.csv`, `validate.csv`/`val.csv`, `test.csv`, or `kinetics_{train,val,test}.csv`; columns
`label,youtube_id,time_start,time_end,split[,is_cc]`) sit in the raw root, in `annotations/`, or in
`kinetics400/[annotations/]`. The split comes from the `split` column (`validate`/`val` -> val), else from the
file name. A CSV without a `label` column (the old unlabelled test list) is skipped.

Accepted clip layouts, `<clip>` = `<youtube_id>_<start:06d>_<end:06d>.mp4`, under the raw root, the CSV
folder or its parent, in the split folder (`train/`, `val|validate|valid/`, `test/`):
- `<split>/<label>/<clip>` (the ActivityNet Kinetics downloader; `<label>` as written, or with `_` for spaces);
- `<split>/<clip>` (the flat CVDF mirror layout).

Parameters: `classes` = the class list (a list or a comma-separated string; default
`schemas.vocab.KINETICS_SOUNDS_DEFAULT`, the 34 classes of the paper). The paper's short names match their
Kinetics-400 spellings through `ALIASES` (e.g. `blowing out` -> `blowing out candles`); with the K400 CSVs 31
of the 34 classes exist (`typing`, `fingerpicking` and `patting` are not K400 classes). Rows of other classes are
not Kinetics-Sounds entries and are skipped silently. The answer is the CSV's own (Kinetics) spelling.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from avuie.schemas import TaskFamily, canonical
from avuie.schemas.classes_clips import KINETICS_SOUNDS_DEFAULT

from ._clip import clip_record, list_param
from .base import Builder, BuilderError, Record, Reject, path_exists, read_csv_rows, register

ALIASES = {
    "blowing out": "blowing out candles",
    "dribbling ball": "dribbling basketball",
    "mowing the lawn by pushing lawnmower": "mowing lawn",
    "stomping": "stomping grapes",
}
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "validate": "val", "valid": "val",
               "validation": "val", "test": "test", "testing": "test"}  # fmt: skip
SPLIT_DIRS = {"train": ("train",), "val": ("val", "validate", "valid", "validation"), "test": ("test",)}
REQUIRED = ("label", "youtube_id", "time_start", "time_end")


def fold(text: str) -> str:
    """A label folded for matching: lower case, `_` as space, single spaces, no quotes."""
    return " ".join(text.replace("_", " ").replace('"', "").lower().split())


def wanted_classes(classes: list[str]) -> set[str]:
    """The folded labels a class list accepts (each name and its Kinetics alias); BuilderError on an unknown one."""
    out: set[str] = set()
    for c in classes:
        try:
            canonical("ks", c)
        except ValueError:
            raise BuilderError(
                f"class {c!r} of parameter classes is not in the ks vocabulary (schemas/vocab.py)"
            ) from None
        out.add(fold(c))
        if fold(c) in ALIASES:
            out.add(fold(ALIASES[fold(c)]))
    return out


def annotation_files(raw: Path) -> list[Path]:
    """The Kinetics CSVs under the raw root (first folder that has any)."""
    for cand in (raw, raw / "annotations", raw / "kinetics400", raw / "kinetics400" / "annotations"):
        files = sorted(p for p in cand.glob("*.csv") if re.search(r"train|val|test", p.name, re.I))
        if files:
            return files
    raise BuilderError(f"{raw} holds no Kinetics CSV (train.csv, validate.csv, test.csv, kinetics_*.csv)")


def split_of(value: str, file_name: str) -> str | None:
    """The split of a row: its `split` column, else the file name."""
    if value.strip():
        return SPLIT_NAMES.get(value.strip().lower())
    for key in ("train", "val", "test"):
        if key in file_name.lower():
            return SPLIT_NAMES[key]
    return None


@register
class KsBuilder(Builder):
    """Kinetics-Sounds action recognition: one sample per Kinetics row of a listed class."""

    name = "ks"
    parameters = ("classes",)
    raw_aliases = ("kinetics_sounds", "kinetics")
    family = TaskFamily.action_recognition
    license = "CC BY 4.0 (Kinetics annotations); clips from YouTube, research use"
    layout = "{train,validate,test}.csv (label,youtube_id,time_start,time_end,split) + <split>/<label>/<ytid>_<s:06d>_<e:06d>.mp4"
    description = "10 s Kinetics clips of audible actions; the action class (class list `classes`)"

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield one record per CSV row whose label is in the class list."""
        raw = Path(raw)
        wanted = wanted_classes(list_param(self.params, "classes", KINETICS_SOUNDS_DEFAULT))
        folders: dict[tuple[Path, str], list[Path]] = {}
        labelled = 0
        for path in annotation_files(raw):
            header, rows = read_csv_rows(path)
            if any(c not in header for c in REQUIRED):
                continue  # the unlabelled test list, or another CSV
            labelled += 1
            bases = list(dict.fromkeys([raw, path.parent, path.parent.parent]))
            for row, fields in rows:
                if fold(fields["label"]) not in wanted:
                    continue
                split = split_of(fields.get("split", ""), path.name)
                entry = f"{path.name}:{row}"
                if split is None:
                    detail = f"split {fields.get('split', '')!r} is not train/val/test"
                    yield Reject("train", entry, "unknown_split", detail, "", path.name, row)
                    continue
                key = (path, split)
                if key not in folders:
                    folders[key] = split_folders(bases, split)
                yield self._row(split, path.name, row, fields, folders[key])
        if not labelled:
            raise BuilderError(f"{raw}: no Kinetics CSV has the columns {','.join(REQUIRED)}")

    def _row(
        self, split: str, fname: str, row: int, fields: dict[str, str], folders: list[Path]
    ) -> Record | Reject:
        entry = f"{fname}:{row}"
        ytid, label = fields["youtube_id"].strip(), " ".join(fields["label"].replace('"', "").split())
        try:
            start, end = float(fields["time_start"]), float(fields["time_end"])
        except ValueError:
            detail = f"time_start/time_end {fields['time_start']!r}/{fields['time_end']!r} are not numbers"
            return Reject(split, entry, "malformed_row", detail, "", fname, row)
        if not ytid:
            return Reject(split, entry, "malformed_row", "empty youtube_id", "", fname, row)
        native_id = f"{ytid}_{int(start):06d}_{int(end):06d}"
        if not 0 <= start < end:
            detail = f"time_end {end:g} is not after time_start {start:g}"
            return Reject(split, entry, "invalid_span", detail, native_id, fname, row)
        return clip_record(
            self.name,
            self.family,
            native_id=native_id,
            split=split,
            entry=entry,
            raw_label=label,
            video=clip_path(folders, label, f"{native_id}.mp4"),
            annotation_file=fname,
            annotation_row=row,
            seconds=min(end - start, 10.0),
            context={"youtube_id": ytid, "time_start": start, "time_end": end},
        )


def split_folders(bases: list[Path], split: str) -> list[Path]:
    """The existing clip folders of a split under the base folders (the first candidate when none exists)."""
    candidates = [base / d for base in bases for d in SPLIT_DIRS[split]]
    return [c for c in candidates if c.is_dir()] or candidates[:1]


def clip_path(folders: list[Path], label: str, file: str) -> Path:
    """Where a clip is, trying every accepted layout; the downloader layout's path when none exists."""
    candidates = []
    for folder in folders:
        candidates += [folder / label / file, folder / label.replace(" ", "_") / file, folder / file]
    for c in candidates:
        if path_exists(c):
            return c
    return candidates[0]
