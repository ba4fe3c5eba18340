"""`avuie eval` reads answers in every style: Crab+-style predictions of the eval fixture score as the truth does."""

from __future__ import annotations

import json

import pytest
from avuie.schemas import render_answer

from avuie.eval.runner import evaluate
from tests.evalkit import FAMILY, N, write_build


def test_crab_style_predictions_score_perfectly_where_the_style_says_everything(tmp_path):
    root = tmp_path / "build"
    samples = write_build(root)
    preds = tmp_path / "crab.jsonl"
    lines = [
        {"id": s.id, "response": "I look. " + render_answer(s.target, "crab", s.source)} for s in samples
    ]
    preds.write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = evaluate(preds, root, mask_backend="box", meteor="off")  # METEOR: test_eval_runner
    for task, result in report["tasks"].items():
        assert result["n"] == N and result["n_unparseable"] == 0 and result["n_constraint_violations"] == 0, (
            task
        )
        value = result["primary"]["value"]
        if task == "ms3":  # two objects, one prompt (Crab+'s SAM2 step): box fill of the box around both
            assert 0.5 < value < 1.0
        else:
            assert value == pytest.approx(10.0 if task == "avcap" else 1.0, abs=1e-6), task
    assert set(report["tasks"]) == set(FAMILY)
