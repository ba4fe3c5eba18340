"""ks (Kinetics-Sounds): Kinetics CSV rows filtered by the class list, both clip layouts, bad rows reject."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder
from avuie.schemas.classes_clips import KINETICS_SOUNDS_DEFAULT

from avuie.media.synth import make_video
from tests.buildkit import assert_build_ok, build_source, scan_counts

HEADER = "label,youtube_id,time_start,time_end,split,is_cc"


def _records(raw: Path, **params) -> list:
    return list(get_builder("ks", **params).entries(raw))


def test_default_class_list_matches_kinetics_400_spellings(tmp_path: Path) -> None:
    rows = [
        "blowing out candles,aaaaaaaaaaa,10,20,train,0",  # paper name 'blowing out'
        "dribbling basketball,bbbbbbbbbbb,0,10,train,0",  # 'dribbling ball'
        "mowing lawn,ccccccccccc,5,15,train,0",  # 'mowing the lawn by pushing lawnmower'
        "stomping grapes,ddddddddddd,1,11,train,0",  # 'stomping'
        '"playing bass guitar",eeeeeeeeeee,3,13,train,0',  # quoted label
        "abseiling,fffffffffff,0,10,train,0",  # not Kinetics-Sounds: skipped
        "playing_piano,ggggggggggg,0,10,train,0",  # underscore spelling
    ]
    (tmp_path / "train.csv").write_text("\n".join([HEADER, *rows]) + "\n")
    records = [r for r in _records(tmp_path) if isinstance(r, Record)]
    assert [r.target.label for r in records] == [
        "blowing out candles", "dribbling basketball", "mowing lawn", "stomping grapes",
        "playing bass guitar", "playing piano",
    ]  # fmt: skip
    assert records[0].native_id == "aaaaaaaaaaa_000010_000020"
    assert len(KINETICS_SOUNDS_DEFAULT) == 34
    # a class-list parameter narrows the filter (list or comma-separated text)
    only = _records(tmp_path, classes="playing piano, mowing the lawn by pushing lawnmower")
    assert [r.target.label for r in only] == ["mowing lawn", "playing piano"]
    assert [r.target.label for r in _records(tmp_path, classes=["stomping"])] == ["stomping grapes"]


def test_splits_and_both_clip_layouts(tmp_path: Path) -> None:
    ann = tmp_path / "kinetics400" / "annotations"
    ann.mkdir(parents=True)
    (ann / "train.csv").write_text(f"{HEADER}\nplaying drums,vid_train_01,0,10,train,0\n")
    (ann / "validate.csv").write_text(f"{HEADER}\ntap dancing,vid_val_0001,20,30,validate,0\n")
    (ann / "test.csv").write_text(
        "youtube_id,time_start,time_end,split\nvid_test_001,0,10,test\n"
    )  # unlabelled
    # downloader layout with '_' for spaces (train), flat CVDF layout (val)
    make_video(tmp_path / "kinetics400" / "train" / "playing_drums" / "vid_train_01_000000_000010.mp4",
               duration=10.0, size=(64, 48), fps=5)  # fmt: skip
    make_video(
        tmp_path / "kinetics400" / "val" / "vid_val_0001_000020_000030.mp4",
        duration=10.0,
        size=(64, 48),
        fps=5,
    )
    assert scan_counts("ks", tmp_path) == {
        "train": {"records": 1, "rejected": 0, "media_missing": 0},
        "val": {"records": 1, "rejected": 0, "media_missing": 0},
    }
    stats = build_source("ks", tmp_path / "out", raw=tmp_path)
    items = assert_build_ok(tmp_path / "out", stats, min_written=2)
    sample = next(it["sample"] for it in items if it["sample"]["split"] == "val")
    assert (
        sample["id"] == "ks/val/vid_val_0001_000020_000030"
        and sample["answer"] == "<answer>tap dancing</answer>"
    )
    video, audio = sample["media"]
    assert video["frame_count"] == 10 and len(audio["segments"]) == 10 and abs(audio["duration"] - 10) < 0.05


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("ks", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=4)
    assert stats["totals"]["rejected"] == 0
    labels = sorted(it["sample"]["target"]["label"] for it in items)
    assert labels == ["blowing out candles", "playing drums", "playing violin", "tap dancing"]
    assert all(len(it["files"]) == 11 for it in items)


def test_bad_rows_end_as_rejects_with_reasons(tmp_path: Path) -> None:
    rows = [
        "playing violin,goodclip0001,0,10,train,0",  # good
        "playing violin,badtimes0001,zero,10,train,0",  # malformed times
        "playing violin,backwards001,20,10,train,0",  # end before start
        "playing violin,unknownsplt,0,10,holdout,0",  # split not train/val/test
        "playing violin,goodclip0001,0,10,train,0",  # duplicate
        "playing violin,missingclip1,0,10,train,0",  # no media
    ]
    (tmp_path / "kinetics_train.csv").write_text("\r\n".join([HEADER, *rows]) + "\r\n")
    make_video(tmp_path / "train" / "playing violin" / "goodclip0001_000000_000010.mp4", duration=10.0,
               size=(64, 48), fps=5)  # fmt: skip
    reasons = Counter(getattr(x, "reason", "ok") for x in _records(tmp_path))
    assert reasons == {"ok": 2, "malformed_row": 1, "invalid_span": 1, "unknown_split": 1, "duplicate_id": 1}
    stats = build_source("ks", tmp_path / "out", raw=tmp_path)
    assert_build_ok(tmp_path / "out", stats)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    assert sorted((r["reason"], r["id_or_row"]) for r in rejects) == [
        ("duplicate_id", "ks/train/goodclip0001_000000_000010"),
        ("invalid_span", "ks/train/backwards001_000020_000010"),
        ("malformed_row", "kinetics_train.csv:2"),
        ("missing_file", "ks/train/missingclip1_000000_000010"),
        ("unknown_split", "kinetics_train.csv:4"),
    ]
    assert stats["splits"]["train"] == {**stats["splits"]["train"], "in": 6, "written": 1, "rejected": 5}


def test_bad_parameters_and_no_release_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="no Kinetics CSV"):
        _records(tmp_path)
    (tmp_path / "train.csv").write_text("youtube_id,time_start,time_end,split\nx,0,10,train\n")
    with pytest.raises(BuilderError, match="no Kinetics CSV has the columns label,youtube_id"):
        _records(tmp_path)
    (tmp_path / "train.csv").write_text(f"{HEADER}\nplaying violin,x,0,10,train,0\n")
    with pytest.raises(BuilderError, match="'juggling fire' of parameter classes"):
        _records(tmp_path, classes="playing violin,juggling fire")


def test_real_kinetics400_val_list_scans_whole(real_root: Path) -> None:
    """The whole real Kinetics-400 validation list (19,906 rows): the 31 Kinetics-Sounds classes that exist in
    K400 give 1,544 clips, none rejected; the other rows are not Kinetics-Sounds entries."""
    raw = real_root / "kinetics"
    assert scan_counts("ks", raw) == {"val": {"records": 1544, "rejected": 0, "media_missing": 1544}}
    records = [r for r in _records(raw) if isinstance(r, Record)]
    per_class = Counter(r.target.label for r in records)
    assert len(per_class) == 31 and sum(per_class.values()) == 1544
    assert {"typing", "fingerpicking", "patting"}.isdisjoint(per_class)  # not Kinetics-400 classes
    first = next(r for r in records if r.native_id == "-3nc7ljnlFQ_000001_000011")
    assert first.target.label == "blowing nose" and first.media[0].path.parent.name == "blowing nose"
