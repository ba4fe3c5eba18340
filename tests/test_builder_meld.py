"""meld (MELD): the real CSVs scan to 9989/1109/2610, real rows build, the utterance is in the instruction."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder

from avuie.media.synth import make_video
from avuie.samples.meld import HEADER
from tests.buildkit import assert_build_ok, build_source, scan_counts

REAL_CSVS = ("train_sent_emo.csv", "dev_sent_emo.csv", "test_sent_emo.csv")


def test_real_csvs_scan_to_the_official_counts(real_root: Path) -> None:
    counts = scan_counts("meld", real_root / "meld")
    assert counts == {
        "train": {"records": 9989, "rejected": 0, "media_missing": 9989},
        "val": {"records": 1109, "rejected": 0, "media_missing": 1109},
        "test": {"records": 2610, "rejected": 0, "media_missing": 2610},
    }


def test_real_rows_carry_the_utterance_and_the_clip_name(real_root: Path) -> None:
    records = [r for r in get_builder("meld").entries(real_root / "meld") if isinstance(r, Record)]
    first = records[0]
    assert first.native_id == "dia0_utt0" and first.split == "train"
    assert first.media[0].path.parts[-2:] == ("train_splits", "dia0_utt0.mp4")
    assert "company’s transition from the KL-5 to GR-6 system." in first.instruction  # curly quote kept
    assert first.target.label == "neutral"
    val = next(r for r in records if r.split == "val")
    assert val.media[0].path.parent.name == "dev_splits_complete" and val.target.label == "sadness"
    test = next(r for r in records if r.split == "test")
    assert test.media[0].path.parent.name == "output_repeated_splits_test"
    assert {r.target.label for r in records} == {
        "neutral",
        "joy",
        "surprise",
        "anger",
        "sadness",
        "disgust",
        "fear",
    }


def test_real_rows_build_end_to_end(real_root: Path, tmp_path: Path) -> None:
    raw = tmp_path / "MELD.Raw"
    raw.mkdir()
    for name in REAL_CSVS:
        (raw / name).symlink_to(real_root / "meld" / "data" / "MELD" / name)
    # clip folders as the inner tarballs extract: MELD.Raw/<split>/<folder>/
    make_video(raw / "train" / "train_splits" / "dia0_utt0.mp4", duration=5.0, size=(80, 60), fps=10)
    make_video(raw / "dev" / "dev_splits_complete" / "dia0_utt0.mp4", duration=2.0, size=(80, 60), fps=10)
    stats = build_source("meld", tmp_path / "out", raw=raw, limit=1, splits=["train", "val"])
    items = assert_build_ok(tmp_path / "out", stats, min_written=2)
    by_id = {it["sample"]["id"]: it["sample"] for it in items}
    train = by_id["meld/train/dia0_utt0"]
    video, audio = train["media"]
    assert video["frame_count"] == 4 and abs(video["duration"] - 5.0) < 0.1  # 4 frames over the whole clip
    assert abs(audio["duration"] - 4.0) < 0.01 and audio["sample_rate"] == 16000  # the first 4 s
    assert abs(by_id["meld/val/dia0_utt0"]["media"][1]["duration"] - 2.0) < 0.05  # shorter clip: all of it
    assert by_id["meld/val/dia0_utt0"]["answer"] == "<answer>sadness</answer>."


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("meld", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=4)
    assert stats["totals"]["rejected"] == 0
    by_id = {it["sample"]["id"]: it["sample"] for it in items}
    assert set(by_id) == {
        "meld/train/dia0_utt0",
        "meld/train/dia0_utt1",
        "meld/val/dia3_utt2",
        "meld/test/dia1_utt0",
    }
    assert 'says: "Oh, that’s so great, I can’t believe it!"' in by_id["meld/train/dia0_utt0"]["instruction"]
    assert all(len(it["files"]) == 5 for it in items)  # 4 frames + audio.wav


def _write_csv(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def test_bad_rows_end_as_rejects_with_reasons(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    times = ["00:01:00,000", "00:01:02,000"]
    _write_csv(
        raw / "train_sent_emo.csv",
        [
            [1, "Hi, there.", "Joey", "joy", "positive", 0, 0, 1, 1, *times],  # good
            [2, "What?", "Ross", "boredom", "neutral", 0, 1, 1, 1, *times],  # unknown emotion
            [3, "No.", "Ross", "anger", "negative", "x", 2, 1, 1, *times],  # malformed ids
            [4, "Hi, there.", "Joey", "joy", "positive", 0, 0, 1, 1, *times],  # duplicate
            [5, "Okay.", "Monica", "fear", "negative", 0, 3, 1, 1, *times],  # no clip
        ],
    )
    _write_csv(
        raw / "dev_sent_emo.csv", [[1, "x", "y", "joy"]], header=["Sr No.", "Utterance", "Speaker", "Emotion"]
    )
    make_video(raw / "train_splits" / "dia0_utt0.mp4", duration=2.0, size=(64, 48), fps=10)
    assert scan_counts("meld", raw)["train"] == {"records": 2, "rejected": 3, "media_missing": 1}
    stats = build_source("meld", tmp_path / "out", raw=raw)
    assert_build_ok(tmp_path / "out", stats)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    assert sorted((r["split"], r["reason"], r["id_or_row"]) for r in rejects) == [
        ("train", "duplicate_id", "meld/train/dia0_utt0"),
        ("train", "malformed_row", "train_sent_emo.csv:3"),
        ("train", "missing_file", "meld/train/dia0_utt3"),
        ("train", "unknown_class", "meld/train/dia0_utt1"),
        ("val", "malformed_header", "dev_sent_emo.csv:0"),
    ]
    assert stats["splits"]["train"] == {**stats["splits"]["train"], "in": 5, "written": 1, "rejected": 4}


def test_no_release_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="no MELD annotation file"):
        list(get_builder("meld").entries(tmp_path))
