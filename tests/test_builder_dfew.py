"""dfew (DFEW): the 5-fold lists (both file layouts), label 0 rejected as non-single-label, clip lookup."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder

from avuie.media.synth import make_video
from tests.buildkit import assert_build_ok, build_source, scan_counts


def _split_csv(root: Path, split: str, fold: int, rows: list[str], header: str = "video_name,label") -> None:
    folder = root / "EmoLabel_DataSplit" / f"{split}(single-labeled)"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"set_{fold}.csv").write_text(
        "\n".join([header, *rows] if header else rows) + "\n", encoding="utf-8-sig"
    )


def test_lists_labels_and_clip_lookup(tmp_path: Path) -> None:
    _split_csv(tmp_path, "train", 2, ["1,1", "00017,4", "203,7"])
    _split_csv(tmp_path, "test", 2, ["16372,3"], header="")  # no header line
    make_video(tmp_path / "Clip" / "clip_224x224" / "00017.avi", duration=2.0, size=(64, 48), fps=10)
    (tmp_path / "Clip" / "clip_224x224" / "00001.mp4").write_bytes(b"")
    records = [r for r in get_builder("dfew", fold=2).entries(tmp_path) if isinstance(r, Record)]
    assert [(r.split, r.native_id, r.target.label, r.target.original_label) for r in records] == [
        ("train", "00001", "happy", "1"),
        ("train", "00017", "angry", "4"),
        ("train", "00203", "fear", "7"),
        ("test", "16372", "neutral", "3"),
    ]
    assert records[1].media[0].path.name == "00017.avi"  # the extension that exists
    assert records[2].media[0].path == tmp_path / "Clip" / "clip_224x224" / "00203.mp4"
    assert scan_counts("dfew", tmp_path, fold=2)["train"] == {"records": 3, "rejected": 0, "media_missing": 1}


def test_authors_code_layout_is_read_too(tmp_path: Path) -> None:
    (tmp_path / "label").mkdir()
    (tmp_path / "label" / "single_trainset_1.csv").write_text("video_name,label\n5,2\n")
    (tmp_path / "label" / "single_testset_1.csv").write_text("video_name,label\n6,5\n")
    counts = scan_counts("dfew", tmp_path)
    assert {s: c["records"] for s, c in counts.items()} == {"train": 1, "test": 1}


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("dfew", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=4)
    assert stats["totals"]["rejected"] == 0
    assert {it["sample"]["id"] for it in items} == {
        "dfew/test/00001", "dfew/train/00017", "dfew/train/00203", "dfew/train/16372",
    }  # fmt: skip
    assert all(len(it["files"]) == 5 for it in items)  # 4 frames + audio.wav


def test_bad_rows_end_as_rejects_with_reasons(tmp_path: Path) -> None:
    _split_csv(tmp_path, "train", 1, ["1,1", "2,0", "3,9", "4,happy", "5", "1,1", "6,2"])
    make_video(tmp_path / "Clip" / "original" / "00001.mp4", duration=2.0, size=(64, 48), fps=10)
    reasons = Counter(getattr(x, "reason", "ok") for x in get_builder("dfew").entries(tmp_path))
    assert reasons == {
        "ok": 2,
        "not_single_label": 1,
        "unknown_class": 1,
        "malformed_row": 2,
        "duplicate_id": 1,
    }
    stats = build_source("dfew", tmp_path / "out", raw=tmp_path)
    assert_build_ok(tmp_path / "out", stats)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    file = "EmoLabel_DataSplit/train(single-labeled)/set_1.csv"
    assert sorted((r["reason"], r["id_or_row"]) for r in rejects) == [
        ("duplicate_id", "dfew/train/00001"),
        ("malformed_row", f"{file}:6"),
        ("malformed_row", "dfew/train/00004"),
        ("missing_file", "dfew/train/00006"),
        ("not_single_label", "dfew/train/00002"),
        ("unknown_class", "dfew/train/00003"),
    ]
    assert stats["splits"]["train"] == {**stats["splits"]["train"], "in": 7, "written": 1, "rejected": 6}


def test_no_release_and_bad_fold_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="no DFEW split lists"):
        list(get_builder("dfew").entries(tmp_path))
    _split_csv(tmp_path, "train", 1, ["1,1"])
    with pytest.raises(BuilderError, match="fold=.first. is not an integer"):
        list(get_builder("dfew", fold="first").entries(tmp_path))
