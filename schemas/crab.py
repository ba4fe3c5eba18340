"""The Crab+ style of AV-UIE answers (`style="crab"`, the default): the answers Crab+'s own code builds and reads.

Sources, in GeWu-Lab/Crab_Plus (commit 7ddc56d): `dataset/qwen2_5_omni/omni_dataset.py` (`OmniTestDataset`, the
ground truth each test loader builds) and `seg/scripts/inference_3.py`, `inference_ref_3.py` (what the SAM2 step
reads from a prediction). Per kind (omni_dataset.py line numbers):

- matching (a2v, v2a): `<answer>1</answer>.` (1289-1295, 1341-1347);
- classification: `<answer>tap dancing</answer>` for ks and ucf (1392, 1435: the class in lower case), with a
  final `.` for the emotion tasks meld, cremad, mafw, dfew (1479, 1521, 1563, 1605) and mer24 (train only);
- open_qa, multiple_choice: `<answer>text</answer>` (the test ground truth is the bare answer, 1667, 1701);
- single_event (ave): `event:Church bell start_time:0 end_time:10` (1764);
- grounding (arig): `The sounding object is dog. Its coordinates are <obj>(x1,y1)(x2,y2)</obj>.` (1932);
- segmentation (s4, ms3): the test ground truth `The object making the sound in the video is dog.` (1853, 1898),
  then one box `[x1,y1,x2,y2]` and three points `[x,y]`: inference_3.py reads `\\[(\\d+),(\\d+)(?:,(\\d+),
  (\\d+))?\\]`, takes the first box and the last three points (39-55, 314-326) as one SAM2 prompt, so several
  sounding objects are given as one prompt: the box around all of them and points spread over them;
- referring_segmentation (ref_avs): `<answer>true</answer>` then the object, box and points as above, or
  `<answer>false</answer>` (inference_ref_3.py:39-43 requires these exact tags), as its instruction asks (942);
- dense_events (unav), av_parsing (avvp), caption (avcap): Crab+'s code takes these answers verbatim from its
  data files (670, 1807, 894) and fixes no format; unav repeats the ave form per event (`; ` between events),
  avvp keeps the tag form of `schemas/tags.py`, avcap `<answer>caption</answer>`.
"""

from __future__ import annotations

import re
from typing import Any

from . import tags
from .scan import AnswerParseError, cap_items, coords, elements, last_element, seconds
from .tags import canonical_label, fmt_time
from .targets import ObjectGroup

STYLE = "crab"
# Tasks whose Crab+ ground truth ends with a period after the tag (omni_dataset.py 1295, 1347, 1479, 1521,
# 1563, 1605; mer24 follows the other emotion tasks).
PERIOD_SOURCES = frozenset({"a2v", "v2a", "meld", "mer24", "cremad", "mafw", "dfew"})
SEG_LEAD = "The object making the sound in the video is"
REF_LEAD = "The referred object is"
GROUND_LEAD = "The sounding object is"
ABSENT = "The referred object is absent."

_NUM = r"(-?\d+(?:\.\d+)?)"
_ITEM = re.compile(
    rf"event\s{{0,20}}:\s{{0,20}}([^\n]{{1,300}}?)\s{{1,20}}start[_ ]time\s{{0,20}}:\s{{0,20}}{_NUM}"
    rf"\s{{1,20}}end[_ ]time\s{{0,20}}:\s{{0,20}}{_NUM}",
    re.IGNORECASE,
)
_BRACKET = re.compile(r"\[\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*(\d+)\s*,\s*(\d+)\s*)?\]")
_OBJ_BOX = re.compile(r"\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*(?:,\s*)?\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*")
_LABELS = {
    "segmentation": re.compile(
        r"making the sound in the video is\s{1,20}([^\n\[\]]{1,300}?)\.(?=\s|$)", re.I
    ),
    "referring_segmentation": re.compile(r"referred object is\s{1,20}([^\n\[\]]{1,300}?)\.(?=\s|$)", re.I),
    "grounding": re.compile(r"sounding object is\s{1,20}([^\n<]{1,300}?)\.(?=\s|<|$)", re.I),
}
_SEPARATORS = " \t\r\n;,."


def _union_box(groups: list[ObjectGroup]) -> list[int]:
    boxes = [g.box for g in groups]
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def prompt_points(groups: list[ObjectGroup]) -> list[tuple[int, int]]:
    """Three points for one SAM2 prompt over all groups: each object's first point in turn, then its second..."""
    k = len(groups)
    return [tuple(groups[i % k].points[i // k]) for i in range(3)]  # type: ignore[misc]


def render_prompt(groups: list[ObjectGroup]) -> str:
    """`Its bounding box is [x1,y1,x2,y2] and three points on it are [x,y],[x,y],[x,y].` over all groups."""
    box = ",".join(str(int(v)) for v in _union_box(groups))
    points = ",".join(f"[{int(x)},{int(y)}]" for x, y in prompt_points(groups))
    return f"Its bounding box is [{box}] and three points on it are {points}."


def object_names(groups: list[ObjectGroup]) -> str:
    """The sounding objects' classes as Crab+'s `a_obj` names them: joined by ', ' in group order."""
    return ", ".join(g.label for g in groups)


def render(target: Any, source: str | None = None) -> str:
    """Render a typed target in Crab+'s style (`source` decides the emotion tasks' final period)."""
    t, kind = target, target.kind
    if kind == "single_event":
        return f"event:{t.label} start_time:{t.start} end_time:{t.end}"
    if kind == "dense_events":
        return "; ".join(
            f"event:{e.label} start_time:{fmt_time(e.start)} end_time:{fmt_time(e.end)}" for e in t.events
        )
    if kind == "av_parsing":
        return tags.render_av_parsing(t)
    if kind in tags.ANSWER_FIELD:
        period = "." if kind == "classification" and source in PERIOD_SOURCES else ""
        return f"<answer>{getattr(t, tags.ANSWER_FIELD[kind])}</answer>{period}"
    if kind == "multiple_choice":
        return f"<answer>{t.options[t.answer_index]}</answer>"
    if kind == "matching":
        return f"<answer>{t.answer_index + 1}</answer>."
    if kind == "grounding":
        x1, y1, x2, y2 = (int(v) for v in t.box)
        return f"{GROUND_LEAD} {t.label}. Its coordinates are <obj>({x1},{y1})({x2},{y2})</obj>."
    if kind == "segmentation":
        return f"{SEG_LEAD} {object_names(t.groups)}. {render_prompt(t.groups)}"
    if kind == "referring_segmentation":
        if not t.present:
            return f"<answer>false</answer> {ABSENT}"
        return f"<answer>true</answer> {REF_LEAD} {object_names(t.groups)}. {render_prompt(t.groups)}"
    raise ValueError(f"unknown target kind {kind!r}")


# ---------------------------------------------------------------------------------------------- reading


def _items(text: str) -> list[re.Match]:
    return cap_items(list(_ITEM.finditer(text)), "events")


def _last_run(matches: list[re.Match], text: str) -> list[re.Match]:
    run: list[re.Match] = []
    for m in matches:
        if run and all(ch in _SEPARATORS for ch in text[run[-1].end() : m.start()]):
            run.append(m)
        else:
            run = [m]
    return run


def _coordinate_obj(text: str) -> tuple[int, re.Match] | None:
    for el in reversed(elements(text, ("obj",))):
        m = _OBJ_BOX.fullmatch(text, el.inner_start, el.inner_end)
        if m:
            return el.start, m
    return None


def _lead_before(text: str, lead: str, end: int) -> int | None:
    at = text.lower().rfind(lead.lower(), 0, end)
    return at if at >= 0 else None


def locate(text: str, kind: str) -> int | None:
    """Where the final answer of a `kind` target starts in `text` in Crab+'s style (None: no such answer)."""
    if kind == "single_event":
        found = _items(text)
        return found[-1].start() if found else None
    if kind == "dense_events":
        found = _items(text)
        return _last_run(found, text)[0].start() if found else None
    if kind == "av_parsing":
        return tags.locate(text, kind)
    if kind == "grounding":
        obj = _coordinate_obj(text)
        if obj is None:
            return None
        lead = _lead_before(text, GROUND_LEAD, obj[0])
        return lead if lead is not None and obj[0] - lead < 400 else obj[0]
    if kind == "segmentation":  # an answer without the sentence is read from the whole text (`fields`)
        return _lead_before(text, SEG_LEAD, len(text))
    found = elements(text, ("answer",))
    if not found:
        return None
    if kind == "referring_segmentation" and elements(text[found[-1].end :], ("obj", "box")):
        return None  # a tag-style object group follows: not this style
    return found[-1].start


def _label(text: str, kind: str, source: str | None) -> str:
    found = list(_LABELS[kind].finditer(text))
    return canonical_label(source, found[-1].group(1), "object class") if found else ""


def parse_prompt(text: str, kind: str, like_groups: list[ObjectGroup], source: str | None) -> list[dict]:
    """One object group from Crab+'s SAM2 reading: the first box and the last three points of the text."""
    box, points = None, []
    for m in _BRACKET.finditer(text):
        if m.group(3) is not None:
            box = box or coords(" ".join(m.groups()), 4, "box")
        else:
            points.append(m)
            points = points[-3:]
    if box is None and len(points) < 3:
        raise AnswerParseError("no [x1,y1,x2,y2] box and no three [x,y] points in the answer")
    mask = like_groups[0].mask if like_groups else "mask_0.png"
    pts = [coords(f"{m.group(1)} {m.group(2)}", 2, "point") for m in points]
    return [{"label": _label(text, kind, source), "box": box, "points": pts, "mask": mask}]


def _event(m: re.Match, source: str | None) -> dict[str, Any]:
    start, end = seconds(m.group(2), "start_time"), seconds(m.group(3), "end_time")
    return {"label": canonical_label(source, m.group(1), "event"), "start": start, "end": end}


def fields(text: str, like: Any, source: str | None = None) -> dict[str, Any]:
    """Read the fields of a `like.kind` target from a Crab+-style answer; raises AnswerParseError."""
    kind = like.kind
    if kind == "single_event":
        found = _items(text)
        if not found:
            raise AnswerParseError("no event:.. start_time:.. end_time:.. in the response")
        e = _event(found[-1], source)
        return {"label": e["label"], "start": int(round(e["start"])), "end": int(round(e["end"]))}
    if kind == "dense_events":
        found = _items(text)
        if not found:
            raise AnswerParseError("no event:.. start_time:.. end_time:.. in the response")
        events = [_event(m, source) for m in _last_run(found, text)]
        return {"events": sorted(events, key=lambda e: (e["start"], e["end"], e["label"]))}
    if kind == "av_parsing":
        return tags.parse_av_parsing(text, source)
    if kind == "grounding":
        obj = _coordinate_obj(text)
        if obj is None:
            raise AnswerParseError("no <obj>(x1,y1)(x2,y2)</obj> in the response")
        box = coords(" ".join(obj[1].groups()), 4, "box")
        return {"label": _label(text[: obj[0]], kind, source), "box": box}
    if kind == "segmentation":
        return {"groups": parse_prompt(text, kind, like.groups, source)}
    answer = last_element(text, "answer")
    if kind == "referring_segmentation":
        present = tags.parse_present(answer.content(text))
        rest = text[answer.end :]
        return {
            "present": present,
            "groups": parse_prompt(rest, kind, like.groups, source) if present else [],
        }
    found = tags.answer_fields(kind, answer.content(text), like, source)
    if found is None:
        raise AnswerParseError(f"unknown target kind {kind!r}")
    return found


__all__ = ["STYLE", "PERIOD_SOURCES", "fields", "locate", "object_names", "prompt_points", "render"]
