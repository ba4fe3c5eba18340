"""LLP / AVVP (Tian et al., ECCV 2020): audio-visual video parsing on 10 s clips.

Release layout (docs/SOURCES.md): the raw root is the folder holding `data/` (the repository root of
YapengTian/AVVP-ECCV20), or `data/` itself:

    data/AVVP_train.csv          filename<TAB>event_labels            10,000 weak (video-level) rows
    data/AVVP_val_pd.csv         filename<TAB>event_labels            649 videos
    data/AVVP_test_pd.csv        filename<TAB>event_labels            1,200 videos
    data/AVVP_eval_audio.csv     filename<TAB>onset<TAB>offset<TAB>event_labels   dense audio segments (val+test)
    data/AVVP_eval_visual.csv    filename<TAB>onset<TAB>offset<TAB>event_labels   dense visual segments (val+test)
    data/LLP_dataset/video/<ytid>.mp4                                  (also accepted: LLP_dataset/video/ beside data/)

All files are tab-separated with a header line (accepted without one too; LF or CRLF; BOM or not).
`filename` is `<youtube id>_<start>_<end>`; the media key is the YouTube id (`filename[:11]` for the
usual ids; ids may begin with '-'; a few starts are fractional, e.g. `AP0061o0Nvk_101.8_111.8`).

Targets (AVParsingTarget; its answer wording is schemas/answers.py's):
- train: the weak video-level labels only. Each label is given to both modalities over the whole clip,
  `[[0, 10]]`, with `weak=True` (the target says the segments are not observed, not that both modalities
  carry the event).
- val/test: the dense rows of the eval CSVs for that filename, one row per contiguous segment; per class and
  modality the segments are merged into ordered, disjoint runs of whole seconds (overlapping, repeated or
  adjacent rows become one run). A bad dense row is its own reject entry (entry `AVVP_eval_audio.csv:<line>`,
  under the video's split) and the video is built from its other rows: `empty_segment` for onset == offset
  (6 rows in the release), `invalid_span` for an offset before its onset (1 row: `8DF2PxdT5tE_390_400`,
  `9 0 Cheering`) or outside [0, 10], `unknown_class`, `malformed_row`. A video left with no event at all is
  rejected (`invalid_target`); one with no dense row is rejected as `no_dense_labels`. The weak labels of the `_pd` files are not
  used for val/test (81 of them disagree with the dense rows); audio-visual events are the intersection
  (`AVParsingTarget.audio_visual()`).

One sample per video (native id = the `filename`). Media: the whole 10 s clip, 10 frames, 16 kHz audio with
ten 1 s segments. Eval rows of filenames that are in neither `_pd` list (8 in the release) are ignored.
No builder parameters.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Generator, Iterator
from pathlib import Path

from avuie.schemas import AVParsingTarget, TaskFamily, canonical
from avuie.schemas.targets import merge_segments

from ._clip import clip_video
from .base import Builder, BuilderError, Record, Reject, error_text, read_text_lines, register
from .instructions import instruction

SPLIT_FILES = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}
EVAL_FILES = {"audio": "AVVP_eval_audio.csv", "visual": "AVVP_eval_visual.csv"}
CLIP_SECONDS = 10
_FILENAME = re.compile(r"(?P<ytid>.+)_(?P<start>\d+(?:\.\d+)?)_(?P<end>\d+(?:\.\d+)?)")

# (line number, onset, offset, raw label) of one dense row
DenseRow = tuple[int, str, str, str]


def llp_data_dir(raw: Path) -> Path:
    """The folder holding the AVVP CSVs: `raw/data` or `raw` itself; BuilderError when neither has them."""
    for cand in (raw / "data", raw):
        if any((cand / f).exists() for f in SPLIT_FILES.values()):
            return cand
    raise BuilderError(f"{raw} holds no LLP release (expected data/{', data/'.join(SPLIT_FILES.values())})")


def video_id(filename: str) -> str:
    """The YouTube id of an LLP `filename` (`<ytid>_<start>_<end>`); ValueError when it has no such form."""
    m = _FILENAME.fullmatch(filename)
    if not m:
        raise ValueError(f"filename {filename!r} is not <youtube id>_<start>_<end>")
    return m.group("ytid")


def tsv_rows(path: Path, header_start: str = "filename") -> Iterator[tuple[int, list[str]]]:
    """(line number, tab-separated fields) of a file, skipping blank lines and a header line."""
    for n, line in enumerate(read_text_lines(path), start=1):
        if not line.strip() or (n == 1 and line.split("\t")[0].strip() == header_start):
            continue
        yield n, [f.strip() for f in line.split("\t")]


def read_dense(path: Path) -> dict[str, list[DenseRow]]:
    """Dense rows of an eval CSV grouped by filename (a row without 4 fields is kept for the record to reject)."""
    out: dict[str, list[DenseRow]] = defaultdict(list)
    if not path.exists():
        return out
    for n, fields in tsv_rows(path):
        if len(fields) != 4:
            out[fields[0]].append((n, "", "", "\t".join(fields)))
            continue
        filename, onset, offset, label = fields
        out[filename].append((n, onset, offset, label))
    return out


def dense_events(
    rows: list[DenseRow], fname: str
) -> tuple[dict[str, list[tuple[int, int]]], list[tuple[int, str, str]]]:
    """Per class, the merged segments of one modality's dense rows, and the bad rows as (line, reason, detail).

    A bad row (malformed, unknown class, offset before onset, outside the clip, or empty: onset == offset)
    is left out of the segments and reported; the other rows of the video still count.
    """
    by_label: dict[str, list[tuple[int, int]]] = defaultdict(list)
    bad: list[tuple[int, str, str]] = []
    for n, onset, offset, raw_label in rows:
        try:
            s, e = int(onset), int(offset)
        except ValueError:
            bad.append((n, "malformed_row", f"onset/offset {onset!r}/{offset!r} are not whole seconds"))
            continue
        try:
            label = canonical("avvp", raw_label)
        except ValueError as exc:
            bad.append((n, "unknown_class", str(exc)))
            continue
        if e < s:
            bad.append((n, "invalid_span", f"{raw_label}: offset {e} is before onset {s}"))
        elif s < 0 or e > CLIP_SECONDS:
            bad.append((n, "invalid_span", f"{raw_label}: [{s}, {e}) is outside the {CLIP_SECONDS} s clip"))
        elif s == e:
            bad.append((n, "empty_segment", f"{raw_label}: onset == offset == {s} covers no second"))
        else:
            by_label[label].append((s, e))
    return {label: merge_segments(segs) for label, segs in sorted(by_label.items())}, bad


@register
class AvvpBuilder(Builder):
    """LLP audio-visual video parsing: one sample per video of the three split lists."""

    name = "avvp"
    raw_aliases = ("llp",)
    family = TaskFamily.event_localization
    license = "GPL-3.0 (annotations, per the AVVP README); videos YouTube-derived, research use"
    layout = (
        "data/{AVVP_train.csv,AVVP_val_pd.csv,AVVP_test_pd.csv,AVVP_eval_audio.csv,AVVP_eval_visual.csv,"
        "LLP_dataset/video/<ytid>.mp4}"
    )
    description = (
        "10 s clips; audio events and visual events, each with its 1 s segments (weak labels in train)"
    )

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield one record (or reject) per row of AVVP_train.csv, AVVP_val_pd.csv and AVVP_test_pd.csv."""
        data = llp_data_dir(Path(raw))
        video_dirs = [data / "LLP_dataset" / "video", data.parent / "LLP_dataset" / "video"]
        video_dir = next((d for d in video_dirs if d.is_dir()), video_dirs[0])
        dense = {m: read_dense(data / f) for m, f in EVAL_FILES.items()}
        for split, fname in SPLIT_FILES.items():
            path = data / fname
            if not path.exists():
                continue
            reported: set[str] = set()  # videos whose bad dense rows were already rejected
            for row, fields in tsv_rows(path):
                yield from self._entry(split, fname, row, fields, video_dir, dense, reported)

    def _entry(
        self,
        split: str,
        fname: str,
        row: int,
        fields: list[str],
        video_dir: Path,
        dense: dict[str, dict[str, list[DenseRow]]],
        reported: set[str],
    ) -> Iterator[Record | Reject]:
        """The record of one split-list row, preceded by the rejects of its bad dense rows."""
        entry = f"{fname}:{row}"

        def reject(reason: str, detail: str, native_id: str = "") -> Reject:
            return Reject(split, entry, reason, detail, native_id, fname, row)

        if len(fields) != 2 or not fields[0]:
            yield reject("malformed_row", f"expected filename<TAB>event_labels, got {fields!r}")
            return
        filename, labels_text = fields
        try:
            ytid = video_id(filename)
        except ValueError as exc:
            yield reject("malformed_row", str(exc))
            return
        context: dict[str, object] = {"video_id": ytid, "filename": filename}
        if split == "train":
            target_kw = _weak_target(filename, labels_text)
        else:
            target_kw = yield from _dense_target(split, filename, dense, reported)
        if isinstance(target_kw, tuple):  # (reason, detail): the video gives no sample
            yield reject(*target_kw, filename)
            return
        try:
            target = AVParsingTarget(duration=CLIP_SECONDS, **target_kw)
        except ValueError as exc:
            yield reject("invalid_target", error_text(exc), filename)
            return
        video = clip_video(video_dir / f"{ytid}.mp4", CLIP_SECONDS)
        yield Record(
            native_id=filename,
            split=split,
            entry=entry,
            instruction=instruction("avvp"),
            media=[video],
            target=target,
            context=context,
            annotation_file=fname,
            annotation_row=row,
        )


def _weak_target(filename: str, labels_text: str) -> dict[str, object] | tuple[str, str]:
    """A train row's target fields: each weak label for both modalities over the whole clip; or (reason, detail)."""
    raw_labels = [x.strip() for x in labels_text.split(",") if x.strip()]
    if not raw_labels:
        return "no_labels", f"{filename} has no event label"
    try:
        labels = sorted({canonical("avvp", x) for x in raw_labels})
    except ValueError as exc:
        return "unknown_class", str(exc)
    whole = [(0, CLIP_SECONDS)]
    return {"audio": dict.fromkeys(labels, whole), "visual": dict.fromkeys(labels, whole), "weak": True}


def _dense_target(
    split: str, filename: str, dense: dict[str, dict[str, list[DenseRow]]], reported: set[str]
) -> Generator[Reject, None, dict[str, object] | tuple[str, str]]:
    """Yield the rejects of a val/test video's bad eval rows (once per video); return its target fields, or
    (reason, detail) when it has no eval row."""
    audio_rows = dense["audio"].get(filename, [])
    visual_rows = dense["visual"].get(filename, [])
    if not audio_rows and not visual_rows:
        return "no_dense_labels", f"{filename} has no row in the eval CSVs"
    events = {}
    for modality, rows in (("audio", audio_rows), ("visual", visual_rows)):
        efile = EVAL_FILES[modality]
        events[modality], bad = dense_events(rows, efile)
        if filename not in reported:  # a video listed twice reports its bad eval rows once
            for n, reason, detail in bad:
                yield Reject(split, f"{efile}:{n}", reason, f"{filename}: {detail}", "", efile, n)
    reported.add(filename)
    return {**events, "weak": False}
