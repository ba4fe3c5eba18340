"""The AVSBench reading shared by s4, ms3 and arig (and the mask helpers ref_avs uses): AvsBenchBuilder.

Two releases are read (docs/SOURCES.md):

* AVSBench-semantic: `<root>/{metadata.csv, label2idx.json}` and `<root>/{v1s|v1m|v2}/<uid>/{audio.wav,
  frames/{i}.jpg, labels_semantic/{i}.png, labels_rgb/{i}.png}`. metadata.csv columns vid,uid,s_min,s_sec,
  a_obj,split,label (label = the subset v1s|v1m|v2, not the class). The class is in the mask: a semantic mask
  holds p = label2idx - 1 per pixel, an RGB mask the PASCAL-VOC bit-palette colour of p (0 = background).
* AVSBench-object: `Single-source/s4_meta_data.csv` (name,start,category,split) with `Single-source/s4_data/
  {visual_frames,gt_masks,audio_wav}/<split>/<category>/<name>...`, and `Multi-sources/ms3_meta_data.csv`
  (video_id,split) with `Multi-sources/ms3_data/...` (frames `<id>.mp4_{k}.png`, no split folder). Its masks
  are binary: the S4 class is the row's category in canonical words; MS3 masks name no class (see ms3.py).

Annotations come from the semantic metadata.csv when present, else from the object meta CSV. Media of a clip
come from the semantic tree `<subset>/<uid>/` when that release is there (uid of an object row: S4
`<name>_<start*1000>_<start*1000+5000>`, MS3 the video_id), else from the object-release files; this is how
real_annotations/avsbench is laid out (object meta CSVs + semantic media).

One sample per annotated frame: v1s train clips have only frame 0 annotated, other v1s/v1m clips 5 frames, v2
clips 10. native_id = `<uid>_f<frame>` (frame 0-based, whatever the release). The image is the frame, the audio
the 1 s [i, i+1) aligned with it (AVSBench takes each frame at the end of its second). The target is computed
from the decoded mask (make_target): one group per sounding class, its mask resized to the frame size (nearest),
a tight box and three points inside it (media.mask_geometry), in palette order. A class covering less than
`min_area` of the mask (stray edge pixels: the real MS3 example has 15 pixels of value 9 on the edge of the
`man` region) or vanishing at 224x224 is dropped; a mask with nothing sounding is rejected (`empty_mask`).

Parameters (self.params), with defaults: `release` auto|semantic|object (annotation file; auto: the semantic
metadata.csv first), `media` auto|semantic|object (auto: the semantic clip folder when it exists, else the
object-release files, else the semantic tree when the root has one), `mask_encoding` auto|semantic|rgb (auto:
labels_semantic when the clip has it, else labels_rgb), `subsets` (semantic subsets read; s4 "v1s"),
`binary_label` (class of binary masks that carry none; only ms3 needs it), `min_area` (default 0.0005).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from avuie.schemas import SegmentationTarget, TaskFamily, canonical
from avuie.schemas.classes import AVSBENCH_LABEL2IDX_NAMES

from ._masks import MIN_AREA, Invalid, class_masks, frame_size, object_groups
from .base import (
    AudioMedia,
    Builder,
    BuilderError,
    Cut,
    ImageMedia,
    MaskMedia,
    Record,
    Reject,
    path_exists,
    path_is_dir,
    read_csv_rows,
)
from .instructions import instruction

SPLITS = ("train", "val", "test")
SUBSET_FRAMES = {"v1s": 5, "v1m": 5, "v2": 10}
SEMANTIC_DIRS = ("", "semantic", "AVSBench-semantic", "AVSBench_semantic", "AVSS")
OBJECT_DIRS = ("", "AVSBench-object", "AVSBench_object")
LICENSE = "AVSBench code Apache-2.0; data on request from OpenNLPLab (YouTube-derived, research use)"


# --- the raw root -------------------------------------------------------------------------------------------


def is_semantic_meta(path: Path) -> bool:
    """Whether `path` is an AVSBench-semantic metadata.csv (it has uid, label and split columns)."""
    return path.is_file() and {"uid", "label", "split"} <= set(read_csv_rows(path)[0])


@dataclass
class AvsRoots:
    """Where the two AVSBench releases sit under a raw root (None when absent)."""

    semantic: Path | None
    object: Path | None

    def semantic_meta(self) -> Path | None:
        """The semantic metadata.csv, or None."""
        meta = self.semantic / "metadata.csv" if self.semantic else None
        return meta if meta is not None and is_semantic_meta(meta) else None


def find_roots(raw: Path) -> AvsRoots:
    """Locate the AVSBench-semantic and AVSBench-object trees under `raw` (itself or a known sub-folder)."""
    semantic = obj = None
    for name in SEMANTIC_DIRS:
        cand = raw / name if name else raw
        markers = ("label2idx.json", "v1s", "v1m", "v2")
        if any((cand / m).exists() for m in markers) or is_semantic_meta(cand / "metadata.csv"):
            semantic = cand
            break
    for name in OBJECT_DIRS:
        cand = raw / name if name else raw
        if (cand / "Single-source").is_dir() or (cand / "Multi-sources").is_dir():
            obj = cand
            break
    return AvsRoots(semantic, obj)


def load_palette_names(semantic_root: Path | None) -> dict[int, str]:
    """Palette index p -> class name, from label2idx.json (p = label2idx - 1) or the vocab's default order."""
    path = semantic_root / "label2idx.json" if semantic_root else None
    if path is not None and path.exists():
        try:
            table = json.loads(path.read_bytes().decode("utf-8-sig"))
            return {int(v) - 1: str(k) for k, v in table.items()}
        except (ValueError, TypeError, AttributeError) as exc:
            raise BuilderError(f"{path} is not a name -> index JSON object: {exc}") from exc
    return dict(enumerate(AVSBENCH_LABEL2IDX_NAMES))


# --- clips --------------------------------------------------------------------------------------------------


@dataclass
class AvsClip:
    """One annotated clip: its files per annotated frame and the class of its binary masks (if any)."""

    uid: str
    split: str
    entry: str
    file: str
    row: int
    frames: list[tuple[int, Path, Path, str]]  # (frame index, image, mask, mask encoding)
    audio: Path
    label: str | None = None
    context: dict[str, Any] | None = None


def annotated_frames(subset: str, split: str) -> list[int]:
    """Annotated frame indices (0-based): v1s train only the first, otherwise every frame of the subset."""
    return [0] if subset == "v1s" and split == "train" else list(range(SUBSET_FRAMES[subset]))


def semantic_row_problem(uid: str, split: str, subset: str) -> tuple[str, str] | None:
    """(reason, detail) of a bad semantic metadata row, or None when it is good."""
    if subset not in SUBSET_FRAMES:
        return "unknown_subset", f"label {subset!r} is none of v1s, v1m, v2"
    if not uid:
        return "malformed_row", "empty uid"
    if split not in SPLITS:
        return "unknown_split", f"split {split!r} of {uid} is none of {', '.join(SPLITS)}"
    return None


def semantic_clip_files(
    clip_dir: Path, frames: list[int], encoding: str
) -> tuple[list[tuple[int, Path, Path, str]], Path]:
    """Frame, mask and encoding per annotated frame of a semantic-release clip folder, and its audio."""
    if encoding == "auto":
        encoding = (
            "rgb"
            if not path_exists(clip_dir / "labels_semantic") and path_exists(clip_dir / "labels_rgb")
            else "semantic"
        )
    folder = "labels_rgb" if encoding == "rgb" else "labels_semantic"
    out = [(i, clip_dir / "frames" / f"{i}.jpg", clip_dir / folder / f"{i}.png", encoding) for i in frames]
    return out, clip_dir / "audio.wav"


class AvsBenchBuilder(Builder):
    """The AVSBench reading shared by s4, ms3 and arig: rows -> clips -> one record per annotated frame."""

    parameters = ("release", "mask_encoding", "binary_label", "media", "min_area", "subsets")

    family = TaskFamily.segmentation
    license = LICENSE
    splits = SPLITS
    subset = "v1s"  # the semantic subset of this source's object-release rows
    object_meta = "Single-source/s4_meta_data.csv"
    object_data = "Single-source/s4_data"

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield one record per annotated frame of every clip (or a reject per bad row)."""
        roots = find_roots(Path(raw))
        self.palette_names = load_palette_names(roots.semantic)
        release = self.params.get("release", "auto")
        semantic_meta = roots.semantic_meta() if release in ("auto", "semantic") else None
        object_meta = (
            roots.object / self.object_meta if roots.object and release in ("auto", "object") else None
        )
        if semantic_meta is not None:
            rows = self._semantic_clips(roots, semantic_meta)
        elif object_meta is not None and object_meta.exists():
            rows = self._object_clips(roots, object_meta)
        else:
            raise BuilderError(
                f"{raw} holds no AVSBench release for {self.name} (expected metadata.csv with uid,label,split of "
                f"AVSBench-semantic, or {self.object_meta} of AVSBench-object)"
            )
        for item in rows:
            if isinstance(item, Reject):
                yield item
            else:
                yield from self.clip_records(item)

    # -- annotation files --

    def _semantic_clips(self, roots: AvsRoots, path: Path) -> Iterator[AvsClip | Reject]:
        subsets, encoding = self._subsets(), self.params.get("mask_encoding", "auto")
        for row, r in read_csv_rows(path)[1]:
            uid, split, subset = (r.get(k, "").strip() for k in ("uid", "split", "label"))
            if subset in SUBSET_FRAMES and subset not in subsets:
                continue  # another source's rows (v1s: s4/arig, v1m: ms3)
            entry = f"{path.name}:{row}"
            problem = semantic_row_problem(uid, split, subset)
            if problem:
                yield Reject(split or "unknown", entry, *problem, uid, path.name, row)
                continue
            frames, audio = semantic_clip_files(
                roots.semantic / subset / uid, annotated_frames(subset, split), encoding
            )
            context = {
                "video_id": r.get("vid", "").strip() or uid,
                "uid": uid,
                "sounding_objects": r.get("a_obj", ""),
            }
            label = self.params.get("binary_label")
            yield AvsClip(uid, split, entry, path.name, row, frames, audio, label, context)

    def _object_clips(self, roots: AvsRoots, path: Path) -> Iterator[AvsClip | Reject]:
        rel = str(path.relative_to(roots.object))
        object_tree = (roots.object / self.object_data).is_dir()
        use = self.params.get("media", "auto")
        for row, r in read_csv_rows(path)[1]:
            entry = f"{path.name}:{row}"
            split = r.get("split", "").strip()
            try:
                uid, label, object_files = self.parse_object_row(r, roots.object / self.object_data, split)
                if split not in SPLITS:
                    raise Invalid("unknown_split", f"split {split!r} of {uid}")
            except Invalid as exc:
                yield Reject(split or "unknown", entry, exc.reason, exc.detail, "", rel, row)
                continue
            frames = annotated_frames(self.subset, split)
            clip_dir = roots.semantic / self.subset / uid if roots.semantic else None
            if use == "semantic" or (
                use == "auto" and clip_dir is not None and (path_is_dir(clip_dir) or not object_tree)
            ):
                if clip_dir is None:
                    raise BuilderError(f"media=semantic but {roots} has no AVSBench-semantic tree")
                files, audio = semantic_clip_files(clip_dir, frames, self.params.get("mask_encoding", "auto"))
            else:
                files = [(i, *object_files(i)[:2], "binary") for i in frames]
                audio = object_files(0)[2]
            context = {"video_id": uid, "uid": uid, "category": label or ""}
            yield AvsClip(
                uid, split, entry, rel, row, files, audio, label or self.params.get("binary_label"), context
            )

    def parse_object_row(self, r: dict[str, str], data: Path, split: str):
        """(uid, class of its binary masks, files(frame) -> (image, mask, audio)) of one s4_meta_data.csv row.

        `data` is the object release's `Single-source/s4_data`. Raises Invalid for a malformed row or an
        unknown category.
        """
        name, start, category = (r.get(k, "").strip() for k in ("name", "start", "category"))
        if not name or not category:
            raise Invalid("malformed_row", f"empty name or category in {r}")
        try:
            start_ms = round(float(start) * 1000)
        except ValueError:
            raise Invalid("malformed_row", f"start {start!r} of {name} is not a number of seconds") from None
        try:
            label = canonical(self.name, category)
        except ValueError as exc:
            raise Invalid("unknown_class", str(exc)) from None

        def files(i: int) -> tuple[Path, Path, Path]:
            stem = f"{name}/{name}_{i + 1}.png"
            return (
                data / "visual_frames" / split / category / stem,
                data / "gt_masks" / split / category / stem,
                data / "audio_wav" / split / category / f"{name}.wav",
            )

        return f"{name}_{start_ms}_{start_ms + 5000}", label, files

    @property
    def min_area(self) -> float:
        """The `min_area` parameter: the smallest fraction of the mask a class must cover (default 0.0005)."""
        return float(self.params.get("min_area", MIN_AREA))

    def _subsets(self) -> set[str]:
        value = self.params.get("subsets", self.subset)
        items = value.split(",") if isinstance(value, str) else list(value)
        subsets = {s.strip() for s in items if s.strip()}
        unknown = subsets - set(SUBSET_FRAMES)
        if unknown:
            raise BuilderError(f"{self.name}: unknown subsets {sorted(unknown)} (v1s, v1m, v2)")
        return subsets

    # -- records and targets --

    def clip_records(self, clip: AvsClip) -> Iterator[Record]:
        """One record per annotated frame: the frame, its 1 s of audio, its mask."""
        for i, image, mask, encoding in clip.frames:
            yield Record(
                native_id=f"{clip.uid}_f{i}",
                split=clip.split,
                entry=clip.entry,
                instruction=instruction(self.name),
                media=[
                    ImageMedia(image),
                    AudioMedia(clip.audio, start=float(i), duration=1.0),
                    MaskMedia(mask, encoding=encoding),
                ],
                context={**(clip.context or {}), "frame": i, "mask_label": clip.label},
                annotation_file=clip.file,
                annotation_row=clip.row,
            )

    def record_classes(self, record: Record, cut: Cut) -> list[tuple[str, np.ndarray]]:
        """(class, bool mask at original size) per sounding class of the record's mask."""
        encoding = next(m.encoding for m in record.media if isinstance(m, MaskMedia))
        names = getattr(self, "palette_names", None) or load_palette_names(None)
        return class_masks(cut.masks["mask"], encoding, names, record.context.get("mask_label"))

    def make_target(self, record: Record, cut: Cut) -> SegmentationTarget:
        """The segmentation target: one group per sounding class of the decoded mask."""
        classes = self.record_classes(record, cut)
        groups = object_groups(self.name, cut, classes, cut.mask_paths["mask"], self.min_area)
        if not groups:
            raise Invalid("empty_mask", f"nothing sounds in {cut.mask_paths['mask']}")
        return SegmentationTarget(groups=groups, frame_size=frame_size(cut))
