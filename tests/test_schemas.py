"""The sample contract: targets, tags (property-based round trip), validation and the JSON Schema."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from avuie.schemas import (
    TARGET_TYPES,
    AnswerParseError,
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
    Sample,
    SegmentationTarget,
    SingleEventTarget,
    make_key,
    parse_answer,
    render_answer,
)
from avuie.schemas.vocab import AVE_CLASSES, AVQA_ANSWERS, LLP_CLASSES, canonical
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from avuie.cli import app

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
label = st.lists(words, min_size=1, max_size=3).map(" ".join)


@st.composite
def single_events(draw):
    s = draw(st.integers(0, 9))
    e = draw(st.integers(s + 1, 10))
    return SingleEventTarget(label=draw(st.sampled_from(AVE_CLASSES)), start=s, end=e)


@st.composite
def dense_events(draw):
    dur = draw(st.floats(5, 200).map(lambda x: round(x, 1)))
    events = []
    for _ in range(draw(st.integers(1, 5))):
        s = round(draw(st.floats(0, dur - 1)), 1)
        e = round(draw(st.floats(s + 0.1, dur)), 1)
        if e > s:
            events.append({"label": draw(label), "start": s, "end": e})
    if not events:
        events = [{"label": "dog barking", "start": 0.0, "end": 1.0}]
    events.sort(key=lambda ev: (ev["start"], ev["end"], ev["label"]))
    return DenseEventsTarget(events=events, duration=dur)


def _segments(draw):
    cuts = sorted(draw(st.sets(st.integers(0, 10), min_size=2, max_size=6)))
    pairs = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
    return pairs


@st.composite
def av_parsing(draw):
    audio = {c: _segments(draw) for c in draw(st.sets(st.sampled_from(LLP_CLASSES), max_size=3))}
    visual = {c: _segments(draw) for c in draw(st.sets(st.sampled_from(LLP_CLASSES), max_size=3))}
    if not audio and not visual:
        audio = {"Speech": [(0, 10)]}
    return AVParsingTarget(audio=audio, visual=visual)


@st.composite
def groups(draw, n_min=1):
    out = []
    for i in range(draw(st.integers(n_min, 3))):
        x1, x2 = sorted(draw(st.lists(st.integers(0, 223), min_size=2, max_size=2)))
        y1, y2 = sorted(draw(st.lists(st.integers(0, 223), min_size=2, max_size=2)))
        pts = [(draw(st.integers(x1, x2)), draw(st.integers(y1, y2))) for _ in range(3)]
        out.append(ObjectGroup(label=draw(label), box=(x1, y1, x2, y2), points=pts, mask=f"mask_{i}.png"))
    return out


@st.composite
def choices(draw):
    opts = draw(st.lists(label, min_size=4, max_size=4, unique_by=lambda s: s.lower()))
    return MultipleChoiceTarget(question="Which one?", options=opts, answer_index=draw(st.integers(0, 3)))


@st.composite
def matchings(draw):
    q, other = draw(st.lists(label, min_size=2, max_size=2, unique=True))
    idx = draw(st.sampled_from([0, 1]))
    cands = (q, other) if idx == 0 else (other, q)
    return MatchingTarget(
        direction=draw(st.sampled_from(["a2v", "v2a"])),
        answer_index=idx,
        query_label=q,
        candidate_labels=cands,
    )


@st.composite
def referring(draw):
    present = draw(st.booleans())
    return ReferringSegmentationTarget(
        expression="the dog on the left", present=present, groups=draw(groups()) if present else []
    )


any_target = st.one_of(
    single_events(),
    dense_events(),
    av_parsing(),
    st.builds(OpenQATarget, question=st.just("What is heard?"), answer=st.sampled_from(AVQA_ANSWERS)),
    choices(),
    st.builds(SegmentationTarget, groups=groups()),
    referring(),
    st.builds(GroundingTarget, label=label, box=st.just((10, 20, 100, 200))),
    st.builds(CaptionTarget, caption=st.lists(words, min_size=1, max_size=12).map(" ".join)),
    matchings(),
    st.builds(ClassificationTarget, label=label, original_label=label),
)


def _mangle(answer: str, seed: int) -> str:
    """Random case and spaces inside every tag, and spaces around the content."""
    rng = np.random.default_rng(seed)

    def tag(m: re.Match) -> str:
        slash, name = m.group(1), m.group(2)
        name = "".join(c.upper() if rng.random() < 0.5 else c for c in name)
        pad = " " * int(rng.integers(0, 2))
        return f"<{pad}{slash}{name}{pad}>" + " " * int(rng.integers(0, 2))

    return re.sub(r"<(/?)([a-z_]+)>", tag, answer)


@settings(max_examples=300, deadline=None)
@given(any_target)
def test_parse_render_round_trip(target):
    assert parse_answer(render_answer(target), like=target) == target


@settings(max_examples=200, deadline=None)
@given(any_target, st.integers(0, 10_000))
def test_parser_tolerates_case_and_spaces_in_tags(target, seed):
    text = "Some reasoning first. So the answer is " + _mangle(render_answer(target), seed)
    assert parse_answer(text, like=target) == target


def test_every_target_kind_has_a_strategy_and_renders():
    kinds = set(TARGET_TYPES)
    assert len(kinds) == 11


def test_interface_examples_render_exactly():
    assert render_answer(SingleEventTarget(label="Church bell", start=0, end=10)) == (
        "<event>Church bell</event> <range>0,10</range>"
    )
    avvp = AVParsingTarget(audio={"Speech": [(0, 3), (5, 10)]}, visual={"Dog": [(2, 6)]})
    assert (
        render_answer(avvp)
        == "<audio_event>Speech,(0 3),(5 10)</audio_event> <visual_event>Dog,(2 6)</visual_event>"
    )
    assert render_answer(GroundingTarget(label="lawn mower", box=(32, 40, 180, 200))) == (
        "<obj>lawn mower</obj> <box>[32,40,180,200]</box>"
    )
    assert (
        render_answer(
            MatchingTarget(direction="a2v", answer_index=1, query_label="a", candidate_labels=("b", "a"))
        )
        == "<answer>video 2</answer>"
    )
    assert (
        render_answer(ReferringSegmentationTarget(expression="x", present=False)) == "<answer>false</answer>"
    )
    dense = DenseEventsTarget(events=[{"label": "dog", "start": 3.14, "end": 7}], duration=10)
    assert render_answer(dense) == "<event>dog</event> <range>3.1,7</range>"


def test_parser_maps_labels_to_the_source_vocabulary():
    t = SingleEventTarget(label="Church bell", start=0, end=10)
    assert parse_answer("<EVENT> church   BELL </event><range> 0 , 10 </range>", like=t, source="ave") == t
    assert canonical("ucf", "ApplyEyeMakeup") == "apply eye makeup"


@pytest.mark.parametrize("text", ["no tags at all", "<answer></answer>", "<event>Bark</event>", ""])
def test_unreadable_answers_raise(text):
    with pytest.raises(AnswerParseError):
        parse_answer(text, like=SingleEventTarget(label="Bark", start=0, end=2))


def test_parser_rejects_answers_that_break_constraints():
    like = SingleEventTarget(label="Bark", start=0, end=2)
    with pytest.raises(AnswerParseError):
        parse_answer("<event>Bark</event> <range>8,3</range>", like=like)
    assert parse_answer("<event>Bark</event> <range>8,3</range>", like=like, validate=False).start == 8
    mc = MultipleChoiceTarget(question="q", options=["a", "b", "c", "d"], answer_index=0)
    assert parse_answer("<answer>C</answer>", like=mc).answer_index == 2
    with pytest.raises(AnswerParseError):
        parse_answer("<answer>zebra</answer>", like=mc)


@pytest.mark.parametrize(
    "build",
    [
        lambda: SingleEventTarget(label="Bark", start=5, end=3),
        lambda: SingleEventTarget(label="Bark", start=0, end=11),
        lambda: DenseEventsTarget(events=[{"label": "a", "start": 5, "end": 70}], duration=60),
        lambda: DenseEventsTarget(
            events=[{"label": "a", "start": 5, "end": 6}, {"label": "a", "start": 1, "end": 2}], duration=60
        ),
        lambda: GroundingTarget(label="dog", box=(10, 10, 300, 20)),
        lambda: GroundingTarget(label="dog", box=(50, 10, 20, 20)),
        lambda: SegmentationTarget(
            groups=[
                ObjectGroup(
                    label="d", box=(0, 0, 10, 10), points=[(1, 1), (2, 2), (50, 50)], mask="mask_0.png"
                )
            ]
        ),
        lambda: ReferringSegmentationTarget(expression="x", present=True, groups=[]),
        lambda: MultipleChoiceTarget(question="q", options=["a", "b"], answer_index=2),
        lambda: MatchingTarget(direction="a2v", answer_index=0, query_label="a", candidate_labels=("a", "a")),
        lambda: ClassificationTarget(label="Playing Violin"),
        lambda: AVParsingTarget(),
    ],
)
def test_invalid_targets_are_refused(build):
    with pytest.raises(ValidationError):
        build()


def _sample(**over):
    target = over.pop("target", SingleEventTarget(label="Bark", start=1, end=4))
    sid = "ave/train/vid_bark"
    answer = render_answer(target)
    d = {
        "id": sid,
        "key": make_key(sid),
        "source": "ave",
        "family": "event_localization",
        "split": "train",
        "native_id": "vid_bark",
        "media": [
            {
                "kind": "video_frames",
                "role": "video",
                "files": [f"frame_{i:02d}.jpg" for i in range(10)],
                "frame_count": 10,
            },
            {"kind": "audio", "role": "audio", "files": ["audio.wav"], "sample_rate": 16000},
        ],
        "instruction": "<video>\n<audio>\nWhat happens?",
        "target": target.model_dump(),
        "answer": answer,
        "reasoning": "A dog barks.",
        "response": f"A dog barks. {answer}",
        "provenance": {
            "annotation_file": "trainSet.txt",
            "annotation_row": 3,
            "builder": "ave",
            "builder_version": "1",
        },
        "license": "x",
    }
    d.update(over)
    return d


def test_a_good_sample_validates():
    s = Sample.model_validate(_sample())
    assert s.key.startswith("ave_train_vid_bark_") and "." not in s.key


@pytest.mark.parametrize(
    "over, message",
    [
        ({"answer": "<event>Bark</event> <range>1,5</range>"}, "rendering"),
        ({"response": "no answer"}, "end with"),
        ({"family": "captioning"}, "cannot carry"),
        ({"target": SingleEventTarget(label="Unicorn", start=1, end=2)}, "class list"),
        ({"media": [{"kind": "audio", "role": "audio", "files": ["audio.wav"]}]}, "needs 1 video_frames"),
        ({"id": "ave/train/other"}, "id"),
        ({"reasoning": "It is <answer>x</answer>"}, "tags"),
    ],
)
def test_sample_contract_violations(over, message):
    with pytest.raises(ValidationError, match=message):
        Sample.model_validate(_sample(**over))


def test_points_must_lie_inside_the_mask():
    g = ObjectGroup(
        label="dog", box=(10, 10, 20, 20), points=[(12, 12), (15, 15), (20, 20)], mask="mask_0.png"
    )
    target = SegmentationTarget(groups=[g])
    sid = "s4/test/u_0"
    d = _sample(
        target=target,
        id=sid,
        key=make_key(sid),
        source="s4",
        family="segmentation",
        split="test",
        native_id="u_0",
        media=[
            {"kind": "image", "role": "image", "files": ["image.jpg"]},
            {"kind": "audio", "role": "audio", "files": ["audio.wav"]},
            {"kind": "mask", "role": "mask_0", "files": ["mask_0.png"]},
        ],
    )
    mask = np.zeros((224, 224), bool)
    mask[10:21, 10:21] = True
    Sample.model_validate(d, context={"masks": {"mask_0.png": mask}})
    mask[20, 20] = False
    with pytest.raises(ValidationError, match="not inside its mask"):
        Sample.model_validate(d, context={"masks": {"mask_0.png": mask}})


def test_schema_command_writes_json_schema(tmp_path):
    out = tmp_path / "schema.json"
    result = CliRunner().invoke(app, ["schema", "--out", str(out)])
    assert result.exit_code == 0, result.output
    schema = json.loads(out.read_text())
    assert schema["title"] == "Sample"
    kinds = {d["properties"]["kind"]["const"] for n, d in schema["$defs"].items() if n.endswith("Target")}
    assert kinds == set(TARGET_TYPES)
