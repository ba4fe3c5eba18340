"""The builder framework: a builder reads one source's original release and yields records.

A builder is one module in builders/ with one `Builder` subclass decorated by `@register`. `read(raw)` walks the
annotation files of the raw root (in the layout the dataset's authors ship) and yields, per annotation entry, one
or more `Record`s (samples to build) or a `Reject` (a malformed row, an unknown class...). It never raises for one
bad row. `read` does no media work; the pipeline cuts the media a record asks for and then calls
`make_target(record, cut)` (segmentation builders compute boxes and points from the masks there).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from avuie.schemas import MediaItem, TaskFamily
from avuie.schemas.vocab import register_vocabulary

from .instructions import register_instruction

REGISTRY: dict[str, type[Builder]] = {}


class BuilderError(Exception):
    """The raw root cannot be read at all (wrong folder, no annotation file)."""


# --- media requests -----------------------------------------------------------------------------------


@dataclass
class VideoMedia:
    """Cut `num_frames` uniformly spaced frames (and, with `audio_role`, the audio) of [start, start+duration)."""

    path: Path
    role: str = "video"
    num_frames: int | None = None  # None: the family's default profile
    start: float = 0.0
    duration: float | None = None
    audio_role: str | None = "audio"  # None: frames only
    audio_windows: list[tuple[float, float]] | None = None  # in seconds of the cut audio
    prefix: str = ""  # member prefix, e.g. "v1_" for a2v's second video


@dataclass
class AudioMedia:
    """Cut [start, start+duration) of an audio (or video) file as 16 kHz mono WAV."""

    path: Path
    role: str = "audio"
    start: float = 0.0
    duration: float | None = None
    windows: list[tuple[float, float]] | None = None
    file: str = "audio.wav"


@dataclass
class ImageMedia:
    """One frame image, resized to the profile size."""

    path: Path
    role: str = "image"
    file: str = "image.jpg"


@dataclass
class MaskMedia:
    """A ground-truth mask file, decoded (not written): the builder's make_target turns it into object masks."""

    path: Path
    role: str = "mask"
    encoding: str = "binary"  # binary | semantic (index values) | rgb (VOC palette colours)


MediaRequest = VideoMedia | AudioMedia | ImageMedia | MaskMedia


@dataclass
class Record:
    """One sample to build from one annotation entry."""

    native_id: str
    split: str
    entry: str  # the annotation entry, e.g. "trainSet.txt:12"; several records may share it
    instruction: str
    media: list[MediaRequest]
    target: Any = None  # a schemas target, or None when make_target computes it from the media
    context: dict[str, Any] = field(default_factory=dict)
    annotation_file: str = ""
    annotation_row: int | str | None = None

    def media_paths(self) -> list[Path]:
        """Every raw file this record needs."""
        return [m.path for m in self.media]


@dataclass
class Reject:
    """An annotation entry (or sample) that cannot be built, with a short reason code and a human detail."""

    split: str
    entry: str
    reason: str
    detail: str = ""
    native_id: str = ""
    annotation_file: str = ""
    annotation_row: int | str | None = None


@dataclass
class Notice:
    """Something a user should know about an entry that is still built (e.g. a uid that appears twice).

    Notices are reported by `avuie scan` and in stats.json; they are neither samples nor rejects.
    """

    split: str
    entry: str
    kind: str
    detail: str = ""


@dataclass
class Cut:
    """The media of one record after cutting: tar member bytes, the measured media items and decoded masks."""

    files: dict[str, bytes] = field(default_factory=dict)
    media: list[MediaItem] = field(default_factory=list)
    masks: dict[str, Any] = field(default_factory=dict)  # role -> decoded array at original size
    mask_paths: dict[str, str] = field(default_factory=dict)  # role -> raw path
    object_masks: dict[str, Any] = field(default_factory=dict)  # file -> bool array at frame size

    def add_object_mask(
        self, name: str, mask: Any, *, source_path: str, original_size: tuple[int, int]
    ) -> None:
        """Add one object's binary mask (bool array at frame size) as a PNG member `name`."""
        from avuie.media.images import encode_mask_png

        self.files[name] = encode_mask_png(mask)
        self.object_masks[name] = mask
        h, w = mask.shape[:2]
        self.media.append(
            MediaItem(
                kind="mask",
                role=name.rsplit(".", 1)[0],
                files=[name],
                source_path=source_path,
                size=(w, h),
                original_size=original_size,
            )
        )


class Builder:
    """Base class of every source builder. Subclasses set the class attributes and implement `read`."""

    name: ClassVar[str]
    family: ClassVar[TaskFamily]
    license: ClassVar[str] = "unknown (research use; see the dataset's terms)"
    layout: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""
    # Other folder names under a --raw-root where this source's release may sit (a2v/v2a read the AVE tree).
    raw_aliases: ClassVar[tuple[str, ...]] = ()
    # The `--param` names this builder reads (documented in its module docstring); others are refused.
    parameters: ClassVar[tuple[str, ...]] = ()
    # A new source may keep its class list and instruction here instead of in the shared tables
    # (schemas/vocab.py, builders/instructions.py): `@register` records them. `target_kind` is the kind of
    # target its answers render (schemas/targets.py), which picks the answer form `{answer_format}` names.
    classes: ClassVar[tuple[str, ...] | None] = None
    instruction_template: ClassVar[str | None] = None
    target_kind: ClassVar[str | None] = None

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            known = ", ".join(self.parameters) or "none"
            raise BuilderError(f"{self.name}: unknown parameter(s) {', '.join(unknown)} (known: {known})")
        self.params = params

    def read(self, raw: Path) -> Iterator[Record | Reject | Notice]:
        """Yield the records, rejects (and notices) of the raw root, entry by entry."""
        raise NotImplementedError

    def entries(self, raw: Path) -> Iterator[Record | Reject | Notice]:
        """`read(raw)` as a build sees it: ids are unique per split.

        A record whose (split, native_id) an earlier record already had becomes a `duplicate_id` reject (the
        first one is built), so a builder never writes two samples under one id or tar key.
        """
        first: dict[tuple[str, str], str] = {}
        for item in self.read(raw):
            if isinstance(item, Record):
                key = (item.split, item.native_id)
                if key in first:
                    detail = f"{item.native_id} was already read from {first[key]}"
                    yield Reject(
                        item.split,
                        item.entry,
                        "duplicate_id",
                        detail,
                        item.native_id,
                        item.annotation_file,
                        item.annotation_row,
                    )
                    continue
                first[key] = item.entry
            yield item

    def make_target(self, record: Record, cut: Cut) -> Any:
        """The record's target once its media are cut (default: the target read from the annotation).

        Raise ValueError when no target can be made; a `reason` attribute on it becomes the reject reason.
        """
        if record.target is None:
            raise ValueError(f"{self.name}: record {record.native_id} has no target")
        return record.target

    def detect(self, raw: Path) -> bool:
        """Whether `raw` looks like this source's release (used by `build --all`)."""
        try:
            next(iter(self.read(raw)))
            return True
        except (BuilderError, StopIteration):
            return False


def register(cls: type[Builder]) -> type[Builder]:
    """Class decorator: register a builder under its `--source` name, with its class list and instruction when
    it declares them (`classes`, `instruction_template` + `target_kind`)."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"two builders named {cls.name!r}")
    if cls.classes is not None:
        register_vocabulary(cls.name, cls.classes)
    if cls.instruction_template is not None:
        if cls.target_kind is None:
            raise ValueError(f"builder {cls.name!r} declares an instruction_template but no target_kind")
        register_instruction(cls.name, cls.instruction_template, cls.target_kind)
    REGISTRY[cls.name] = cls
    return cls


# --- small reading helpers shared by builders -----------------------------------------------------------


def error_text(exc: Exception) -> str:
    """A one-line reason from an exception (the first message of a pydantic ValidationError)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            return str(first.get("msg", exc))
        except Exception:  # noqa: BLE001 - fall back to the plain text
            pass
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def path_exists(path: Path) -> bool:
    """Whether `path` exists; False when the file system refuses the name (too long, a file where a folder
    should be), so that one entry's odd id becomes a reject at cut time instead of aborting the whole read."""
    try:
        return Path(path).exists()
    except OSError:
        return False


def path_is_dir(path: Path) -> bool:
    """Whether `path` is a directory; False when the file system refuses the name (see `path_exists`)."""
    try:
        return Path(path).is_dir()
    except OSError:
        return False


def read_text_lines(path: Path) -> list[str]:
    """Lines of a text file (UTF-8 with or without BOM, LF or CRLF), without line endings."""
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    return text.splitlines()


def read_csv_rows(path: Path, delimiter: str = ",") -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and (row number, dict) pairs of a CSV (row numbers count data rows from 1)."""
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows = list(reader)
    if not rows:
        return [], []
    header = [h.strip() for h in rows[0]]
    out = []
    for i, row in enumerate(rows[1:], start=1):
        if not any(cell.strip() for cell in row):
            continue
        out.append((i, dict(zip(header, row + [""] * (len(header) - len(row)), strict=False))))
    return header, out
