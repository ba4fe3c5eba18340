"""The sample contract: what every sample in a shard says (docs/DESIGN.md, "The sample").

`Sample` validates the whole: the family matches the target kind, the labels come from the source's class list,
the media the family needs are present, the answer is a rendering of the target (in any answer style) and the response ends with it,
and (when the caller passes the decoded masks as validation context `{"masks": {file: bool array}}`) every point
lies inside its object's mask.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .answers import DEFAULT_STYLE, render_answer, renderings
from .scan import tags as tag_tokens
from .targets import FAMILY_KINDS, Target, TaskFamily, target_labels
from .vocab import vocabulary

SCHEMA_VERSION = "2"  # "2": the Arrow-stable on-disk JSON (schemas/ondisk.py); "1" is still read

MediaKind = Literal["video_frames", "audio", "image", "mask"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


_MEASURED = (
    "duration", "start", "fps", "frame_times", "frame_count", "size", "original_size", "sample_rate", "channels",
    "original_sample_rate", "original_channels", "source_duration", "num_samples", "segments",
)  # fmt: skip


class MediaItem(_Model):
    """One medium of a sample: its kind, role, member files inside the tar sample and what was measured."""

    kind: MediaKind
    role: str
    files: list[str] = Field(min_length=1)
    source_path: str = ""
    duration: float | None = None
    start: float | None = None
    fps: float | None = None
    frame_times: list[float] | None = None
    frame_count: int | None = None
    size: tuple[int, int] | None = None
    original_size: tuple[int, int] | None = None
    sample_rate: int | None = None
    channels: int | None = None
    original_sample_rate: int | None = None
    original_channels: int | None = None
    source_duration: float | None = None
    num_samples: int | None = None
    segments: list[tuple[float, float]] | None = None

    @field_validator("frame_times", "segments")
    @classmethod
    def _none_when_empty(cls, v: list | None) -> list | None:
        return v or None  # an empty list says nothing more than none (the on-disk JSON needs one "absent")

    @model_validator(mode="after")
    def _measured(self) -> MediaItem:
        """Measured numbers are never negative (-1 is the on-disk absent value, schemas/ondisk.py)."""
        for name in _MEASURED:
            value = getattr(self, name)
            numbers = value if isinstance(value, list | tuple) else [value]
            flat = [x for v in numbers for x in (v if isinstance(v, list | tuple) else [v]) if x is not None]
            if any(x < 0 for x in flat):
                raise ValueError(f"{name} must not be negative, got {value}")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> MediaItem:
        for f in self.files:
            if not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*\.[a-z0-9]+", f):
                raise ValueError(f"media file name {f!r} is not a plain tar member suffix")
        if (
            self.kind == "video_frames"
            and self.frame_count is not None
            and self.frame_count != len(self.files)
        ):
            raise ValueError("frame_count differs from the number of frame files")
        if self.kind in ("audio",) and self.sample_rate is not None and self.sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        return self


def _named_keys(mapping: dict[str, Any], message: str) -> dict[str, Any]:
    """The mapping, if none of its keys is empty ("" is the on-disk absent name, schemas/ondisk.py)."""
    if "" in mapping:
        raise ValueError(message)
    return mapping


class ReasoningInfo(_Model):
    """How the reasoning chain was made."""

    kind: Literal["template", "model", "fallback", "human"] = "template"
    model: str | None = None
    prompt_version: str | None = None
    checked: bool = False
    attempts: int = 0
    check_outcome: str | None = None
    fallback_reason: str | None = None
    flagged: bool = False
    usage: dict[str, int] = Field(default_factory=dict)

    @field_validator("model", "prompt_version", "check_outcome", "fallback_reason")
    @classmethod
    def _none_when_blank(cls, v: str | None) -> str | None:
        return v or None  # "" says nothing more than none

    _named = field_validator("usage")(classmethod(lambda cls, v: _named_keys(v, "usage counts need a name")))


class Provenance(_Model):
    """Where a sample came from."""

    annotation_file: str
    annotation_row: int | str | None = None
    builder: str
    builder_version: str
    raw_checksums: dict[str, str] = Field(default_factory=dict)

    _paths = field_validator("raw_checksums")(
        classmethod(lambda cls, v: _named_keys(v, "raw_checksums need a path for every checksum"))
    )


def make_sample_id(source: str, split: str, native_id: str) -> str:
    """The stable id `<source>/<split>/<native_id>`."""
    return f"{source}/{split}/{native_id}"


def make_key(sample_id: str) -> str:
    """The WebDataset key of a sample id: a readable slug plus 8 hex of its sha1 (no dots, unique)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", sample_id).strip("_")[:80]
    return f"{slug}_{hashlib.sha1(sample_id.encode()).hexdigest()[:8]}"


# Media each target kind needs: kind -> {media kind: minimum count}.
_NEEDS: dict[str, dict[str, int]] = {
    "single_event": {"video_frames": 1, "audio": 1},
    "dense_events": {"video_frames": 1, "audio": 1},
    "av_parsing": {"video_frames": 1, "audio": 1},
    "open_qa": {"video_frames": 1, "audio": 1},
    "multiple_choice": {"video_frames": 1, "audio": 1},
    "caption": {"video_frames": 1, "audio": 1},
    "classification": {"video_frames": 1, "audio": 1},
    "segmentation": {"image": 1, "audio": 1, "mask": 1},
    "referring_segmentation": {"image": 1, "audio": 1},
    "grounding": {"image": 1, "audio": 1},
}


class Sample(_Model):
    """One AV-UIE v2 sample."""

    schema_version: str = SCHEMA_VERSION
    id: str
    key: str
    source: str
    family: TaskFamily
    split: str
    native_id: str
    media: list[MediaItem] = Field(min_length=1)
    instruction: str = Field(min_length=1)
    target: Target
    answer: str
    reasoning: str = Field(min_length=1)
    response: str
    reasoning_info: ReasoningInfo = Field(default_factory=ReasoningInfo)
    provenance: Provenance
    license: str
    content_hash: str = ""

    @model_validator(mode="after")
    def _contract(self, info: ValidationInfo) -> Sample:
        if self.id != make_sample_id(self.source, self.split, self.native_id):
            raise ValueError(f"id {self.id!r} is not <source>/<split>/<native_id>")
        if self.key != make_key(self.id):
            raise ValueError(f"key {self.key!r} is not make_key(id)")
        kind = self.target.kind
        if kind not in FAMILY_KINDS[self.family]:
            raise ValueError(f"a {self.family.value} sample cannot carry a {kind!r} target")
        vocab = vocabulary(self.source)
        if vocab is not None:
            for label in target_labels(self.target):
                if label not in vocab:
                    raise ValueError(f"label {label!r} is not in the {self.source} class list")
        self._check_media()
        expected = renderings(self.target, self.source)  # any style (schemas/answers.py)
        if self.answer not in expected.values():
            raise ValueError(
                f"answer {self.answer!r} is not a rendering of the target ({expected[DEFAULT_STYLE]!r})"
            )
        if not self.response.endswith(self.answer):
            raise ValueError("the response must end with the tagged answer")
        if next(tag_tokens(self.reasoning), None) is not None:
            raise ValueError("the reasoning may not contain answer tags; the answer comes after it")
        masks = (info.context or {}).get("masks") if info is not None else None
        if masks:
            self._check_points(masks)
        return self

    def _check_media(self) -> None:
        counts: dict[str, int] = {}
        for m in self.media:
            counts[m.kind] = counts.get(m.kind, 0) + 1
        t: Any = self.target
        if t.kind == "matching":
            need = (
                {"audio": 1, "video_frames": 2} if t.direction == "a2v" else {"video_frames": 1, "audio": 2}
            )
        else:
            need = _NEEDS[t.kind]
        for kind, n in need.items():
            if counts.get(kind, 0) < n:
                raise ValueError(f"a {t.kind!r} sample needs {n} {kind} media, has {counts.get(kind, 0)}")
        files = {f for m in self.media for f in m.files}
        for g in getattr(t, "groups", []):
            if g.mask not in files:
                raise ValueError(f"object {g.label!r}: its mask {g.mask!r} is not among the media")
        names = [f for m in self.media for f in m.files]
        if len(names) != len(set(names)):
            raise ValueError("two media share a file name")

    def _check_points(self, masks: dict[str, Any]) -> None:
        for g in getattr(self.target, "groups", []):
            mask = masks.get(g.mask)
            if mask is None:
                continue
            h, w = mask.shape[:2]
            for x, y in g.points:
                if not (0 <= x < w and 0 <= y < h and bool(mask[y, x])):
                    raise ValueError(f"object {g.label!r}: point {[x, y]} is not inside its mask")

    def media_files(self) -> list[str]:
        """Every tar member suffix of this sample's media, in order."""
        return [f for m in self.media for f in m.files]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a sample."""
    return Sample.model_json_schema()


def compose_response(reasoning: str, answer: str) -> str:
    """The response a sample carries: its reasoning chain, one space, then its tagged answer."""
    return f"{reasoning} {answer}"


def draft_fields(
    *,
    source: str,
    family: TaskFamily,
    split: str,
    native_id: str,
    media: list[MediaItem],
    instruction: str,
    target: Any,
    provenance: Provenance,
    license: str,
) -> dict[str, Any]:
    """The JSON fields of a sample before reasoning: schema version, id, key, media, target and its answer.

    Takes the parts a build has made from one record; returns a dict that `with_reasoning` completes.
    """
    sample_id = make_sample_id(source, split, native_id)
    return {
        "schema_version": SCHEMA_VERSION,
        "id": sample_id,
        "key": make_key(sample_id),
        "source": source,
        "family": family.value,
        "split": split,
        "native_id": native_id,
        "media": [m.model_dump(exclude_none=True) for m in media],
        "instruction": instruction,
        "target": target.model_dump(mode="json"),
        "answer": render_answer(target, source=source),  # the default (Crab+) answer style
        "provenance": provenance.model_dump(mode="json"),
        "license": license,
    }


def with_reasoning(fields: dict[str, Any], reasoning: str, info: dict[str, Any]) -> dict[str, Any]:
    """Draft fields (see `draft_fields`) completed with a reasoning chain, its response and its info; a new dict."""
    d = dict(fields)
    d["reasoning"] = reasoning
    d["response"] = compose_response(reasoning, d["answer"])
    d["reasoning_info"] = info
    return d
