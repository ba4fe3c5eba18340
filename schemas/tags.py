"""The one tag renderer and the one tag parser of AV-UIE answers.

`render_answer(target)` writes the tagged final answer of INTERFACE.md; `parse_answer(text, like=target)` reads it
back: `parse_answer(render_answer(t), like=t) == t` for every target. `like` supplies what an answer does not say
(clip duration, question, options, original label, mask file names). Parsing is tolerant of spaces and case inside
tags (`< Answer > Bark </answer>`); single-answer tags take the last occurrence, so reasoning before the answer
does not confuse it. Anything unreadable raises `AnswerParseError`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from .targets import (
    TARGET_TYPES,
    AVParsingTarget,
    CaptionTarget,
    ClassificationTarget,
    DenseEventsTarget,
    GroundingTarget,
    MatchingTarget,
    MultipleChoiceTarget,
    ObjectGroup,
    OpenQATarget,
    ReferringSegmentationTarget,
    SegmentationTarget,
    SingleEventTarget,
)
from .vocab import canonical

TAG_NAMES = ("event", "range", "audio_event", "visual_event", "answer", "obj", "box", "points")


class AnswerParseError(ValueError):
    """A response has no readable tagged answer of the expected kind."""


def fmt_time(x: float) -> str:
    """A time with at most one decimal: 3.0 -> '3', 1.25 -> '1.2'."""
    v = round(float(x), 1)
    return str(int(v)) if v == int(v) else f"{v:.1f}"


def _box(b: Any) -> str:
    return "[" + ",".join(str(int(v)) for v in b) + "]"


def _groups(groups: list[ObjectGroup]) -> str:
    parts = []
    for g in groups:
        pts = ",".join(f"[{int(x)},{int(y)}]" for x, y in g.points)
        parts.append(f"<obj>{g.label}</obj> <box>{_box(g.box)}</box> <points>{pts}</points>")
    return " ".join(parts)


def _segs(label: str, segs: list[tuple[int, int]]) -> str:
    return label + "," + ",".join(f"({s} {e})" for s, e in segs)


def render_answer(target: BaseModel) -> str:
    """Render a typed target as its tagged final answer (INTERFACE.md)."""
    t: Any = target
    kind = t.kind
    if kind == "single_event":
        return f"<event>{t.label}</event> <range>{t.start},{t.end}</range>"
    if kind == "dense_events":
        return " ".join(
            f"<event>{e.label}</event> <range>{fmt_time(e.start)},{fmt_time(e.end)}</range>" for e in t.events
        )
    if kind == "av_parsing":
        order = lambda d: sorted(d.items(), key=lambda kv: (kv[1][0][0], kv[0]))  # noqa: E731
        audio = [f"<audio_event>{_segs(k, v)}</audio_event>" for k, v in order(t.audio)]
        visual = [f"<visual_event>{_segs(k, v)}</visual_event>" for k, v in order(t.visual)]
        return " ".join(audio + visual)
    if kind == "open_qa":
        return f"<answer>{t.answer}</answer>"
    if kind == "multiple_choice":
        return f"<answer>{t.options[t.answer_index]}</answer>"
    if kind == "classification":
        return f"<answer>{t.label}</answer>"
    if kind == "caption":
        return f"<answer>{t.caption}</answer>"
    if kind == "matching":
        noun = "video" if t.direction == "a2v" else "audio"
        return f"<answer>{noun} {t.answer_index + 1}</answer>"
    if kind == "grounding":
        return f"<obj>{t.label}</obj> <box>{_box(t.box)}</box>"
    if kind == "segmentation":
        return _groups(t.groups)
    if kind == "referring_segmentation":
        if not t.present:
            return "<answer>false</answer>"
        return "<answer>true</answer> " + _groups(t.groups)
    raise ValueError(f"unknown target kind {kind!r}")


def find_tags(text: str, name: str) -> list[str]:
    """Every `<name> ... </name>` content in text (stripped), tolerant of spaces and case inside the tags."""
    pattern = rf"<\s*{name}\s*>(.*?)<\s*/\s*{name}\s*>"
    return [" ".join(m.split()) for m in re.findall(pattern, text, flags=re.IGNORECASE | re.DOTALL)]


def _last(text: str, name: str) -> str:
    found = find_tags(text, name)
    if not found:
        raise AnswerParseError(f"no <{name}> tag in the response")
    return found[-1]


_INT = r"-?\d+"
_NUM = r"-?\d+(?:\.\d+)?"


def _ints(text: str, n: int, what: str) -> list[int]:
    vals = re.findall(_NUM, text)
    if len(vals) != n:
        raise AnswerParseError(f"{what}: expected {n} numbers in {text!r}")
    return [int(round(float(v))) for v in vals]


def _label(source: str | None, raw: str) -> str:
    if source is None:
        return raw
    try:
        return canonical(source, raw)
    except ValueError:
        return raw


def _parse_groups(text: str, like_groups: list[ObjectGroup], source: str | None) -> list[dict[str, Any]]:
    # Each group is <obj>..</obj> <box>..</box> <points>..</points>; take them in order.
    pattern = (
        r"<\s*obj\s*>(.*?)<\s*/\s*obj\s*>\s*<\s*box\s*>(.*?)<\s*/\s*box\s*>"
        r"(?:\s*<\s*points\s*>(.*?)<\s*/\s*points\s*>)?"
    )
    groups = []
    for i, (obj, box, points) in enumerate(re.findall(pattern, text, flags=re.IGNORECASE | re.DOTALL)):
        pts = re.findall(rf"\[\s*({_INT})\s*,\s*({_INT})\s*\]", points or "")
        mask = like_groups[i].mask if i < len(like_groups) else f"mask_{i}.png"
        groups.append(
            {
                "label": _label(source, " ".join(obj.split())),
                "box": _ints(box, 4, "box"),
                "points": [[int(x), int(y)] for x, y in pts],
                "mask": mask,
            }
        )
    if not groups:
        raise AnswerParseError("no <obj>..</obj> <box>..</box> group in the response")
    return groups


def _parse_fields(text: str, like: Any, source: str | None) -> dict[str, Any]:
    kind = like.kind
    if kind == "single_event":
        start, end = _ints(_last(text, "range"), 2, "range")
        return {"label": _label(source, _last(text, "event")), "start": start, "end": end}
    if kind == "dense_events":
        pairs = re.findall(
            r"<\s*event\s*>(.*?)<\s*/\s*event\s*>\s*<\s*range\s*>(.*?)<\s*/\s*range\s*>",
            text,
            flags=re.IGNORECASE | re.DOTALL,
        )
        if not pairs:
            raise AnswerParseError("no <event>..</event> <range>..</range> pair in the response")
        events = []
        for label, rng in pairs:
            vals = re.findall(_NUM, rng)
            if len(vals) != 2:
                raise AnswerParseError(f"range {rng!r} needs two numbers")
            events.append(
                {
                    "label": _label(source, " ".join(label.split())),
                    "start": float(vals[0]),
                    "end": float(vals[1]),
                }
            )
        events.sort(key=lambda e: (e["start"], e["end"], e["label"]))
        return {"events": events}
    if kind == "av_parsing":
        out: dict[str, Any] = {"audio": {}, "visual": {}}
        for modality in ("audio", "visual"):
            for content in find_tags(text, f"{modality}_event"):
                label, _, rest = content.partition(",")
                segs = [(int(s), int(e)) for s, e in re.findall(rf"\(\s*({_INT})\s+({_INT})\s*\)", rest)]
                if not label.strip() or not segs:
                    raise AnswerParseError(f"unreadable {modality} event {content!r}")
                out[modality][_label(source, label.strip())] = sorted(segs)
        if not out["audio"] and not out["visual"]:
            raise AnswerParseError("no <audio_event> or <visual_event> tag in the response")
        return out
    if kind == "open_qa":
        return {"answer": _label(source, _last(text, "answer").lower())}
    if kind == "multiple_choice":
        answer = _last(text, "answer").lower().rstrip(".")
        options = [" ".join(o.split()).lower() for o in like.options]
        if answer in options:
            return {"answer_index": options.index(answer)}
        m = re.fullmatch(r"(?:option\s*)?([1-9]|[a-d])", answer)
        if m:
            v = m.group(1)
            idx = int(v) - 1 if v.isdigit() else "abcd".index(v)
            if idx < len(options):
                return {"answer_index": idx}
        raise AnswerParseError(f"answer {answer!r} is none of the options")
    if kind == "classification":
        return {"label": _label(source, _last(text, "answer")).lower()}
    if kind == "caption":
        return {"caption": _last(text, "answer")}
    if kind == "matching":
        noun = "video" if like.direction == "a2v" else "audio"
        answer = _last(text, "answer").lower()
        m = re.fullmatch(rf"(?:{noun}\s*)?([12])", answer)
        if not m:
            raise AnswerParseError(f"answer {answer!r} is not '{noun} 1' or '{noun} 2'")
        return {"answer_index": int(m.group(1)) - 1}
    if kind == "grounding":
        return {"label": _label(source, _last(text, "obj")), "box": _ints(_last(text, "box"), 4, "box")}
    if kind == "segmentation":
        return {"groups": _parse_groups(text, like.groups, source)}
    if kind == "referring_segmentation":
        answer = _last(text, "answer").lower()
        if answer not in ("true", "false", "yes", "no"):
            raise AnswerParseError(f"answer {answer!r} is not true or false")
        present = answer in ("true", "yes")
        groups = _parse_groups(text, like.groups, source) if present else []
        return {"present": present, "groups": groups}
    raise AnswerParseError(f"unknown target kind {kind!r}")


def parse_answer(text: str, like: BaseModel, *, source: str | None = None, validate: bool = True) -> Any:
    """Parse a response's tagged answer into a target of the same kind as `like`.

    `like` gives the fields an answer does not carry (and, for matching/choices, how to read the answer);
    `source` maps labels to the source's canonical spelling. With `validate=False` the target is built
    without validation (for scoring predictions that break a constraint). Raises AnswerParseError.
    """
    if not isinstance(text, str):
        raise AnswerParseError("the response is not text")
    fields = _parse_fields(text, like, source)
    data = like.model_dump()
    data.update(fields)
    cls = TARGET_TYPES[like.kind]  # type: ignore[attr-defined]
    if not validate:
        return cls.model_construct(**data)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise AnswerParseError(
            f"the answer breaks the target's constraints: {exc.errors()[0]['msg']}"
        ) from exc


__all__ = [
    "AnswerParseError",
    "AVParsingTarget",
    "CaptionTarget",
    "ClassificationTarget",
    "DenseEventsTarget",
    "GroundingTarget",
    "MatchingTarget",
    "MultipleChoiceTarget",
    "OpenQATarget",
    "ReferringSegmentationTarget",
    "SegmentationTarget",
    "SingleEventTarget",
    "TAG_NAMES",
    "find_tags",
    "fmt_time",
    "parse_answer",
    "render_answer",
]
