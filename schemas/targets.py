"""Typed targets of the seven task families, one pydantic model per target kind, discriminated by `kind`.

Each target validates what can be checked from itself: times inside the clip and start < end, boxes inside the
frame, three points per object inside the box. Checks that need more (labels inside the source's class list,
points inside the mask pixels, the media a family needs) happen in `avuie.schemas.sample.Sample`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class TaskFamily(str, Enum):
    """The seven task families of AV-UIE v2."""

    event_localization = "event_localization"
    question_answering = "question_answering"
    segmentation = "segmentation"
    captioning = "captioning"
    cross_modal_matching = "cross_modal_matching"
    action_recognition = "action_recognition"
    emotion_recognition = "emotion_recognition"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


def _check_span(
    start: float, end: float, duration: float, what: str, allow_empty: bool = False, slack: float = 1e-6
) -> None:
    if not (start < end or (allow_empty and start == end)):
        raise ValueError(f"{what}: start {start} must be before end {end}")
    if start < 0 or end > duration + slack:
        raise ValueError(f"{what}: [{start}, {end}] is outside the clip [0, {duration}]")


class SingleEventTarget(_Model):
    """One audible-and-visible event with its [start, end) in whole seconds (AVE).

    AVE's release has one row with start == end (`VWi2ENBuTbw`, 0&0): an empty interval is kept as the
    annotation says (no labelled second); an end before its start is invalid.
    """

    kind: Literal["single_event"] = "single_event"
    label: str
    start: int
    end: int
    duration: float = 10.0

    @model_validator(mode="after")
    def _span(self) -> SingleEventTarget:
        _check_span(self.start, self.end, self.duration, f"event {self.label!r}", allow_empty=True)
        return self


# Dense-event times are rendered with one decimal (tags.fmt_time): an answer's end may pass the clip's duration by
# up to half that step (36.06 s in a 36.07 s clip reads "36.1") and is still inside the clip.
DISPLAY_SLACK = 0.05 + 1e-6


class Event(_Model):
    """One event of a dense list: label and float [start, end] seconds, as released (never rounded here: the
    answer rounds them to one decimal for display only)."""

    label: str
    start: float
    end: float


class DenseEventsTarget(_Model):
    """Every event of an untrimmed clip, ordered by start (UnAV-100); events may overlap and repeat."""

    kind: Literal["dense_events"] = "dense_events"
    events: list[Event] = Field(min_length=1)
    duration: float

    @model_validator(mode="after")
    def _spans(self) -> DenseEventsTarget:
        for ev in self.events:
            _check_span(ev.start, ev.end, self.duration, f"event {ev.label!r}", slack=DISPLAY_SLACK)
        order = [(e.start, e.end, e.label) for e in self.events]
        if order != sorted(order):
            raise ValueError("events must be ordered by start (then end, then label)")
        return self


Segments = list[tuple[int, int]]


class AVParsingTarget(_Model):
    """Audio events and visual events, each class with its [start, end) one-second segments (LLP / AVVP).

    `weak` marks training rows with video-level labels only (their segments span the whole clip).
    """

    kind: Literal["av_parsing"] = "av_parsing"
    audio: dict[str, Segments] = Field(default_factory=dict)
    visual: dict[str, Segments] = Field(default_factory=dict)
    duration: float = 10.0
    weak: bool = False

    @model_validator(mode="after")
    def _segments(self) -> AVParsingTarget:
        if not self.audio and not self.visual:
            raise ValueError("an AVVP target needs at least one audio or visual event")
        for modality, events in (("audio", self.audio), ("visual", self.visual)):
            for label, segs in events.items():
                if not segs:
                    raise ValueError(f"{modality} event {label!r} has no segment")
                for s, e in segs:
                    _check_span(s, e, self.duration, f"{modality} event {label!r}")
                if sorted(segs) != list(segs):
                    raise ValueError(f"{modality} event {label!r}: segments must be ordered")
        return self

    def audio_visual(self) -> dict[str, Segments]:
        """Audio-visual events: per class, the intersection of its audio and visual segments."""
        out: dict[str, Segments] = {}
        for label in sorted(set(self.audio) & set(self.visual)):
            a = {t for s, e in self.audio[label] for t in range(s, e)}
            v = {t for s, e in self.visual[label] for t in range(s, e)}
            segs = _runs(sorted(a & v))
            if segs:
                out[label] = segs
        return out


def merge_segments(segments: Iterable[tuple[int, int]]) -> Segments:
    """Ordered, disjoint [start, end) runs of whole seconds covering every non-empty input segment."""
    return _runs(sorted({t for s, e in segments for t in range(s, e)}))


def _runs(seconds: list[int]) -> Segments:
    runs: Segments = []
    for t in seconds:
        if runs and runs[-1][1] == t:
            runs[-1] = (runs[-1][0], t + 1)
        else:
            runs.append((t, t + 1))
    return runs


class OpenQATarget(_Model):
    """An open question and its answer from the dataset's answer vocabulary (MUSIC-AVQA)."""

    kind: Literal["open_qa"] = "open_qa"
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    question_type: str = ""


class MultipleChoiceTarget(_Model):
    """A question with four options and the index of the correct one (AVQA, Yang et al.)."""

    kind: Literal["multiple_choice"] = "multiple_choice"
    question: str = Field(min_length=1)
    options: list[str] = Field(min_length=2)
    answer_index: int
    question_type: str = ""

    @model_validator(mode="after")
    def _index(self) -> MultipleChoiceTarget:
        if not 0 <= self.answer_index < len(self.options):
            raise ValueError(f"answer_index {self.answer_index} is outside the {len(self.options)} options")
        if len({o.strip().lower() for o in self.options}) != len(self.options):
            raise ValueError("options must be distinct")
        return self

    @property
    def answer(self) -> str:
        """The text of the correct option."""
        return self.options[self.answer_index]


Box = tuple[int, int, int, int]
Point = tuple[int, int]


class ObjectGroup(_Model):
    """One sounding object: class, tight box [x1,y1,x2,y2] and three points inside its mask (frame pixels)."""

    label: str
    box: Box
    points: list[Point] = Field(min_length=3, max_length=3)
    mask: str = Field(description="file name of this object's mask inside the sample, e.g. mask_0.png")


def _check_box(box: Box, size: tuple[int, int], what: str) -> None:
    x1, y1, x2, y2 = box
    w, h = size
    if not (0 <= x1 <= x2 < w and 0 <= y1 <= y2 < h):
        raise ValueError(f"{what}: box {list(box)} is outside the {w}x{h} frame or not ordered")


class _GroupsMixin(_Model):
    frame_size: tuple[int, int] = (224, 224)

    def _check_groups(self, groups: list[ObjectGroup]) -> None:
        for g in groups:
            _check_box(g.box, self.frame_size, f"object {g.label!r}")
            x1, y1, x2, y2 = g.box
            for x, y in g.points:
                if not (x1 <= x <= x2 and y1 <= y <= y2):
                    raise ValueError(f"object {g.label!r}: point {[x, y]} lies outside its box {list(g.box)}")


class SegmentationTarget(_GroupsMixin):
    """Every sounding object of one frame (AVSBench S4 and MS3), one group per sounding class."""

    kind: Literal["segmentation"] = "segmentation"
    groups: list[ObjectGroup] = Field(min_length=1)

    @model_validator(mode="after")
    def _valid(self) -> SegmentationTarget:
        self._check_groups(self.groups)
        return self


class ReferringSegmentationTarget(_GroupsMixin):
    """Is the referred object there, and where (Ref-AVS). Not present: no group (the null set)."""

    kind: Literal["referring_segmentation"] = "referring_segmentation"
    expression: str = Field(min_length=1)
    present: bool
    groups: list[ObjectGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _valid(self) -> ReferringSegmentationTarget:
        if self.present and not self.groups:
            raise ValueError("a present referred object needs its object group")
        if not self.present and self.groups:
            raise ValueError("an absent referred object has no object group")
        self._check_groups(self.groups)
        return self


class GroundingTarget(_Model):
    """The sounding object's class and box in one frame (audio-referred image grounding, ARIG)."""

    kind: Literal["grounding"] = "grounding"
    label: str
    box: Box
    frame_size: tuple[int, int] = (224, 224)

    @model_validator(mode="after")
    def _valid(self) -> GroundingTarget:
        _check_box(self.box, self.frame_size, f"object {self.label!r}")
        return self


class CaptionTarget(_Model):
    """An audio-visual caption (VALOR-32K)."""

    kind: Literal["caption"] = "caption"
    caption: str = Field(min_length=1)

    @field_validator("caption")
    @classmethod
    def _clean(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v:
            raise ValueError("empty caption")
        if "<" in v and ">" in v:
            raise ValueError("a caption may not contain tags")
        return v


class MatchingTarget(_Model):
    """Which of two candidates matches the query (a2v: an audio and two videos; v2a: a video and two audios)."""

    kind: Literal["matching"] = "matching"
    direction: Literal["a2v", "v2a"]
    answer_index: Literal[0, 1]
    query_label: str
    candidate_labels: tuple[str, str]

    @model_validator(mode="after")
    def _valid(self) -> MatchingTarget:
        if self.candidate_labels[self.answer_index] != self.query_label:
            raise ValueError("the correct candidate must carry the query's label")
        if self.candidate_labels[1 - self.answer_index] == self.query_label:
            raise ValueError("the negative candidate must be of another class")
        return self


class ClassificationTarget(_Model):
    """One class (action or emotion): the canonical lower-case name, and the dataset's own spelling."""

    kind: Literal["classification"] = "classification"
    label: str
    original_label: str = ""

    @field_validator("label")
    @classmethod
    def _lower(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v or v != v.lower():
            raise ValueError(f"class name {v!r} must be non-empty canonical lower case")
        return v


Target = Annotated[
    SingleEventTarget
    | DenseEventsTarget
    | AVParsingTarget
    | OpenQATarget
    | MultipleChoiceTarget
    | SegmentationTarget
    | ReferringSegmentationTarget
    | GroundingTarget
    | CaptionTarget
    | MatchingTarget
    | ClassificationTarget,
    Field(discriminator="kind"),
]

TARGET_TYPES = {
    t.model_fields["kind"].default: t
    for t in (
        SingleEventTarget,
        DenseEventsTarget,
        AVParsingTarget,
        OpenQATarget,
        MultipleChoiceTarget,
        SegmentationTarget,
        ReferringSegmentationTarget,
        GroundingTarget,
        CaptionTarget,
        MatchingTarget,
        ClassificationTarget,
    )
}

# Which target kinds each family may carry.
FAMILY_KINDS: dict[TaskFamily, tuple[str, ...]] = {
    TaskFamily.event_localization: ("single_event", "dense_events", "av_parsing"),
    TaskFamily.question_answering: ("open_qa", "multiple_choice"),
    TaskFamily.segmentation: ("segmentation", "referring_segmentation", "grounding"),
    TaskFamily.captioning: ("caption",),
    TaskFamily.cross_modal_matching: ("matching",),
    TaskFamily.action_recognition: ("classification",),
    TaskFamily.emotion_recognition: ("classification",),
}


def target_labels(target: BaseModel) -> list[str]:
    """Every class label a target names (for class-list validation and label summaries)."""
    kind = getattr(target, "kind", "")
    if kind in ("single_event", "grounding", "classification"):
        return [target.label]  # type: ignore[attr-defined]
    if kind == "dense_events":
        return [e.label for e in target.events]  # type: ignore[attr-defined]
    if kind == "av_parsing":
        return sorted(set(target.audio) | set(target.visual))  # type: ignore[attr-defined]
    if kind == "open_qa":
        return [target.answer]  # type: ignore[attr-defined]
    if kind in ("segmentation", "referring_segmentation"):
        return [g.label for g in target.groups]  # type: ignore[attr-defined]
    if kind == "matching":
        return list(target.candidate_labels)  # type: ignore[attr-defined]
    return []
