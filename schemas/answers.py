"""The one home of AV-UIE answer wordings: one typed target, several renderings, one parser for all of them.

Styles (`STYLES`): `crab` (the default: the answers Crab+'s own code builds and reads, `schemas/crab.py`) and
`tags` (every field in its own tag, `schemas/tags.py`). `render_answer(target, style, source)` writes one;
`parse_answer(text, like=target)` reads either (the style whose final answer comes last in the text, unless
`style` is given) back into a target of the same kind: `render_answer(parse_answer(render_answer(t, s), like=t),
s) == render_answer(t, s)` for every target and style (`parse(render(t)) == t` itself for the tag style).

"Nothing found" (`NOTHING_ANSWER`, `<answer>none</answer>`) is read for the kinds whose reference metric scores
an empty prediction (`NOTHING_KINDS`: AVVP, UnAV, AVSBench masks; Ref-AVS says `<answer>false</answer>`), and an
AVVP modality tag holding `none` (or nothing) is an empty modality. Such a target is built without validation
(ground truth never is empty). Reading is linear-time and size-capped (`schemas/scan.py`); every failure is an
`AnswerParseError`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from . import crab, tags
from .scan import AnswerParseError, check_text, elements, runs
from .targets import TARGET_TYPES, Event, ObjectGroup

STYLES = ("crab", "tags")
DEFAULT_STYLE = "crab"
_STYLE_MODULES = {"crab": crab, "tags": tags}
NOTHING_KINDS = ("av_parsing", "dense_events", "segmentation")
NOTHING_ANSWER = "<answer>none</answer>"
_NOTHING_WORDS = ("none", "nothing")
_EMPTY = {
    "av_parsing": {"audio": {}, "visual": {}},
    "dense_events": {"events": []},
    "segmentation": {"groups": []},
}


def _module(style: str) -> Any:
    if style not in _STYLE_MODULES:
        raise ValueError(f"unknown answer style {style!r}; choose one of {', '.join(STYLES)}")
    return _STYLE_MODULES[style]


def render_answer(target: BaseModel, style: str = DEFAULT_STYLE, source: str | None = None) -> str:
    """The final answer of a typed target in a style (`source`: the task, where a style depends on it)."""
    return _module(style).render(target, source)


def renderings(target: BaseModel, source: str | None = None) -> dict[str, str]:
    """{style: the target's answer in that style} for every style."""
    return {style: render_answer(target, style, source) for style in STYLES}


def answer_style(answer: str, target: BaseModel, source: str | None = None) -> str | None:
    """The style whose rendering of `target` is exactly `answer` (the default first), or None."""
    for style, text in renderings(target, source).items():
        if text == answer:
            return style
    return None


def locate_answer(text: str, kind: str, style: str | None = None) -> tuple[str, int] | None:
    """(style, start) of the final answer of a `kind` target in `text`: the given style, or the one whose answer
    starts last (the default on a tie); None when no style finds one."""
    check_text(text)
    best: tuple[str, int] | None = None
    for name in (style,) if style else STYLES:
        start = _module(name).locate(text, kind)
        if start is not None and (best is None or start > best[1]):
            best = (name, start)
    return best


def split_reply(text: str, kind: str, style: str | None = None) -> tuple[str, str]:
    """(reasoning, final answer) of a reply: the answer is everything from where its final answer starts (or,
    when no style finds a complete one, from its last run of answer tags); ("reply", "") when there is none."""
    found = locate_answer(text, kind, style)
    if found is not None:
        start: int | None = found[1]
    else:  # no complete answer: the last run of answer tags, if any, is what the reply offers as one
        tagged = runs(elements(text), text, " \t\r\n,;.")
        start = tagged[-1][0].start if tagged else None
    if start is None:
        return text.strip(), ""
    return text[:start].strip(), text[start:].strip()


def _nothing_at(text: str, kind: str) -> int | None:
    if kind not in NOTHING_KINDS:
        return None
    found = [e for e in elements(text, ("answer",)) if e.content(text).lower().strip(" .") in _NOTHING_WORDS]
    return found[-1].start if found else None


def _fields(text: str, like: Any, source: str | None, style: str | None) -> tuple[dict[str, Any], bool]:
    found = locate_answer(text, like.kind, style)
    nothing = _nothing_at(text, like.kind)
    if nothing is not None and (found is None or nothing >= found[1]):
        return dict(_EMPTY[like.kind]), True
    first = found[0] if found else (style or DEFAULT_STYLE)
    errors = []
    for name in dict.fromkeys([first, *([] if style else STYLES)]):  # the located style first
        start = found[1] if found and name == found[0] else (_module(name).locate(text, like.kind) or 0)
        try:
            out = _module(name).fields(text[start:], like, source)
        except AnswerParseError as exc:
            errors.append(exc)
            continue
        empty = like.kind == "av_parsing" and not out["audio"] and not out["visual"]
        return out, empty
    raise errors[0]


def _construct(cls: type[BaseModel], data: dict[str, Any]) -> Any:
    """A target built without validation, its object groups and events as (unvalidated) models too."""
    for key, item in (("groups", ObjectGroup), ("events", Event)):
        if isinstance(data.get(key), list):
            data[key] = [item.model_construct(**v) if isinstance(v, dict) else v for v in data[key]]
    return cls.model_construct(**data)


def parse_answer(
    text: str, like: BaseModel, *, source: str | None = None, validate: bool = True, style: str | None = None
) -> Any:
    """Parse a response's final answer into a target of the same kind as `like`.

    `like` gives the fields an answer does not carry (and, for matching/choices, how to read the answer);
    `source` maps labels to the source's canonical spelling; `style` limits reading to one style (default:
    any). With `validate=False` the target is built without validation (for scoring predictions that break a
    constraint); a "nothing found" answer is always built so. Raises AnswerParseError, and nothing else.
    """
    check_text(text)
    kind = like.kind  # type: ignore[attr-defined]
    fields, nothing = _fields(text, like, source, style)
    data = like.model_dump()
    data.update(fields)
    cls = TARGET_TYPES[kind]
    if not validate or nothing:
        return _construct(cls, data)
    try:
        return cls.model_validate(data)
    except (ValidationError, ValueError, TypeError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise AnswerParseError(f"the answer breaks the target's constraints: {first}") from exc


def same_answer(text: str, target: BaseModel, source: str | None = None, style: str = DEFAULT_STYLE) -> bool:
    """Whether `text`'s final answer (in any style) says what the target's answer in `style` says: both render
    to the same text in that style (so UnAV times compare at the answer's one decimal).

    False for a readable answer that differs; AnswerParseError for an unreadable one.
    """
    parsed = parse_answer(text, like=target, source=source, validate=False)
    try:
        return render_answer(parsed, style, source) == render_answer(target, style, source)
    except (ValueError, TypeError, AttributeError, IndexError):  # e.g. "nothing found", a box missing
        return False
