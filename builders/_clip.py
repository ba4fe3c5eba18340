"""Shared pieces of the clip-classification builders (ks, ucf, meld, mer24, cremad, mafw, dfew).

One clip, one class: `clip_record` makes the Record with the media Crab+ feeds for the family
(docs/DESIGN.md, "Media per family"):
action recognition gets 10 frames and the clip's audio from one cut; emotion recognition gets 4 frames spread
over the whole clip and the first 4 s of audio (from the clip itself or from a separate audio file). Also the
small parameter readers the builders share; a bad parameter raises BuilderError with a clear message, and the
10 s clip with its audio in 1 s windows that the ave, avvp, avcap and avqa_thu builders cut (`clip_video`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from avuie.schemas import ClassificationTarget, TaskFamily, canonical, vocabulary

from .base import AudioMedia, BuilderError, MediaRequest, Record, Reject, VideoMedia, path_exists
from .instructions import instruction

EMOTION_AUDIO_SECONDS = 4.0
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".flv", ".mov")


def clip_media(
    family: TaskFamily,
    video: Path,
    *,
    audio: Path | None = None,
    seconds: float | None = None,
) -> list[MediaRequest]:
    """The media requests of one clip: frames then audio, as the family's instruction mentions them.

    `seconds` (action clips of known length, e.g. 10 s Kinetics) cuts that long and splits the audio into
    1 s segments; emotion clips take frames over the whole clip and the first 4 s of `audio` (default: the
    clip's own audio track).
    """
    if family == TaskFamily.emotion_recognition:
        return [
            VideoMedia(path=video, audio_role=None),
            AudioMedia(
                path=audio or video,
                duration=EMOTION_AUDIO_SECONDS,
                windows=[(0.0, EMOTION_AUDIO_SECONDS)],
            ),
        ]
    windows = second_windows(seconds) if seconds else None
    return [VideoMedia(path=video, num_frames=10, duration=seconds, audio_windows=windows)]


def second_windows(seconds: float) -> list[tuple[float, float]]:
    """One audio window per whole second: [(0.0, 1.0), (1.0, 2.0), ...] for the first int(seconds) seconds."""
    return [(float(t), float(t + 1)) for t in range(int(seconds))]


def clip_video(path: Path, seconds: float) -> VideoMedia:
    """10 frames over the first `seconds` of a clip, with its audio cut into 1 s windows."""
    return VideoMedia(path=path, num_frames=10, duration=seconds, audio_windows=second_windows(seconds))


def label_target(source: str, raw_label: str) -> ClassificationTarget:
    """The classification target of a raw label (ValueError when it is not in the source's class list)."""
    return ClassificationTarget(label=canonical(source, raw_label), original_label=str(raw_label).strip())


def classes_text(source: str) -> str:
    """The source's class names as the emotion instructions list them ('neutral, joy, ...')."""
    return ", ".join(vocabulary(source) or ())


def clip_record(
    source: str,
    family: TaskFamily,
    *,
    native_id: str,
    split: str,
    entry: str,
    raw_label: str,
    video: Path,
    annotation_file: str,
    annotation_row: int | str | None,
    audio: Path | None = None,
    seconds: float | None = None,
    instruction_fields: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    original_label: str | None = None,
) -> Record | Reject:
    """A Record of one labelled clip, or a Reject `unknown_class` when the label is not in the class list.

    `original_label`: the label as the annotation writes it when that is not `raw_label` (a class code or
    index); it goes in the target and the context.
    """
    try:
        target = label_target(source, raw_label)
    except ValueError as exc:
        return Reject(split, entry, "unknown_class", str(exc), native_id, annotation_file, annotation_row)
    if original_label is not None:
        target.original_label = original_label
    fields = dict(instruction_fields or {})
    if family == TaskFamily.emotion_recognition:
        fields.setdefault("classes", classes_text(source))
    return Record(
        native_id=native_id,
        split=split,
        entry=entry,
        instruction=instruction(source, **fields),
        media=clip_media(family, video, audio=audio, seconds=seconds),
        target=target,
        context={"original_label": target.original_label, **(context or {})},
        annotation_file=annotation_file,
        annotation_row=annotation_row,
    )


def find_clip(folder: Path, stem: str, extensions: Iterable[str] = VIDEO_EXTENSIONS) -> Path:
    """`folder/stem.<ext>` for the first extension that exists (the first extension's path when none does)."""
    exts = list(extensions)
    for ext in exts:
        p = folder / f"{stem}{ext}"
        if path_exists(p):
            return p
    return folder / f"{stem}{exts[0]}"


def first_dir(*candidates: Path) -> Path:
    """The first existing directory among the candidates (the first candidate when none exists)."""
    for c in candidates:
        if c.is_dir():
            return c
    return candidates[0]


def int_param(params: dict[str, Any], name: str, default: int, allowed: Iterable[int]) -> int:
    """An integer builder parameter from `allowed`; BuilderError naming the parameter otherwise."""
    value = params.get(name, default)
    allowed = list(allowed)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BuilderError(f"parameter {name}={value!r} is not an integer (one of {allowed})") from None
    if number not in allowed or str(value).strip() not in (str(number), f"{number}.0"):
        raise BuilderError(f"parameter {name}={value!r} must be one of {allowed}")
    return number


def list_param(params: dict[str, Any], name: str, default: Iterable[str]) -> list[str]:
    """A list-of-names builder parameter: a list, or one string separated by commas or new lines."""
    value = params.get(name)
    if value is None:
        return list(default)
    if isinstance(value, str):
        items = [v.strip() for v in value.replace("\n", ",").split(",")]
    elif isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
    else:
        raise BuilderError(f"parameter {name} must be a list or a comma-separated string, not {value!r}")
    items = [v for v in items if v]
    if not items:
        raise BuilderError(f"parameter {name} is empty")
    return items
