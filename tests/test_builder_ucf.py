"""ucf (UCF101): the real CRLF split lists scan to 9537/3783, real rows build, silent clips reject, bad rows reject."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder

from avuie.media.synth import make_video
from tests.buildkit import assert_build_ok, build_source, scan_counts


@pytest.mark.parametrize("fold,train,test", [(1, 9537, 3783), (2, 9586, 3734), (3, 9624, 3696)])
def test_real_lists_scan_to_the_official_counts(real_root: Path, fold: int, train: int, test: int) -> None:
    counts = scan_counts("ucf", real_root / "ucf101", fold=fold)
    assert counts == {
        "train": {"records": train, "rejected": 0, "media_missing": train},
        "test": {"records": test, "rejected": 0, "media_missing": test},
    }


def test_real_rows_keep_the_release_paths_and_1_based_classes(real_root: Path) -> None:
    records = {
        r.native_id: r for r in get_builder("ucf").entries(real_root / "ucf101") if isinstance(r, Record)
    }
    first = records["v_ApplyEyeMakeup_g08_c01"]
    assert first.split == "train" and first.target.label == "apply eye makeup"
    assert first.target.original_label == "ApplyEyeMakeup"
    assert first.annotation_file == "trainlist01.txt" and first.annotation_row == 1
    # the folder and the file spell the class differently: the listed path is kept
    quirk = records["v_HandStandPushups_g08_c01"]
    assert quirk.media[0].path.parts[-3:] == ("UCF-101", "HandstandPushups", "v_HandStandPushups_g08_c01.avi")
    assert quirk.target.label == "handstand pushups"
    assert records["v_YoYo_g01_c01"].split == "test" and records["v_YoYo_g01_c01"].target.label == "yo yo"
    # the raw root may also be the list folder itself
    assert scan_counts("ucf", real_root / "ucf101" / "ucfTrainTestlist")["test"]["records"] == 3783


def test_real_rows_build_and_a_clip_without_audio_is_rejected(real_root: Path, tmp_path: Path) -> None:
    raw = tmp_path / "ucf101"
    raw.mkdir()
    (raw / "ucfTrainTestlist").symlink_to(real_root / "ucf101" / "ucfTrainTestlist")
    clips = raw / "UCF-101" / "ApplyEyeMakeup"
    make_video(clips / "v_ApplyEyeMakeup_g08_c01.avi", duration=3.0, size=(80, 60), fps=10)  # train row 1
    make_video(clips / "v_ApplyEyeMakeup_g01_c01.avi", duration=3.0, size=(80, 60), fps=10, audio=False)
    stats = build_source("ucf", tmp_path / "out", raw=raw, limit=1)
    items = assert_build_ok(tmp_path / "out", stats)
    assert [it["sample"]["id"] for it in items] == ["ucf/train/v_ApplyEyeMakeup_g08_c01"]
    sample = items[0]["sample"]
    assert sample["answer"] == "<answer>apply eye makeup</answer>"
    assert [m["kind"] for m in sample["media"]] == ["video_frames", "audio"]
    assert sample["media"][0]["frame_count"] == 10 and sample["media"][0]["original_size"] == [80, 60]
    assert abs(sample["media"][1]["duration"] - 3.0) < 0.05
    assert stats["splits"]["test"]["reasons"] == {"no_audio_stream": 1}


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("ucf", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=5)
    labels = {it["sample"]["native_id"]: it["sample"]["target"]["label"] for it in items}
    assert labels["v_HandStandPushups_g08_c02"] == "handstand pushups"
    assert labels["v_Drumming_g01_c01"] == "drumming"
    assert stats["totals"]["rejected"] == 0
    assert all(len(it["files"]) == 11 for it in items)  # 10 frames + audio.wav


def _bad_tree(root: Path) -> Path:
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_bytes(b"1 ApplyEyeMakeup\r\n2 Archery\r\n")
    rows = [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1",  # good
        "Archery/v_Archery_g01_c01.avi 1",  # index says ApplyEyeMakeup
        "Archery/v_Archery_g01_c02.avi 7",  # index not in classInd
        "Bowling/v_Bowling_g01_c01.avi 2",  # folder not a class
        "no_slash_here 1",  # malformed
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1",  # duplicate
        "Archery/v_Archery_g02_c01.avi 2",  # no media file
        "Archery/v_Archery_g03_c01.avi 2",  # a clip with no audio track
    ]
    (lists / "trainlist01.txt").write_bytes(("\r\n".join(rows) + "\r\n").encode())
    make_video(
        root / "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", duration=2.0, size=(64, 48), fps=10
    )
    make_video(
        root / "UCF-101/Archery/v_Archery_g03_c01.avi", duration=2.0, size=(64, 48), fps=10, audio=False
    )
    return root


def test_bad_rows_end_as_rejects_with_reasons(tmp_path: Path) -> None:
    raw = _bad_tree(tmp_path / "raw")
    assert scan_counts("ucf", raw)["train"] == {"records": 3, "rejected": 5, "media_missing": 1}
    stats = build_source("ucf", tmp_path / "out", raw=raw)
    assert_build_ok(tmp_path / "out", stats)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    assert sorted((r["reason"], r["id_or_row"]) for r in rejects) == [
        ("duplicate_id", "ucf/train/v_ApplyEyeMakeup_g01_c01"),
        ("label_mismatch", "ucf/train/v_Archery_g01_c01"),
        ("malformed_row", "trainlist01.txt:5"),
        ("missing_file", "ucf/train/v_Archery_g02_c01"),
        ("no_audio_stream", "ucf/train/v_Archery_g03_c01"),
        ("unknown_class", "ucf/train/v_Archery_g01_c02"),
        ("unknown_class", "ucf/train/v_Bowling_g01_c01"),
    ]
    assert stats["splits"]["train"] == {**stats["splits"]["train"], "in": 8, "written": 1, "rejected": 7}


def test_no_release_and_bad_fold_are_clear_errors(tmp_path: Path, real_root: Path) -> None:
    with pytest.raises(BuilderError, match="ucfTrainTestlist"):
        list(get_builder("ucf").entries(tmp_path))
    with pytest.raises(BuilderError, match="fold"):
        list(get_builder("ucf", fold=4).entries(real_root / "ucf101"))
