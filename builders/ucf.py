"""UCF101 (Soomro et al., 2012): action recognition on short YouTube clips, 101 classes.

Release layout (docs/SOURCES.md): `ucfTrainTestlist/{classInd.txt, trainlist0N.txt, testlist0N.txt}`
beside `UCF-101/<Class>/v_<Class>_gXX_cYY.avi`. The lists have CRLF line endings; `classInd.txt` is 1-based
(`1 ApplyEyeMakeup`); train rows are `<Class>/<file>.avi <index>`, test rows the path only (the class is the
folder). File names may spell the class differently from its folder (`HandstandPushups/v_HandStandPushups_...`):
the path is used as listed. The raw root is the folder holding `ucfTrainTestlist/` (or that folder itself).

Parameters: `fold` = which official split (1, 2 or 3; default 1). Only about half of the clips have an audio
track: a clip without one is rejected with `no_audio_stream` when its media are cut.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from avuie.schemas import TaskFamily

from ._clip import clip_record, int_param
from .base import Builder, BuilderError, Record, Reject, read_text_lines, register

LISTS = {"train": "trainlist{fold:02d}.txt", "test": "testlist{fold:02d}.txt"}


def ucf_lists_dir(raw: Path) -> Path:
    """The folder holding classInd.txt: `raw/ucfTrainTestlist` or `raw` itself."""
    for cand in (raw / "ucfTrainTestlist", raw):
        if (cand / "classInd.txt").exists():
            return cand
    raise BuilderError(f"{raw} holds no ucfTrainTestlist/classInd.txt (UCF101 split lists)")


def read_class_index(path: Path) -> dict[int, str]:
    """classInd.txt as {1-based index: class name}; BuilderError when a line is malformed."""
    classes: dict[int, str] = {}
    for n, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise BuilderError(f"{path.name}:{n}: expected '<index> <ClassName>', got {line!r}")
        classes[int(parts[0])] = parts[1]
    return classes


@register
class UcfBuilder(Builder):
    """UCF101 action recognition: one sample per clip of the chosen official split."""

    name = "ucf"
    parameters = ("fold",)
    raw_aliases = ("ucf101", "UCF101")
    family = TaskFamily.action_recognition
    license = "none stated (YouTube-derived, research use; CRCV UCF)"
    layout = "ucfTrainTestlist/{classInd.txt,trainlist0N.txt,testlist0N.txt} + UCF-101/<Class>/v_<Class>_gXX_cYY.avi"
    splits = ("train", "test")
    description = "UCF101 clips; the action class (official split 1 by default, `fold` 1-3)"

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield one record per line of the chosen train and test lists."""
        fold = int_param(self.params, "fold", 1, (1, 2, 3))
        lists = ucf_lists_dir(Path(raw))
        videos = lists.parent / "UCF-101" if lists.name == "ucfTrainTestlist" else Path(raw) / "UCF-101"
        classes = read_class_index(lists / "classInd.txt")
        by_name = {c.lower(): c for c in classes.values()}
        found = False
        for split, pattern in LISTS.items():
            fname = pattern.format(fold=fold)
            path = lists / fname
            if not path.exists():
                continue
            found = True
            for row, line in enumerate(read_text_lines(path), start=1):
                if line.strip():
                    yield self._row(split, fname, row, line, classes, by_name, videos)
        if not found:
            raise BuilderError(f"{lists} has neither trainlist{fold:02d}.txt nor testlist{fold:02d}.txt")

    def _row(
        self,
        split: str,
        fname: str,
        row: int,
        line: str,
        classes: dict[int, str],
        by_name: dict[str, str],
        videos: Path,
    ) -> Record | Reject:
        entry = f"{fname}:{row}"

        def reject(reason: str, detail: str, native_id: str = "") -> Reject:
            return Reject(split, entry, reason, detail, native_id, fname, row)

        parts = line.split()
        rel = parts[0].replace("\\", "/")
        if len(parts) > 2 or "/" not in rel or not rel.lower().endswith(".avi"):
            return reject("malformed_row", f"expected '<Class>/<file>.avi [index]', got {line!r}")
        folder, file = rel.rsplit("/", 1)
        native_id = file.rsplit(".", 1)[0]
        class_name = by_name.get(folder.lower())
        if class_name is None:
            return reject("unknown_class", f"folder {folder!r} is not a class of classInd.txt", native_id)
        if len(parts) == 2:
            if not parts[1].isdigit() or int(parts[1]) not in classes:
                return reject("unknown_class", f"class index {parts[1]!r} is not in classInd.txt", native_id)
            if classes[int(parts[1])] != class_name:
                detail = f"index {parts[1]} is {classes[int(parts[1])]!r} but the folder is {folder!r}"
                return reject("label_mismatch", detail, native_id)
        return clip_record(
            self.name,
            self.family,
            native_id=native_id,
            split=split,
            entry=entry,
            raw_label=class_name,
            video=videos / folder / file,
            annotation_file=fname,
            annotation_row=row,
            context={"video_id": native_id},
        )
