"""avcap (VALOR-32K): the real VAST test file scans to 3491, the sample builds, bad entries reject."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder

from avuie.build.scan import scan
from avuie.media.synth import make_video
from avuie.samples import ensure_sample
from tests.buildkit import assert_build_ok, build_source, scan_counts


def test_real_vast_test_file_scans_to_3491(real_root: Path) -> None:
    report = scan("avcap", real_root / "valor32k")
    assert {s: (v["records"], v["rejected"]) for s, v in report["splits"].items()} == {"test": (3491, 0)}
    records = [r for r in get_builder("avcap").entries(real_root / "valor32k") if isinstance(r, Record)]
    by_id = {r.native_id: r for r in records}
    first = by_id["CEfOX4fYlsY_20.000_30.000"]
    assert first.target.caption.startswith("In one room, a yellow bird leaped over the fence.")
    assert first.media[0].path.name == "CEfOX4fYlsY_20.000_30.000.mp4"
    assert first.media[0].path.parent.name == "video_data"
    assert sum(1 for r in records if r.context["subtitle"]) == 972


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("avcap", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=5)
    by_id = {it["sample"]["id"]: it["sample"] for it in items}
    s = by_id["avcap/test/R4tU8wZc2Hk_20.000_30.000"]
    assert (
        s["answer"] == "<answer>In a kitchen, a woman fries vegetables in a pan and the oil sizzles.</answer>"
    )
    assert s["provenance"]["annotation_file"] == "descs_cap_test.json"
    assert (
        by_id["avcap/train/k9PzT4sYw1A_36.200_46.200"]["provenance"]["annotation_file"] == "desc_train.json"
    )
    video, audio = s["media"]
    assert (
        video["frame_count"] == 10 and abs(audio["duration"] - 10.0) < 0.05 and len(audio["segments"]) == 10
    )
    assert all("." not in it["key"] for it in items)


def test_annotations_parameter_picks_one_variant(tmp_path: Path) -> None:
    raw = ensure_sample("avcap")
    assert set(scan_counts("avcap", raw, annotations="descs_cap")) == {"test"}
    assert set(scan_counts("avcap", raw, annotations="desc")) == {"train", "val"}
    with pytest.raises(BuilderError, match="annotations must be one of"):
        list(get_builder("avcap", annotations="vast").entries(raw))
    with pytest.raises(BuilderError, match="no VALOR-32K annotations"):
        list(get_builder("avcap").entries(tmp_path))


def test_caption_lists_give_one_sample_per_caption(tmp_path: Path) -> None:
    (tmp_path / "annotations").mkdir()
    entry = {"video_id": "abc_0.000_10.000", "desc": ["A dog barks.", "A puppy yelps at a ball."]}
    (tmp_path / "annotations" / "desc_val.json").write_text(json.dumps([entry]))
    records = list(get_builder("avcap").entries(tmp_path))
    assert [r.native_id for r in records] == ["abc_0.000_10.000_0", "abc_0.000_10.000_1"]
    assert scan_counts("avcap", tmp_path)["val"]["records"] == 1  # one annotation entry


def test_bad_entries_end_as_rejects_with_reasons(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    make_video(raw / "videos" / "good_0.000_10.000.mp4", duration=10.0, size=(96, 64), fps=5)
    good = {"video_id": "good_0.000_10.000", "desc": "A bell rings twice."}
    entries = [
        good,
        ["not", "an", "object"],
        {"desc": "no id"},
        {"video_id": "empty_0.000_10.000", "desc": "   "},
        {"video_id": "tagged_0.000_10.000", "desc": "A <b>bold</b> caption."},
        {"video_id": "numeric_0.000_10.000", "desc": 42},
        good,
        {"video_id": "missing_0.000_10.000", "desc": "A clip that was never downloaded."},
    ]
    (raw / "desc_train.json").write_text(json.dumps(entries))
    (raw / "desc_test.json").write_text('{"video_id": "x"}')
    stats = build_source("avcap", tmp_path / "out", raw=raw)
    assert_build_ok(tmp_path / "out", stats)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    got = sorted((r["split"], r["annotation_row"], r["reason"]) for r in rejects)
    assert got == [
        ("test", "", "malformed_json"),
        ("train", "2", "malformed_entry"),
        ("train", "3", "malformed_entry"),
        ("train", "4", "empty_caption"),
        ("train", "5", "invalid_caption"),
        ("train", "6", "malformed_entry"),
        ("train", "7", "duplicate_id"),
        ("train", "8", "missing_file"),
    ]
    assert stats["splits"]["train"] == {**stats["splits"]["train"], "in": 8, "written": 1, "rejected": 7}
