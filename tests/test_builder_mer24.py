"""mer24 (MER2024): train-label.csv or label-6way.npz, train split only, bad rows reject."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder

from avuie.media.synth import make_video
from tests.buildkit import assert_build_ok, build_source, scan_counts


def test_label_csv_rows_become_train_records(tmp_path: Path) -> None:
    (tmp_path / "train-label.csv").write_text(
        "name,discrete,valence\nsample_001,worried,-1.5\nsample_002,Happy,2\n"
    )
    records = list(get_builder("mer24").entries(tmp_path))
    assert [(r.split, r.native_id, r.target.label, r.target.original_label) for r in records] == [
        ("train", "sample_001", "worried", "worried"),
        ("train", "sample_002", "happy", "Happy"),
    ]
    assert records[0].media[0].path == tmp_path / "train" / "sample_001.mp4"
    assert "(one of: neutral, angry, happy, sad, worried, surprise)" in records[0].instruction


def test_the_npz_form_reads_only_the_train_corpus(tmp_path: Path) -> None:
    train = {"sample_010": {"emo": "sad", "val": -2.0}, "sample_011": {"emo": "angry", "val": -3.0}}
    test1 = {"sample_900": {"emo": "neutral", "val": -10}}  # placeholder labels of the test sets
    np.savez_compressed(tmp_path / "label-6way.npz", train_corpus=train, test1_corpus=test1)
    make_video(tmp_path / "video" / "sample_010.avi", duration=2.0, size=(64, 48), fps=10)
    records = [r for r in get_builder("mer24").entries(tmp_path) if isinstance(r, Record)]
    assert [(r.native_id, r.target.label) for r in records] == [
        ("sample_010", "sad"),
        ("sample_011", "angry"),
    ]
    assert records[0].media[0].path.name == "sample_010.avi"
    assert scan_counts("mer24", tmp_path) == {"train": {"records": 2, "rejected": 0, "media_missing": 1}}


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("mer24", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=3)
    assert stats["totals"]["rejected"] == 0 and set(stats["splits"]) == {"train"}
    by_id = {it["sample"]["native_id"]: it["sample"] for it in items}
    assert by_id["sample_00000012"]["answer"] == "<answer>worried</answer>."
    video, audio = by_id["sample_00000012"]["media"]
    assert (
        video["frame_count"] == 4
        and abs(video["duration"] - 4.5) < 0.1
        and abs(audio["duration"] - 4.0) < 0.01
    )


def test_bad_rows_end_as_rejects_with_reasons(tmp_path: Path) -> None:
    rows = [
        "sample_1,happy,1",
        "sample_2,bored,0",
        ",sad,0",
        "sample_1,happy,1",
        "sample_3,,0",
        "sample_4,sad,-1",
    ]
    (tmp_path / "train-label.csv").write_text("\n".join(["name,discrete,valence", *rows]) + "\n")
    make_video(tmp_path / "train" / "sample_1.mp4", duration=2.0, size=(64, 48), fps=10)
    reasons = Counter(getattr(x, "reason", "ok") for x in get_builder("mer24").entries(tmp_path))
    assert reasons == {"ok": 2, "unknown_class": 1, "malformed_row": 2, "duplicate_id": 1}
    stats = build_source("mer24", tmp_path / "out", raw=tmp_path)
    assert_build_ok(tmp_path / "out", stats)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    assert sorted((r["reason"], r["id_or_row"]) for r in rejects) == [
        ("duplicate_id", "mer24/train/sample_1"),
        ("malformed_row", "mer24/train/sample_3"),
        ("malformed_row", "train-label.csv:3"),
        ("missing_file", "mer24/train/sample_4"),
        ("unknown_class", "mer24/train/sample_2"),
    ]
    assert stats["splits"]["train"] == {**stats["splits"]["train"], "in": 6, "written": 1, "rejected": 5}


def test_no_release_and_wrong_columns_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="no MER2024 labels"):
        list(get_builder("mer24").entries(tmp_path))
    (tmp_path / "train-label.csv").write_text("file,emotion\na,happy\n")
    with pytest.raises(BuilderError, match="expected columns name,discrete"):
        list(get_builder("mer24").entries(tmp_path))
