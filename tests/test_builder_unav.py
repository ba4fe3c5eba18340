"""unav (UnAV-100): the sample builds with overlapping/repeating float events; malformed entries reject."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder

from avuie.media.synth import make_video
from avuie.samples import ensure_sample
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
        "event:man speaking start_time:0 end_time:9.5; event:dog barking start_time:4.2 end_time:13.8; "
        "event:dog barking start_time:17 end_time:22.4"
    )
    assert "untrimmed video of 24 seconds" in train["instruction"]
    video, audio = train["media"]
    assert video["frame_count"] == 10 and abs(audio["duration"] - 24.0) < 0.05
    assert len(audio["segments"]) == 10 and audio["segments"][1] == [2.4, 4.8]
    val = by_id["unav/val/Hf5eGf3Wm1k"]["target"]
    assert [e["label"] for e in val["events"]] == ["woman speaking", "playing violin"]  # sorted by start
    assert val["events"][1]["end"] == 16.0  # 16.04 clamped to the duration
    test = by_id["unav/test/zL1u_8MQr3Y"]
    assert test["target"]["events"][0]["end"] == 7.25  # as released: the target is never rounded
    assert "end_time:7.2" in test["answer"]  # one decimal, for display only


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


REAL_UNAV = ("train", 6489), ("val", 2134), ("test", 2167)


def test_real_annotation_file_scans_whole(real_root: Path) -> None:
    """Every one of the 10,790 released videos is kept: times are validated as released, not rounded first."""
    counts = scan_counts("unav", real_root / "unav")
    assert {split: (c["records"], c["rejected"]) for split, c in counts.items()} == {
        split: (n, 0) for split, n in REAL_UNAV
    }


def test_real_end_close_to_the_duration_keeps_its_time_and_reads_back(real_root: Path) -> None:
    """5rkoABxo6Cw: [13.726, 36.05981] in a 36.07 s clip stays as released; its answer shows 36.1, which reads
    back as inside the clip, and a reply ending in it passes the reasoning check."""
    from avuie.schemas import parse_answer, render_answer

    from avuie.reasoning.check import check_reply

    records = {r.native_id: r for r in get_builder("unav").read(real_root / "unav") if isinstance(r, Record)}
    target = records["5rkoABxo6Cw"].target
    assert target.duration == 36.07
    assert any((e.start, e.end) == (13.726, 36.05981) for e in target.events)
    answer = render_answer(target)
    assert "start_time:13.7 end_time:36.1" in answer
    parsed = parse_answer(answer, like=target, source="unav")  # validates: 36.1 is within half a step
    assert any((e.start, e.end) == (13.7, 36.1) for e in parsed.events)
    sample = {"source": "unav", "target": target.model_dump(mode="json"), "answer": answer}
    reply = "I watch and listen to the whole clip: the siren is seen and heard until the very end. " + answer
    assert check_reply(reply, sample).ok
