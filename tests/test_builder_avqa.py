"""avqa (MUSIC-AVQA): the real json_update files scan to val 4568 / test 9129, the sample builds, bad entries reject."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder
from avuie.builders.avqa import fill_question

from avuie.build.scan import scan
from avuie.media.synth import make_video
from avuie.samples.avqa import _q
from tests.buildkit import assert_build_ok, build_source, scan_counts


def test_real_json_update_scans_to_the_official_counts(real_root: Path) -> None:
    report = scan("avqa", real_root / "music_avqa")
    counts = {s: (v["records"], v["rejected"]) for s, v in report["splits"].items()}
    assert counts == {"val": (4568, 0), "test": (9129, 0)}
    assert report["family"] == "question_answering"


def test_real_original_json_rejects_its_repeated_question_ids(real_root: Path) -> None:
    report = scan("avqa", real_root / "music_avqa", {"annotations": "json"})
    counts = {s: (v["records"], v["rejected"]) for s, v in report["splits"].items()}
    assert counts == {"val": (4568, 27), "test": (9130, 55)}
    assert report["reject_reasons"] == {"duplicate_id": 82}


def test_real_questions_are_filled_and_typed(real_root: Path) -> None:
    records = [r for r in get_builder("avqa").entries(real_root / "music_avqa") if isinstance(r, Record)]
    by_id = {(r.split, r.native_id): r for r in records}
    t = by_id[("val", "00000108_q10")].target
    assert t.question == "Is the guzheng louder than the piano?" and t.answer == "yes"
    assert t.question_type == "Audio/Comparative"
    assert not any("<" in r.target.question or "？" in r.target.question for r in records)
    assert {r.target.question_type.split("/")[0] for r in records} == {"Audio", "Visual", "Audio-Visual"}
    assert len({r.target.question_type for r in records}) == 9
    assert by_id[("val", "00000108_q10")].media[0].path.parent.name == "MUSIC-AVQA-videos-Real"


def test_placeholders_fill_left_to_right() -> None:
    q = fill_question("Is the <Object> on the <LR> louder than the <Object>？ ", ["cello", "left", "piano"])
    assert q == "Is the cello on the left louder than the piano?"
    with pytest.raises(ValueError, match="placeholders"):
        fill_question("Is the <Object> playing?", [])


def test_bundled_sample_builds_with_music_audio_windows(tmp_path: Path) -> None:
    stats = build_source("avqa", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=5)
    by_id = {it["sample"]["id"]: it["sample"] for it in items}
    s = by_id["avqa/val/00000108_q10"]
    assert s["target"]["question"] == "Where is the first sounding instrument?"
    assert s["target"]["question_type"] == "Audio-Visual/Temporal" and s["answer"] == "<answer>left</answer>"
    assert "Question: Where is the first sounding instrument?" in s["instruction"]
    video, audio = s["media"]
    assert video["frame_count"] == 10 and abs(video["duration"] - 60.0) < 0.1
    assert audio["sample_rate"] == 16000 and abs(audio["duration"] - 60.0) < 0.1
    assert audio["segments"] == [
        [max(0.0, 6.0 * k - 0.5), 6.0 * k + 1.5] for k in range(10)
    ]  # Crab+'s windows
    synth = by_id["avqa/train/va00003871_q5"]
    assert "MUCIS-AVQA-videos-Synthetic" in synth["media"][0]["source_path"]
    # the same video in val and test gives two samples with distinct ids
    assert "avqa/test/00000108_q12" in by_id


def test_annotations_parameter_selects_the_original_files(tmp_path: Path) -> None:
    from avuie.samples import ensure_sample

    raw = ensure_sample("avqa")
    counts = scan_counts("avqa", raw, annotations="json")
    assert counts == {"val": {"records": 2, "rejected": 1, "media_missing": 0}}
    with pytest.raises(BuilderError, match="annotations must be one of"):
        list(get_builder("avqa", annotations="json_v9").entries(raw))
    with pytest.raises(BuilderError, match="no MUSIC-AVQA release"):
        list(get_builder("avqa").entries(tmp_path))


def test_bad_entries_end_as_rejects_with_reasons(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    ann = raw / "data" / "json_update"
    ann.mkdir(parents=True)
    make_video(raw / "videos" / "00000001.mp4", duration=12.0, size=(96, 64), fps=5)
    good = _q("00000001", 1, "Audio", "Counting", "How many instruments?", [], "two")
    entries = [
        good,
        "not an object",
        {
            k: v
            for k, v in _q("00000001", 2, "Audio", "Counting", "How many?", [], "one").items()
            if k != "anser"
        },
        _q("00000001", 3, "Visual", "Location", "Where is the <Object>?", [], "left"),  # 1 slot, 0 values
        _q("00000001", 4, "Audio", "Counting", "How many?", [], "eleven"),  # not in the vocabulary
        {**_q("00000001", 5, "Audio", "Counting", "How many?", [], "one"), "question_deleted": 1},
        _q("00000001", 1, "Audio", "Counting", "How many instruments?", [], "three"),  # repeated id
        {**_q("00000001", 6, "Audio", "Counting", "How many?", [], "one"), "type": "Audio, Counting"},
        _q("00000404", 7, "Audio", "Counting", "How many?", [], "one"),  # no video
    ]
    (ann / "avqa-val.json").write_text(json.dumps(entries, indent=2))
    (ann / "avqa-test.json").write_text('[{"video_id": "00000001",')  # truncated file
    stats = build_source("avqa", tmp_path / "out", raw=raw)
    assert_build_ok(tmp_path / "out", stats)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    got = sorted((r["split"], r["annotation_row"], r["reason"]) for r in rejects)
    assert got == [
        ("test", "", "malformed_json"),
        ("val", "2", "malformed_entry"),
        ("val", "3", "malformed_entry"),
        ("val", "4", "template_mismatch"),
        ("val", "5", "unknown_answer"),
        ("val", "6", "question_deleted"),
        ("val", "7", "duplicate_id"),
        ("val", "8", "malformed_entry"),
        ("val", "9", "missing_file"),
    ]
    assert stats["splits"]["val"] == {**stats["splits"]["val"], "in": 9, "written": 1, "rejected": 8}
