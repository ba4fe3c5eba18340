"""Hostile predictions against the answer parser: it returns a target or raises AnswerParseError, nothing else.

Huge numbers, oversized responses, thousands of tags, deep nesting, unbalanced brackets, surrogates and random
mixtures of every answer form's pieces, for every target kind and both styles. Time is never asserted; the
one scaling test only proves, with a generous bound, that a response twice the one that took 10-25 s before (8,000
tags) is still answered.
"""

from __future__ import annotations

import threading

import pytest
from avuie.schemas import STYLES, AnswerParseError, parse_answer, render_answer, same_answer
from avuie.schemas.scan import COORD_LIMIT, MAX_RESPONSE_CHARS, TIME_LIMIT
from avuie.schemas.wordings import EXAMPLE_TARGETS, example_target
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avuie.reasoning.check import check_reply

KINDS = sorted(EXAMPLE_TARGETS)
LIKES = {kind: example_target(kind) for kind in KINDS}
# Pieces of every answer form, so that random text often looks almost like an answer.
PIECES = [
    "<answer>", "</answer>", "< Answer >", "</ answer>", "<event>", "</event>", "<range>", "</range>",
    "<audio_event>", "</audio_event>", "<visual_event>", "</visual_event>", "<obj>", "</obj>", "<box>",
    "</box>", "<points>", "</points>", "event:", "start_time:", "end_time:", "The sounding object is",
    "The object making the sound in the video is", "The referred object is", "Its coordinates are",
    "[", "]", "(", ")", ",", ";", ".", " ", "\n", "-", "0", "7", "223", "99999999999999999999", "1e400", "nan",
    "dog", "Speech", "true", "false", "none", "video 2", "\udcff", "\x00", "é",
]  # fmt: skip
hostile_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(PIECES), max_size=120).map("".join),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=5)), max_size=80).map("".join),
)


def parses_or_refuses(text: object, kind: str, **kw) -> None:
    """Parsing `text` returns a target of the kind or raises AnswerParseError (any other exception fails)."""
    try:
        out = parse_answer(text, like=LIKES[kind], **kw)  # type: ignore[arg-type]
    except AnswerParseError:
        return
    assert out.kind == kind


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_text, st.sampled_from(KINDS), st.sampled_from([None, *STYLES]), st.booleans())
def test_any_text_parses_or_raises_answer_parse_error(text, kind, style, validate):
    parses_or_refuses(text, kind, style=style, validate=validate, source="ave")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(KINDS), st.sampled_from(STYLES), hostile_text, hostile_text)
def test_a_real_answer_wrapped_in_noise_still_parses_or_refuses(kind, style, before, after):
    answer = render_answer(LIKES[kind], style, "meld")
    parses_or_refuses(before + answer + after, kind)
    try:
        same_answer(before + " " + answer, LIKES[kind], "meld", style)
    except AnswerParseError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(KINDS), st.sampled_from(STYLES), st.integers(16, 400))
def test_numbers_past_every_limit_are_parse_errors(kind, style, digits):
    """A coordinate or time with too many digits is an AnswerParseError, never OverflowError/ValueError."""
    answer = render_answer(LIKES[kind], style)
    huge = "9" * digits
    for old in ("10", "20", "96", "0", "1", "2"):
        if old in answer:
            parses_or_refuses(answer.replace(old, huge), kind)


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("grounding", f"<obj>dog</obj> <box>[0,0,{int(COORD_LIMIT) + 1},5]</box>"),
        (
            "segmentation",
            f"The object making the sound in the video is dog. [1,1,{10**15},9] [1,1],[2,2],[3,3]",
        ),
        ("single_event", f"event:Bark start_time:0 end_time:{int(TIME_LIMIT) * 10}"),
        ("dense_events", "event:Bark start_time:0 end_time:" + "9" * 5000),
        ("av_parsing", "<audio_event>Speech,(0 " + "9" * 5000 + ")</audio_event>"),
        ("grounding", "The sounding object is dog. <obj>(1," + "9" * 4400 + ")(3,4)</obj>"),
    ],
)
def test_out_of_range_numbers_are_parse_errors(kind, text):
    with pytest.raises(AnswerParseError, match="outside|digits"):
        parse_answer(text, like=LIKES[kind])


def test_oversized_and_non_text_responses_are_refused():
    with pytest.raises(AnswerParseError, match="characters"):
        parse_answer("x" * (MAX_RESPONSE_CHARS + 1), like=LIKES["classification"])
    for bad in (None, 42, b"<answer>dog</answer>", ["<answer>"]):
        with pytest.raises(AnswerParseError, match="not text"):
            parse_answer(bad, like=LIKES["classification"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "<answer>" * 10_000 + "x" + "</answer>" * 10_000,  # deep nesting
        "[" * 100_000 + "]" * 100_000,
        "(" * 100_000,
        "<" + " " * 100_000 + "answer>",
        "event:" + " " * 100_000 + "x",
        "The object making the sound in the video is " * 5_000,
        "<obj>" + "(1,2)" * 20_000 + "</obj>",
    ],
)
def test_deep_nesting_and_long_runs_are_safe(text):
    for kind in KINDS:
        parses_or_refuses(text, kind)


def _answered_within(fn, seconds: float) -> bool:
    done: list = []
    worker = threading.Thread(target=lambda: done.append(fn()), daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    return bool(done)


def test_tag_spam_past_8000_tags_is_still_answered():
    """16,000 tags (the quadratic scan took 10-25 s for 8,000): every kind answers within a generous bound."""
    spam = "<event>a</event> <range>1,2</range> " * 2_000 + "<answer>" * 8_000

    def run() -> bool:
        for kind in KINDS:
            parses_or_refuses(spam, kind)
        return True

    assert _answered_within(run, 120)


def test_the_reasoning_check_never_raises_on_hostile_replies():
    sample = {"source": "ave", "target": LIKES["single_event"].model_dump(mode="json")}
    sample["answer"] = render_answer(LIKES["single_event"], "crab", "ave")
    for text in ("<event>" * 30_000, "event:" * 30_000 + sample["answer"], "\udcff" * 1000, "9" * 100_000):
        assert not check_reply(text, sample).ok
