"""avqa_thu (AVQA, Yang et al.): the sample builds with four options; malformed questions reject."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder
from avuie.schemas import parse_answer
from avuie.schemas.targets import MultipleChoiceTarget

from avuie.media.synth import make_video
from avuie.samples.avqa_thu import _qa
from tests.buildkit import assert_build_ok, build_source, scan_counts


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("avqa_thu", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=3)
    by_id = {it["sample"]["id"]: it["sample"] for it in items}
    assert set(by_id) == {
        "avqa_thu/train/-HG3Omg_89c_000030_20001",
        "avqa_thu/train/-HG3Omg_89c_000030_20002",
        "avqa_thu/val/x7Yq0kWcJ9s_000110_40001",
    }
    s = by_id["avqa_thu/val/x7Yq0kWcJ9s_000110_40001"]
    assert s["answer"] == "<answer>A woman sings</answer>"
    assert "(a) A man plays guitar; (b) A car races; (c) A baby cries; (d) A woman sings" in s["instruction"]
    assert s["target"]["question_type"] == "Happening" and s["target"]["answer_index"] == 3
    target = MultipleChoiceTarget.model_validate(s["target"])
    assert parse_answer("So the answer is <answer>d</answer>", like=target).answer_index == 3  # option letter
    video, audio = s["media"]
    assert (
        video["frame_count"] == 10 and abs(audio["duration"] - 10.0) < 0.05 and len(audio["segments"]) == 10
    )


def test_question_files_in_data_and_keyed_by_id(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "data").mkdir(parents=True)
    q = _qa(7, "abcdefghijk_000010", 1, "Why", "Why?", ["a", "b", "c", "d"], "2")
    (raw / "data" / "val_qa.json").write_text(json.dumps({"7": {k: v for k, v in q.items() if k != "id"}}))
    (rec,) = list(get_builder("avqa_thu").entries(raw))
    assert (
        isinstance(rec, Record) and rec.native_id == "abcdefghijk_000010_7" and rec.target.answer_index == 2
    )
    assert rec.media[0].path == raw / "data" / "video" / "abcdefghijk_000010.mp4"
    with pytest.raises(BuilderError, match="no AVQA release"):
        list(get_builder("avqa_thu").entries(tmp_path / "nothing"))


def test_bad_questions_end_as_rejects_with_reasons(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    make_video(raw / "data" / "video" / "goodclip001_000000.mp4", duration=10.0, size=(96, 64), fps=5)
    opts = ["Dog", "Cat", "Cow", "Sheep"]
    good = _qa(1, "goodclip001_000000", 1, "Which", "Which animal?", opts, 0)
    train = [
        good,
        42,
        {**good, "id": 2, "question_text": ""},
        {**good, "id": 3, "multi_choice": ["Dog", "Cat", "Cow"]},
        {**good, "id": 4, "multi_choice": ["Dog", "dog", "Cow", "Sheep"]},
        {**good, "id": 5, "answer": 4},
        {**good, "id": 6, "answer": "Dog"},
        good,  # duplicate id
        {**good, "id": 8, "video_name": "missingclip_000000"},
        {**good, "id": 9, "video_name": ""},
    ]
    (raw / "train_qa.json").write_text(json.dumps(train))
    (raw / "val_qa.json").write_text("[{")
    assert scan_counts("avqa_thu", raw)["train"] == {"records": 2, "rejected": 8, "media_missing": 1}
    stats = build_source("avqa_thu", tmp_path / "out", raw=raw)
    assert_build_ok(tmp_path / "out", stats)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    got = sorted((r["split"], r["annotation_row"], r["reason"]) for r in rejects)
    assert got == [
        ("train", "10", "malformed_entry"),
        ("train", "2", "malformed_entry"),
        ("train", "3", "malformed_entry"),
        ("train", "4", "bad_options"),
        ("train", "5", "bad_options"),
        ("train", "6", "answer_out_of_range"),
        ("train", "7", "malformed_entry"),
        ("train", "8", "duplicate_id"),
        ("train", "9", "missing_file"),
        ("val", "", "malformed_json"),
    ]
    assert stats["splits"]["train"] == {**stats["splits"]["train"], "in": 10, "written": 1, "rejected": 9}
