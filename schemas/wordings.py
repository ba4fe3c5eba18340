"""Wordings around the answer: the lead-in before it, the format an instruction asks for, worked examples.

Everyone who spells an answer (instructions, reasoning templates and prompts, the tokenizer corpus, docs) takes
it from here or from `schemas/answers.py`, so that a change of style changes every place at once.
"""

from __future__ import annotations

from typing import Any

from .answers import DEFAULT_STYLE, NOTHING_ANSWER, render_answer
from .targets import TARGET_TYPES

LEAD = "So the answer is"
# Crab+-style answers that are whole sentences follow the reasoning without a lead-in.
_SENTENCE_ANSWERS = {("crab", "grounding"), ("crab", "segmentation")}

_BOX = "[x1,y1,x2,y2]"
_POINTS = "[x,y],[x,y],[x,y]"
_FORMATS: dict[str, dict[str, str]] = {
    "crab": {
        "single_event": "event:CLASS start_time:START end_time:END (whole seconds)",
        "dense_events": "event:CLASS start_time:START end_time:END; event:CLASS start_time:START "
        "end_time:END; ... (one item per event, seconds with at most one decimal)",
        "open_qa": "<answer>WORD</answer>",
        "multiple_choice": "<answer>OPTION</answer> (the chosen option's text)",
        "classification": "<answer>CLASS</answer>{period}",
        "caption": "<answer>CAPTION</answer>",
        "matching": "<answer>1</answer>. or <answer>2</answer>. (the first or the second {noun})",
        "grounding": "The sounding object is CLASS. Its coordinates are <obj>(x1,y1)(x2,y2)</obj>.",
        "segmentation": f"The object making the sound in the video is CLASS. Its bounding box is {_BOX} and three "
        f"points on it are {_POINTS}. (Several sounding objects: their classes joined by ', ', one box around "
        "all of them and points on them.)",
        "referring_segmentation": "<answer>true</answer> The referred object is CLASS. Its bounding box is "
        f"{_BOX} and three points on it are {_POINTS}. -- or, when it is not there: <answer>false</answer> "
        "The referred object is absent.",
    },
    "tags": {
        "single_event": "<event>CLASS</event> <range>START,END</range> (whole seconds)",
        "dense_events": "<event>CLASS</event> <range>START,END</range> ... (one pair per event)",
        "open_qa": "<answer>WORD</answer>",
        "multiple_choice": "<answer>OPTION</answer> (the chosen option's text)",
        "classification": "<answer>CLASS</answer>",
        "caption": "<answer>CAPTION</answer>",
        "matching": "<answer>{noun} 1</answer> or <answer>{noun} 2</answer>",
        "grounding": f"<obj>CLASS</obj> <box>{_BOX}</box>",
        "segmentation": f"<obj>CLASS</obj> <box>{_BOX}</box> <points>{_POINTS}</points> ... (one group per "
        "sounding object)",
        "referring_segmentation": f"<answer>true</answer> <obj>CLASS</obj> <box>{_BOX}</box> <points>{_POINTS}"
        "</points> -- or, when it is not there: <answer>false</answer>",
    },
}
_AV_PARSING = (
    "<audio_event>CLASS,(START END),...</audio_event> ... <visual_event>CLASS,(START END),...</visual_event> "
    "... (one tag per audible class, one per visible class, whole seconds)"
)


def answer_lead(kind: str, style: str = DEFAULT_STYLE) -> str:
    """The words that lead from the reasoning into the final answer ('' where the answer is a sentence)."""
    return "" if (style, kind) in _SENTENCE_ANSWERS else LEAD


def final_words(answer: str, kind: str, style: str = DEFAULT_STYLE) -> str:
    """The end of a reply: the lead-in, then the answer."""
    return f"{answer_lead(kind, style)} {answer}".strip()


def answer_format(kind: str, source: str = "", style: str = DEFAULT_STYLE) -> str:
    """How an instruction tells the model to write its final answer (coordinates in pixels of the frame)."""
    from .crab import PERIOD_SOURCES

    if kind == "av_parsing":
        return _AV_PARSING
    text = _FORMATS[style][kind]
    noun = "audio" if source == "v2a" else "video"
    period = "." if style == "crab" and source in PERIOD_SOURCES else ""
    return text.replace("{noun}", noun).replace("{period}", period)


_GROUP = {
    "label": "dog",
    "box": [20, 96, 118, 210],
    "points": [[60, 150], [80, 130], [45, 190]],
    "mask": "m0.png",
}
_GROUP_2 = {"label": "piano", "box": [130, 90, 220, 200], "points": [[170, 150], [200, 120], [150, 180]],
            "mask": "m1.png"}  # fmt: skip
EXAMPLE_TARGETS: dict[str, dict[str, Any]] = {
    "single_event": {"kind": "single_event", "label": "Church bell", "start": 0, "end": 10},
    "dense_events": {
        "kind": "dense_events",
        "duration": 20.0,
        "events": [
            {"label": "man speaking", "start": 0.0, "end": 8.5},
            {"label": "dog barking", "start": 10.0, "end": 14.2},
        ],
    },
    "av_parsing": {"kind": "av_parsing", "audio": {"Speech": [[0, 3], [5, 10]]}, "visual": {"Dog": [[2, 6]]}},
    "open_qa": {"kind": "open_qa", "question": "Which instrument sounds first?", "answer": "saxophone"},
    "multiple_choice": {
        "kind": "multiple_choice",
        "question": "What makes the sound?",
        "options": ["a dog", "a cat", "a car", "a bell"],
        "answer_index": 2,
    },
    "classification": {"kind": "classification", "label": "playing violin"},
    "caption": {"kind": "caption", "caption": "a man plays a guitar while singing"},
    "matching": {
        "kind": "matching",
        "direction": "a2v",
        "answer_index": 1,
        "query_label": "Bark",
        "candidate_labels": ["Church bell", "Bark"],
    },
    "grounding": {"kind": "grounding", "label": "lawn mower", "box": [32, 40, 180, 200]},
    "segmentation": {"kind": "segmentation", "groups": [_GROUP, _GROUP_2]},
    "referring_segmentation": {
        "kind": "referring_segmentation",
        "expression": "the barking dog",
        "present": True,
        "groups": [_GROUP],
    },  # fmt: skip
}


def example_target(kind: str) -> Any:
    """A valid example target of a kind (for docs, tests and the tokenizer corpus)."""
    return TARGET_TYPES[kind].model_validate(EXAMPLE_TARGETS[kind])


def example_answers(source: str = "meld") -> list[str]:
    """Every kind's example answer in every style, plus the nothing-found answer (a tokenizer corpus)."""
    from .answers import STYLES

    out = [render_answer(example_target(k), s, source) for k in EXAMPLE_TARGETS for s in STYLES]
    absent = TARGET_TYPES["referring_segmentation"](expression="a cat", present=False)
    return out + [render_answer(absent, s) for s in STYLES] + [NOTHING_ANSWER]
