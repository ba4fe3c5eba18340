"""The tag style of AV-UIE answers (`style="tags"`): every field in its own tag.

`<event>Church bell</event> <range>0,10</range>`, `<audio_event>Speech,(0 3),(5 10)</audio_event>`,
`<answer>video 2</answer>`, `<obj>dog</obj> <box>[x1,y1,x2,y2]</box> <points>[x,y],[x,y],[x,y]</points>` per
sounding object. It says every field of a target, so `parse(render(t)) == t` (times at one decimal). The Crab+
style (`schemas/crab.py`) is the default; this one stays for builds and models made with it and for
multi-object segmentation, which the Crab+ style folds into one prompt. `locate` finds where a text's final
answer of this style starts; `fields` reads a target's fields from that answer. Reading is linear-time and
hostile-input safe (`schemas/scan.py`).
"""

from __future__ import annotations

import re
from typing import Any

from .scan import (
    NUMBER,
    TAG_NAMES,
    AnswerParseError,
    Element,
    cap_items,
    coords,
    elements,
    label,
    last_element,
    runs,
    seconds,
    short,
)
from .targets import ObjectGroup
from .vocab import canonical

STYLE = "tags"
SEPARATORS = " \t\r\n,;."
# The tags that make up each kind's final answer (the run of elements the answer is).
ANSWER_TAGS = {
    "single_event": ("event", "range"),
    "dense_events": ("event", "range"),
    "av_parsing": ("audio_event", "visual_event"),
    "grounding": ("obj", "box"),
    "segmentation": ("obj", "box", "points"),
    "referring_segmentation": ("answer", "obj", "box", "points"),
}
# The tag a run of elements must hold to be an answer of the kind (an `<obj>` alone is no grounding answer).
REQUIRED_TAG = {
    "single_event": "range",
    "dense_events": "range",
    "grounding": "box",
    "segmentation": "box",
    "referring_segmentation": "answer",
}
_SEGMENT = re.compile(r"\(\s*(-?\d+(?:\.\d+)?)\s+(-?\d+(?:\.\d+)?)\s*\)")
_POINT = re.compile(r"\[\s*(-?\d+)\s*,\s*(-?\d+)\s*\]")
NONE_WORDS = ("none", "nothing", "")
# Kinds whose answer is one `<answer>` tag holding this field of the target.
ANSWER_FIELD = {"open_qa": "answer", "classification": "label", "caption": "caption"}


def fmt_time(x: float) -> str:
    """A time with at most one decimal (for display): 3.0 -> '3', 1.25 -> '1.2'."""
    v = round(float(x), 1)
    return str(int(v)) if v == int(v) else f"{v:.1f}"


def _box(b: Any) -> str:
    return "[" + ",".join(str(int(v)) for v in b) + "]"


def render_groups(groups: list[ObjectGroup]) -> str:
    """`<obj>..</obj> <box>..</box> <points>..</points>` for every object group."""
    parts = []
    for g in groups:
        pts = ",".join(f"[{int(x)},{int(y)}]" for x, y in g.points)
        parts.append(f"<obj>{g.label}</obj> <box>{_box(g.box)}</box> <points>{pts}</points>")
    return " ".join(parts)


def _segs(name: str, segs: list[tuple[int, int]]) -> str:
    return name + "," + ",".join(f"({s} {e})" for s, e in segs)


def render_av_parsing(t: Any) -> str:
    """One `<audio_event>` per audible class and one `<visual_event>` per visible class, by first start."""
    order = lambda d: sorted(d.items(), key=lambda kv: (kv[1][0][0], kv[0]))  # noqa: E731
    audio = [f"<audio_event>{_segs(k, v)}</audio_event>" for k, v in order(t.audio)]
    visual = [f"<visual_event>{_segs(k, v)}</visual_event>" for k, v in order(t.visual)]
    return " ".join(audio + visual)


def render(target: Any, source: str | None = None) -> str:
    """Render a typed target in the tag style."""
    t, kind = target, target.kind
    if kind == "single_event":
        return f"<event>{t.label}</event> <range>{t.start},{t.end}</range>"
    if kind == "dense_events":
        return " ".join(
            f"<event>{e.label}</event> <range>{fmt_time(e.start)},{fmt_time(e.end)}</range>" for e in t.events
        )
    if kind == "av_parsing":
        return render_av_parsing(t)
    if kind in ANSWER_FIELD:
        return f"<answer>{getattr(t, ANSWER_FIELD[kind])}</answer>"
    if kind == "multiple_choice":
        return f"<answer>{t.options[t.answer_index]}</answer>"
    if kind == "matching":
        noun = "video" if t.direction == "a2v" else "audio"
        return f"<answer>{noun} {t.answer_index + 1}</answer>"
    if kind == "grounding":
        return f"<obj>{t.label}</obj> <box>{_box(t.box)}</box>"
    if kind == "segmentation":
        return render_groups(t.groups)
    if kind == "referring_segmentation":
        return "<answer>true</answer> " + render_groups(t.groups) if t.present else "<answer>false</answer>"
    raise ValueError(f"unknown target kind {kind!r}")


# ---------------------------------------------------------------------------------------------- reading


def canonical_label(source: str | None, raw: str, what: str = "label") -> str:
    """A bounded label in the source's canonical spelling when it names one of its classes, else as written."""
    text = label(raw, what)
    if source is None:
        return text
    try:
        return canonical(source, text)
    except ValueError:
        return text


def locate(text: str, kind: str) -> int | None:
    """Where the final answer of a `kind` target starts in `text` in this style (None: no such answer)."""
    if kind not in ANSWER_TAGS:
        found = elements(text, ("answer",))
        return found[-1].start if found else None
    needed = REQUIRED_TAG.get(kind)
    found = [
        run
        for run in runs(elements(text, ANSWER_TAGS[kind]), text, SEPARATORS)
        if needed is None or any(e.name == needed for e in run)
    ]
    return found[-1][0].start if found else None


def _points(text: str) -> list[list[int]]:
    pts = cap_items(_POINT.findall(text), "points")
    return [coords(f"{x} {y}", 2, "point") for x, y in pts]


def _adjacent(text: str, a: Element, b: Element, name: str) -> bool:
    return b.name == name and not text[a.end : b.start].strip()


def parse_groups(text: str, like_groups: list[ObjectGroup], source: str | None) -> list[dict[str, Any]]:
    """Every `<obj>..</obj> <box>..</box> [<points>..</points>]` group of a text, in order."""
    els = elements(text, ("obj", "box", "points"))
    groups: list[dict[str, Any]] = []
    i = 0
    while i < len(els):
        if els[i].name != "obj" or i + 1 >= len(els) or not _adjacent(text, els[i], els[i + 1], "box"):
            i += 1
            continue
        obj, box, j = els[i], els[i + 1], i + 2
        points: list[list[int]] = []
        if j < len(els) and _adjacent(text, box, els[j], "points"):
            points, j = _points(els[j].content(text)), j + 1
        n = len(groups)
        groups.append(
            {
                "label": canonical_label(source, obj.content(text), "object class"),
                "box": coords(box.content(text), 4, "box"),
                "points": points,
                "mask": like_groups[n].mask if n < len(like_groups) else f"mask_{n}.png",
            }
        )
        cap_items(groups, "objects")
        i = j
    if not groups:
        raise AnswerParseError("no <obj>..</obj> <box>..</box> group in the response")
    return groups


def _range(text: str, what: str = "range") -> tuple[float, float]:
    tokens = NUMBER.findall(text)
    if len(tokens) != 2:
        raise AnswerParseError(f"{what} {short(text)!r} needs two numbers")
    return seconds(tokens[0], what), seconds(tokens[1], what)


def _dense(text: str, source: str | None) -> dict[str, Any]:
    els = elements(text, ("event", "range"))
    events = []
    for a, b in zip(els, els[1:], strict=False):
        if a.name == "event" and _adjacent(text, a, b, "range"):
            start, end = _range(b.content(text))
            events.append(
                {"label": canonical_label(source, a.content(text), "event"), "start": start, "end": end}
            )
            cap_items(events, "events")
    if not events:
        raise AnswerParseError("no <event>..</event> <range>..</range> pair in the response")
    events.sort(key=lambda e: (e["start"], e["end"], e["label"]))
    return {"events": events}


def parse_av_parsing(text: str, source: str | None) -> dict[str, Any]:
    """Audio and visual events from `<audio_event>`/`<visual_event>` tags; `none` or an empty tag adds nothing."""
    out: dict[str, Any] = {"audio": {}, "visual": {}}
    found = elements(text, ("audio_event", "visual_event"))
    if not found:
        raise AnswerParseError("no <audio_event> or <visual_event> tag in the response")
    for el in cap_items(found, "event tags"):
        content = el.content(text)
        if content.lower().strip(" .") in NONE_WORDS:
            continue
        name, _, rest = content.partition(",")
        segs = cap_items(_SEGMENT.findall(rest), "segments")
        if not name.strip() or not segs:
            raise AnswerParseError(f"unreadable {el.name} {short(content)!r}")
        spans = [tuple(int(round(seconds(v, "segment"))) for v in pair) for pair in segs]
        modality = out["audio" if el.name == "audio_event" else "visual"]
        key = canonical_label(source, name, "event")
        modality[key] = sorted(set(modality.get(key, [])) | set(spans))
    return out


def parse_choice(answer: str, options: list[str]) -> int:
    """The index of a multiple-choice answer: the option's text, its number (1-4) or letter (a-d)."""
    answer = answer.lower().rstrip(".")
    options = [" ".join(o.split()).lower() for o in options]
    if answer in options:
        return options.index(answer)
    m = re.fullmatch(r"(?:option\s*)?([1-9]|[a-d])", answer)
    if m:
        v = m.group(1)
        idx = int(v) - 1 if v.isdigit() else "abcd".index(v)
        if idx < len(options):
            return idx
    raise AnswerParseError(f"answer {short(answer)!r} is none of the options")


def parse_matching(answer: str, direction: str) -> int:
    """The candidate index of a matching answer: `video 2`, `2` or `two` (a2v), `audio 1`, `1`... (v2a)."""
    noun = "video" if direction == "a2v" else "audio"
    m = re.fullmatch(rf"(?:{noun}\s*)?(1|2|one|two)\.?", answer.lower().strip())
    if not m:
        raise AnswerParseError(f"answer {short(answer)!r} is not {noun} 1 or {noun} 2")
    return 0 if m.group(1) in ("1", "one") else 1


def parse_present(answer: str) -> bool:
    """true/yes or false/no of a referring answer."""
    word = answer.lower().strip(" .")
    if word not in ("true", "false", "yes", "no"):
        raise AnswerParseError(f"answer {short(answer)!r} is not true or false")
    return word in ("true", "yes")


def answer_fields(kind: str, answer: str, like: Any, source: str | None) -> dict[str, Any] | None:
    """Fields of the kinds whose whole answer is one `<answer>` tag's content (None for other kinds)."""
    if kind == "open_qa":
        return {"answer": canonical_label(source, answer.lower(), "answer")}
    if kind == "multiple_choice":
        return {"answer_index": parse_choice(label(answer, "answer"), like.options)}
    if kind == "classification":
        return {"label": canonical_label(source, answer, "class").lower()}
    if kind == "caption":
        if len(answer) > 20 * 300:
            raise AnswerParseError("the caption is too long")
        return {"caption": answer}
    if kind == "matching":
        return {"answer_index": parse_matching(label(answer, "answer"), like.direction)}
    return None


def fields(text: str, like: Any, source: str | None = None) -> dict[str, Any]:
    """Read the fields of a `like.kind` target from a tag-style answer; raises AnswerParseError."""
    kind = like.kind
    if kind not in ANSWER_TAGS:
        found = answer_fields(kind, last_element(text, "answer").content(text), like, source)
        if found is None:
            raise AnswerParseError(f"unknown target kind {kind!r}")
        return found
    if kind == "single_event":
        start, end = _range(last_element(text, "range").content(text))
        name = canonical_label(source, last_element(text, "event").content(text), "event")
        return {"label": name, "start": int(round(start)), "end": int(round(end))}
    if kind == "dense_events":
        return _dense(text, source)
    if kind == "av_parsing":
        return parse_av_parsing(text, source)
    if kind == "grounding":
        box = coords(last_element(text, "box").content(text), 4, "box")
        return {"label": canonical_label(source, last_element(text, "obj").content(text)), "box": box}
    if kind == "segmentation":
        return {"groups": parse_groups(text, like.groups, source)}
    present = parse_present(last_element(text, "answer").content(text))
    return {"present": present, "groups": parse_groups(text, like.groups, source) if present else []}


__all__ = ["STYLE", "TAG_NAMES", "fields", "fmt_time", "locate", "render"]
