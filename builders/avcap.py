"""VALOR-32K (Chen et al., 2023): audio-visual captions of 10 s AudioSet clips.

Release layout (docs/SOURCES.md): the raw root holds the annotation files and the clips:

    desc_{train,val,test}.json        the original release (VALOR-32K-annotations.zip): [{video_id, desc}, ...]
    descs_cap_{train,val,test}.json   the VAST-format variant: [{video_id, desc, subtitle}, ...]
    video_data/<video_id>.mp4         (also accepted: videos/, video/)

The annotation files may also sit in `annotations/`, `VALOR-32K-annotations/` or `data/`. Video ids look like
`<ytid>_<start>.000_<end>.000` (a few starts are fractional). `desc` is one caption; a list of captions is
accepted too and gives one sample per caption (native id `<video_id>_<i>`), otherwise the native id is the
video id. The VAST `subtitle` (ASR text, often empty) travels in the record context only.

Parameters: `annotations` = `desc` (the original files) or `descs_cap` (the VAST variant); by default each
split uses `desc_<split>.json` when present, else `descs_cap_<split>.json`.
Media: the clip's first 10 s, 10 frames, 16 kHz audio with ten 1 s segments.
Rejects: `malformed_entry` (not an object, no video_id), `empty_caption`, `invalid_caption` (a caption holding
tags), `malformed_json` (a whole file); a video id twice in one file is the framework's `duplicate_id`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avuie.schemas import CaptionTarget, TaskFamily

from ._clip import clip_video
from .base import Builder, BuilderError, Record, Reject, error_text, register
from .instructions import instruction

SPLITS = ("train", "val", "test")
VARIANTS = ("desc", "descs_cap")
ANNOTATION_DIRS = ("", "annotations", "VALOR-32K-annotations", "data")
VIDEO_DIRS = ("video_data", "videos", "video")
CLIP_SECONDS = 10


def split_files(raw: Path, variant: str | None) -> dict[str, Path]:
    """The annotation file of each split found under raw (per the variant); BuilderError when there is none."""
    names = [variant] if variant else list(VARIANTS)
    for sub in ANNOTATION_DIRS:
        folder = raw / sub if sub else raw
        found = {}
        for split in SPLITS:
            for name in names:
                path = folder / f"{name}_{split}.json"
                if path.exists():
                    found[split] = path
                    break
        if found:
            return found
    wanted = " or ".join(f"{n}_{{train,val,test}}.json" for n in names)
    raise BuilderError(f"{raw} holds no VALOR-32K annotations (expected {wanted})")


def captions(desc: Any) -> list[str]:
    """The caption(s) of a `desc` value: one string, or a list of strings (ValueError otherwise)."""
    if isinstance(desc, str):
        return [desc]
    if isinstance(desc, list) and all(isinstance(d, str) for d in desc):
        return desc
    raise ValueError(f"desc {desc!r} is neither a caption nor a list of captions")


@register
class AvcapBuilder(Builder):
    """VALOR-32K audio-visual captioning: one sample per clip caption."""

    name = "avcap"
    parameters = ("annotations",)
    raw_aliases = ("valor32k", "valor")
    family = TaskFamily.captioning
    license = "MIT (VALOR repository); clips from AudioSet (YouTube), research use"
    layout = "{desc,descs_cap}_{train,val,test}.json, video_data/<video_id>.mp4"
    description = "10 s clips; an audio-visual caption"

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield the records (or a reject) of every entry of the split files."""
        raw = Path(raw)
        variant = self.params.get("annotations")
        if variant is not None and variant not in VARIANTS:
            raise BuilderError(f"avcap: annotations must be one of {VARIANTS}, not {variant!r}")
        files = split_files(raw, variant)
        video_dir = next((raw / d for d in VIDEO_DIRS if (raw / d).is_dir()), raw / VIDEO_DIRS[0])
        for split, path in files.items():
            fname = path.name
            try:
                data = json.loads(path.read_bytes().decode("utf-8-sig"))
                if not isinstance(data, list):
                    raise ValueError(f"holds a {type(data).__name__}, not a list of entries")
            except (UnicodeDecodeError, ValueError) as exc:
                yield Reject(split, fname, "malformed_json", f"{fname}: {exc}", "", fname, None)
                continue
            for pos, item in enumerate(data, start=1):
                yield from self._records(split, fname, pos, item, video_dir)

    def _records(
        self, split: str, fname: str, pos: int, item: Any, video_dir: Path
    ) -> Iterator[Record | Reject]:
        entry = f"{fname}:{pos}"

        def reject(reason: str, detail: str, native_id: str = "") -> Reject:
            return Reject(split, entry, reason, detail, native_id, fname, pos)

        vid = str(item.get("video_id") or "").strip() if isinstance(item, dict) else ""
        if not vid:
            yield reject("malformed_entry", f"entry {item!r:.80} has no video_id")
            return
        try:
            texts = captions(item.get("desc"))
        except ValueError as exc:
            yield reject("malformed_entry", str(exc), vid)
            return
        for i, text in enumerate(texts):
            native_id = vid if len(texts) == 1 and isinstance(item.get("desc"), str) else f"{vid}_{i}"
            if not text.strip():
                yield reject("empty_caption", f"video {vid} has an empty caption", native_id)
                continue
            try:
                target = CaptionTarget(caption=text)
            except ValueError as exc:
                yield reject("invalid_caption", error_text(exc), native_id)
                continue
            video = clip_video(video_dir / f"{vid}.mp4", CLIP_SECONDS)
            yield Record(
                native_id=native_id,
                split=split,
                entry=entry,
                instruction=instruction("avcap"),
                media=[video],
                target=target,
                context={"video_id": vid, "subtitle": str(item.get("subtitle") or "").strip()},
                annotation_file=fname,
                annotation_row=pos,
            )
