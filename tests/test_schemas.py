"""The sample contract: targets, validation (answers in any style) and the JSON Schema."""

from __future__ import annotations

import json

import numpy as np
import pytest
from avuie.schemas import (
    TARGET_TYPES,
    AVParsingTarget,
    ClassificationTarget,
    DenseEventsTarget,
    GroundingTarget,
    MatchingTarget,
    MultipleChoiceTarget,
    ObjectGroup,
    ReferringSegmentationTarget,
    Sample,
    SegmentationTarget,
    SingleEventTarget,
    make_key,
    render_answer,
)
from pydantic import ValidationError
from typer.testing import CliRunner

from avuie.cli import app


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


def test_a_sample_may_carry_its_answer_in_any_style():
    target = SingleEventTarget(label="Bark", start=1, end=4)
    for style in ("crab", "tags"):
        answer = render_answer(target, style, "ave")
        Sample.model_validate(_sample(answer=answer, response=f"A dog barks. {answer}"))


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
