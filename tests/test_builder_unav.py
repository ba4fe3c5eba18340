"""unav (UnAV-100): the sample builds with overlapping/repeating float events; malformed entries reject."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder

from avuie.samples import ensure_sample
from avuie.synth import make_video
from tests.buildkit import assert_build_ok, build_source, scan_counts


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("unav", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=3)
    by_id = {it["sample"]["id"]: it["sample"] for it in items}
    assert set(by_id) == {"unav/train/0Rfx3Oyp7aU", "unav/val/Hf5eGf3Wm1k", "unav/test/zL1u_8MQr3Y"}
    train = by_id["unav/train/0Rfx3Oyp7aU"]
    assert [(e["label"], e["start"], e["end"]) for e in train["target"]["events"]] == [
        ("man speaking", 0.0, 9.5),
        ("dog barking", 4.2, 13.8),  # overlaps the speech
        ("dog barking", 17.0, 22.4),  # the same class again
    ]
    assert train["answer"] == (
        "<event>man speaking</event> <range>0,9.5</range> <event>dog barking</event> <range>4.2,13.8</range> "
        "<event>dog barking</event> <range>17,22.4</range>"
    )
    assert "untrimmed video of 24 seconds" in train["instruction"]
    video, audio = train["media"]
    assert video["frame_count"] == 10 and abs(audio["duration"] - 24.0) < 0.05
    assert len(audio["segments"]) == 10 and audio["segments"][1] == [2.4, 4.8]
    val = by_id["unav/val/Hf5eGf3Wm1k"]["target"]
    assert [e["label"] for e in val["events"]] == ["woman speaking", "playing violin"]  # sorted by start
    assert val["events"][1]["end"] == 16.0  # 16.04 clamped to the duration
    assert by_id["unav/test/zL1u_8MQr3Y"]["target"]["events"][0]["end"] == 7.2  # one decimal


def test_end_tolerance_parameter(tmp_path: Path) -> None:
    raw = ensure_sample("unav")
    counts = scan_counts("unav", raw, end_tolerance=0.0)
    assert counts["val"] == {"records": 0, "rejected": 1, "media_missing": 0}
    assert scan_counts("unav", raw)["val"]["records"] == 1


def _write(raw: Path, database: dict) -> Path:
    ann = raw / "data" / "unav100" / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    (ann / "unav100_annotations.json").write_text(json.dumps({"database": database}))
    return raw


def test_malformed_entries_end_as_rejects_with_reasons(tmp_path: Path) -> None:
    ok = {"segment": [1.0, 3.0], "label": "dog barking", "label_id": 12}
    database = {
        "goodvideo01": {"subset": "Train", "duration": 8.0, "annotations": [ok]},
        "missingfile": {"subset": "train", "duration": 8.0, "annotations": [ok]},
        "notanobject": ["train"],
        "oddsubset01": {"subset": "holdout", "duration": 8.0, "annotations": [ok]},
        "noduration1": {"subset": "test", "annotations": [ok]},
        "noevents001": {"subset": "test", "duration": 8.0, "annotations": []},
        "badevent001": {"subset": "test", "duration": 8.0, "annotations": [{"segment": [1.0], "label": "x"}]},
        "endbefore01": {"subset": "validation", "duration": 8.0, "annotations": [{**ok, "segment": [5, 2]}]},
        "pastclip001": {"subset": "validation", "duration": 8.0, "annotations": [{**ok, "segment": [5, 12]}]},
        "tinyspan001": {
            "subset": "validation",
            "duration": 8.0,
            "annotations": [{**ok, "segment": [2.01, 2.04]}],
        },
        "clashing001": {"subset": "validation", "duration": 8.0, "annotations": [{**ok, "label_id": 13}]},
    }
    raw = _write(tmp_path / "raw", database)
    make_video(raw / "raw_videos" / "goodvideo01.mp4", duration=8.0, size=(96, 64), fps=5)
    stats = build_source("unav", tmp_path / "out", raw=raw)
    assert_build_ok(tmp_path / "out", stats)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    got = sorted((r["annotation_row"], r["reason"]) for r in rejects)
    assert got == [
        ("badevent001", "malformed_event"),
        ("clashing001", "inconsistent_label"),
        ("endbefore01", "invalid_segment"),
        ("missingfile", "missing_file"),
        ("noduration1", "malformed_entry"),
        ("noevents001", "no_events"),
        ("notanobject", "malformed_entry"),
        ("oddsubset01", "unknown_subset"),
        ("pastclip001", "invalid_segment"),
        ("tinyspan001", "invalid_segment"),
    ]
    assert stats["totals"] == {"in": 11, "written": 1, "rejected": 10}


def test_no_release_or_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="no UnAV-100 release"):
        list(get_builder("unav").read(tmp_path))
    raw = _write(tmp_path / "raw", {})
    (raw / "data/unav100/annotations/unav100_annotations.json").write_text('{"version": "1"}')
    with pytest.raises(BuilderError, match="not an ActivityNet-style"):
        list(get_builder("unav").read(raw))
    records = [r for r in get_builder("unav").read(ensure_sample("unav")) if isinstance(r, Record)]
    assert len(records) == 3
