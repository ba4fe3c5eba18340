"""avvp (LLP / AVVP): the real CSVs scan to 10000/649/1200, the real clip builds, the sample builds, bad rows reject."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder

from avuie.build.scan import scan
from avuie.media.synth import make_video
from tests.buildkit import assert_build_ok, build_source, scan_counts

HEADER = "filename\tevent_labels"
DENSE_HEADER = "filename\tonset\toffset\tevent_labels"


def test_real_csvs_scan_to_the_official_counts(real_root: Path) -> None:
    report = scan("avvp", real_root / "llp")
    counts = {s: (v["records"], v["rejected"]) for s, v in report["splits"].items()}
    # the release's bad dense rows are their own reject entries; every video still parses
    assert counts == {"train": (10000, 0), "val": (649, 1), "test": (1200, 4)}
    assert report["splits"]["val"]["reject_reasons"] == {"invalid_span": 1}
    assert report["splits"]["test"]["reject_reasons"] == {"empty_segment": 4}
    assert report["splits"]["test"]["media_missing"] == 1199  # only 6aV6c8mY0lg.mp4 is there


def test_real_rows_give_weak_and_dense_targets(real_root: Path) -> None:
    items = list(get_builder("avvp").entries(real_root / "llp"))
    records = {r.native_id: r for r in items if isinstance(r, Record)}
    weak = records["BjCEufrlXm4_20_30"].target
    assert weak.weak and weak.audio == {"Dog": [(0, 10)], "Speech": [(0, 10)]} and weak.visual == weak.audio
    # rows '9 0 Cheering' (inverted) is left out; Speech 0-2 and 7-10 stay separate runs
    t = records["8DF2PxdT5tE_390_400"].target
    assert not t.weak and "Cheering" not in t.audio
    assert t.audio["Speech"] == [(0, 2), (7, 10)] and t.visual["Speech"] == [(7, 8), (9, 10)]
    assert t.audio_visual() == {"Basketball_bounce": [(2, 8)], "Speech": [(7, 8), (9, 10)]}
    # ids beginning with '-' and fractional starts keep their YouTube id
    frac = records["AP0061o0Nvk_101.8_111.8"]
    assert frac.media[0].path.name == "AP0061o0Nvk.mp4"


def test_real_clip_builds_end_to_end(real_root: Path, tmp_path: Path) -> None:
    stats = build_source("avvp", tmp_path / "out", raw=real_root / "llp", splits=["test"])
    assert stats["splits"]["test"]["written"] == 1
    items = assert_build_ok(tmp_path / "out", stats)
    sample = items[0]["sample"]
    assert sample["native_id"] == "6aV6c8mY0lg_30_40"
    assert sample["target"]["audio"] == {"Chainsaw": [[0, 10]]}
    assert sample["target"]["visual"] == {"Chainsaw": [[0, 1], [3, 6], [9, 10]]}
    assert sample["answer"] == (
        "<audio_event>Chainsaw,(0 10)</audio_event> <visual_event>Chainsaw,(0 1),(3 6),(9 10)</visual_event>"
    )
    video, audio = sample["media"]
    assert video["frame_count"] == 10 and video["original_size"] == [352, 288]
    assert audio["sample_rate"] == 16000 and abs(audio["duration"] - 10.0) < 0.05
    assert len(audio["segments"]) == 10


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("avvp", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=4)
    by_id = {it["sample"]["native_id"]: it["sample"] for it in items}
    val = by_id["8sfcMZ8A3OQ_180_190"]["target"]
    assert val["audio"]["Speech"] == [[2, 7]]  # overlapping rows merged
    assert "Speech" not in val["visual"] and not val["weak"]
    assert by_id["-4O9rI-FpqL_10_20"]["target"]["weak"]
    assert stats["splits"]["test"]["reasons"] == {"empty_segment": 1}
    assert all(len(it["files"]) == 11 for it in items)  # 10 frames + audio.wav


def _bad_tree(root: Path) -> Path:
    data = root / "data"
    (data / "LLP_dataset" / "video").mkdir(parents=True)
    (data / "AVVP_train.csv").write_text(
        "\r\n".join(
            [
                HEADER,
                "goodclip001_0_10\tDog",
                "nolabelsep_0_10",  # no tab: malformed
                "unknownclas_0_10\tDog,Unicorn",  # unknown class
                "notaname\tDog",  # no <id>_<start>_<end>
                "goodclip001_0_10\tDog",  # duplicate
                "missingclip_0_10\tSpeech",  # no media file
            ]
        )
        + "\r\n",
        encoding="utf-8-sig",
    )
    (data / "AVVP_val_pd.csv").write_text(f"{HEADER}\nvalclip0001_5_15\tDog,Cat\nnodenseclip_0_10\tDog\n")
    (data / "AVVP_eval_audio.csv").write_text(
        f"{DENSE_HEADER}\nvalclip0001_5_15\t6\t2\tDog\nvalclip0001_5_15\t0\t4\tCat\n"
        "valclip0001_5_15\t0\t12\tCat\nvalclip0001_5_15\tx\t3\tCat\n"
    )
    (data / "AVVP_eval_visual.csv").write_text(f"{DENSE_HEADER}\nvalclip0001_5_15\t1\t3\tGiraffe\n")
    for name in ("goodclip001", "valclip0001"):
        make_video(data / "LLP_dataset" / "video" / f"{name}.mp4", duration=10.0, size=(96, 64), fps=5)
    return root


def test_bad_rows_end_as_rejects_with_reasons(tmp_path: Path) -> None:
    raw = _bad_tree(tmp_path / "raw")
    assert scan_counts("avvp", raw)["train"] == {"records": 2, "rejected": 4, "media_missing": 1}
    stats = build_source("avvp", tmp_path / "out", raw=raw)
    assert_build_ok(tmp_path / "out", stats)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    got = sorted((r["split"], r["reason"], r["id_or_row"]) for r in rejects)
    assert got == [
        ("train", "duplicate_id", "avvp/train/goodclip001_0_10"),
        ("train", "malformed_row", "AVVP_train.csv:3"),
        ("train", "malformed_row", "AVVP_train.csv:5"),
        ("train", "missing_file", "avvp/train/missingclip_0_10"),
        ("train", "unknown_class", "avvp/train/unknownclas_0_10"),
        ("val", "invalid_span", "AVVP_eval_audio.csv:2"),
        ("val", "invalid_span", "AVVP_eval_audio.csv:4"),
        ("val", "malformed_row", "AVVP_eval_audio.csv:5"),
        ("val", "no_dense_labels", "avvp/val/nodenseclip_0_10"),
        ("val", "unknown_class", "AVVP_eval_visual.csv:2"),
    ]
    assert stats["splits"]["train"] == {**stats["splits"]["train"], "in": 6, "written": 1, "rejected": 5}
    assert stats["splits"]["val"]["written"] == 1  # Cat 0-4 survives its bad sibling rows


def test_no_release_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="no LLP release"):
        list(get_builder("avvp").entries(tmp_path))
