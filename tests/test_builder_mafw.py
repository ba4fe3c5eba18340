"""mafw (MAFW): the 5-fold single-label lists, the fold parameter, clip lookup and bad lines."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder

from avuie.media.synth import make_video
from tests.buildkit import assert_build_ok, build_source, scan_counts

LISTS = Path("Train & Test Set") / "single" / "no_caption"


def _lists(root: Path, fold: int, train: list[str], test: list[str]) -> None:
    folder = root / LISTS / f"set_{fold}"
    folder.mkdir(parents=True)
    (folder / "train.txt").write_text("\r\n".join(train) + "\r\n")  # CRLF as Windows-made lists
    (folder / "test.txt").write_text("\n".join(test) + "\n")


def test_fold_parameter_picks_the_lists(tmp_path: Path) -> None:
    _lists(tmp_path, 1, ["00001.mp4 anger", "00002.mp4 contempt"], ["00003.mp4 neutral"])
    _lists(
        tmp_path, 3, ["00003.mp4 neutral"], ["00001.mp4 anger", "00002.mp4 11"]
    )  # index 11: disappointment
    assert {s: c["records"] for s, c in scan_counts("mafw", tmp_path).items()} == {"train": 2, "test": 1}
    records = [r for r in get_builder("mafw", fold=3).entries(tmp_path) if isinstance(r, Record)]
    assert [(r.split, r.native_id, r.target.label) for r in records] == [
        ("train", "00003", "neutral"),
        ("test", "00001", "anger"),
        ("test", "00002", "disappointment"),
    ]
    assert records[0].media[0].path == tmp_path / "data" / "clips" / "00003.mp4"
    assert records[0].annotation_file == "set_3/train.txt"
    with pytest.raises(BuilderError, match="fold"):
        list(get_builder("mafw", fold=6).entries(tmp_path))
    with pytest.raises(BuilderError, match="neither train.txt nor test.txt"):
        list(get_builder("mafw", fold=2).entries(tmp_path))


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("mafw", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=4)
    assert stats["totals"]["rejected"] == 0
    assert {it["sample"]["target"]["label"] for it in items} == {
        "anger",
        "helplessness",
        "happiness",
        "contempt",
    }
    for it in items:
        video, audio = it["sample"]["media"]
        assert video["frame_count"] == 4 and audio["duration"] <= 4.0 + 1e-6
    long_clip = next(it["sample"] for it in items if it["sample"]["native_id"] == "01207")
    assert abs(long_clip["media"][1]["duration"] - 4.0) < 0.01 and long_clip["media"][0]["duration"] > 4.4
    # another fold moves another clip into test
    stats2 = build_source("mafw", tmp_path / "out2", params={"fold": 2})
    test_ids = {
        it["sample"]["native_id"]
        for it in assert_build_ok(tmp_path / "out2", stats2)
        if it["sample"]["split"] == "test"
    }
    assert test_ids == {"00193"}


def test_bad_lines_end_as_rejects_with_reasons(tmp_path: Path) -> None:
    _lists(
        tmp_path,
        1,
        [
            "00001.mp4 anger",  # good
            "00002.mp4",  # no label
            "00003.mp4 boredom",  # unknown class
            "00001.mp4 anger",  # duplicate
            "00004.mp4 fear",  # no clip
            "00005.mp4 sadness extra",  # too many fields
        ],
        [],
    )
    make_video(tmp_path / "data" / "clips" / "00001.mp4", duration=2.0, size=(64, 48), fps=10)
    reasons = Counter(getattr(x, "reason", "ok") for x in get_builder("mafw").entries(tmp_path))
    assert reasons == {"ok": 2, "malformed_row": 2, "unknown_class": 1, "duplicate_id": 1}
    stats = build_source("mafw", tmp_path / "out", raw=tmp_path)
    assert_build_ok(tmp_path / "out", stats)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    assert sorted((r["reason"], r["id_or_row"]) for r in rejects) == [
        ("duplicate_id", "mafw/train/00001"),
        ("malformed_row", "set_1/train.txt:2"),
        ("malformed_row", "set_1/train.txt:6"),
        ("missing_file", "mafw/train/00004"),
        ("unknown_class", "mafw/train/00003"),
    ]
    assert stats["splits"]["train"] == {**stats["splits"]["train"], "in": 6, "written": 1, "rejected": 5}


def test_no_release_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="no MAFW split lists"):
        list(get_builder("mafw").entries(tmp_path))
