"""cremad (CREMA-D): 7442 real clips, labels from the file names, a deterministic actor-disjoint split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder
from avuie.builders.cremad import actor_split

from avuie.media.synth import make_audio, make_video
from tests.buildkit import assert_build_ok, build_source, scan_counts


def test_real_listing_scans_to_7442_clips_in_actor_disjoint_splits(real_root: Path) -> None:
    counts = scan_counts("cremad", real_root / "crema_d")
    assert sum(c["records"] for c in counts.values()) == 7442
    assert all(c["rejected"] == 0 and c["media_missing"] == c["records"] for c in counts.values())
    assert {s: c["records"] for s, c in counts.items()} == {"train": 5978, "val": 726, "test": 738}
    records = [r for r in get_builder("cremad").entries(real_root / "crema_d") if isinstance(r, Record)]
    actors: dict[str, set[int]] = {}
    for r in records:
        actors.setdefault(r.split, set()).add(r.context["actor"])
    assert [len(actors[s]) for s in ("train", "val", "test")] == [73, 9, 9]
    assert not (
        actors["train"] & actors["val"] or actors["train"] & actors["test"] or actors["val"] & actors["test"]
    )
    labels = Counter(r.target.label for r in records)
    assert labels == {
        "happy": 1271,
        "sad": 1271,
        "anger": 1271,
        "fear": 1271,
        "disgust": 1271,
        "neutral": 1087,
    }


def test_label_and_media_come_from_the_file_name(real_root: Path) -> None:
    first = next(r for r in get_builder("cremad").entries(real_root / "crema_d") if isinstance(r, Record))
    assert first.native_id == "1001_IEO_NEU_XX" and first.split == "train"
    assert first.target.label == "neutral" and first.target.original_label == "NEU"
    video, audio = first.media
    assert video.path.parts[-2:] == ("VideoFlash", "1001_IEO_NEU_XX.flv") and video.audio_role is None
    assert audio.path.parts[-2:] == ("AudioWAV", "1001_IEO_NEU_XX.wav") and audio.duration == 4.0
    assert (first.annotation_file, first.annotation_row) == ("SentenceFilenames.csv", 1)


def test_the_split_rule_and_its_override() -> None:
    assert [actor_split(a) for a in (1001, 1008, 1009, 1010, 1011, 1090, 1091)] == [
        "train", "train", "val", "test", "train", "test", "train",
    ]  # fmt: skip
    assert actor_split(1001, {1001}, {1002}) == "val" and actor_split(1002, {1001}, {1002}) == "test"
    assert actor_split(1009, {1001}, None) == "train"


def test_override_lists_move_actors(real_root: Path) -> None:
    counts = scan_counts("cremad", real_root / "crema_d", val_actors=[1001, 1002], test_actors="1003")
    assert {s: c["records"] for s, c in counts.items()} == {"train": 7197, "val": 163, "test": 82}
    with pytest.raises(BuilderError, match="actor ids"):
        list(get_builder("cremad", test_actors="abc").entries(real_root / "crema_d"))


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("cremad", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats)
    assert {it["sample"]["split"] for it in items} <= {"train", "val", "test"}
    for it in items:
        video, audio = it["sample"]["media"]
        assert video["source_path"].endswith(".flv") and audio["source_path"].endswith(".wav")
        assert video["frame_count"] == 4 and audio["sample_rate"] == 16000


def test_every_bundled_flv_clip_builds(tmp_path: Path) -> None:
    stats = build_source("cremad", tmp_path / "out")
    assert stats["totals"] == {"in": 4, "written": 4, "rejected": 0}


def test_listing_from_the_media_folders_and_bad_names(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    for name in ("1001_IEO_NEU_XX", "1001_IEO_XYZ_XX", "1001_ABC_ANG_HI", "0999_IEO_ANG_HI", "1001_IEO_ANG"):
        (raw / "AudioWAV").mkdir(parents=True, exist_ok=True)
        (raw / "AudioWAV" / f"{name}.wav").write_bytes(b"")
    reasons = Counter(getattr(x, "reason", "ok") for x in get_builder("cremad").entries(raw))
    assert reasons == {"ok": 1, "unknown_class": 1, "malformed_name": 3}


def test_bad_rows_end_as_rejects_with_reasons(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    names = ["1001_IEO_ANG_HI", "1001_IEO_ZZZ_HI", "1001_IEO-ANG-HI", "1001_IEO_ANG_HI", "1002_TIE_SAD_LO"]
    rows = ['"Stimulus_Number","Filename"'] + [f'{i},"{n}"' for i, n in enumerate(names, start=1)]
    (raw / "SentenceFilenames.csv").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8-sig")
    make_video(raw / "VideoFlash" / "1001_IEO_ANG_HI.flv", duration=2.0, size=(64, 48), fps=10)
    make_audio(raw / "AudioWAV" / "1001_IEO_ANG_HI.wav", duration=2.0)
    make_audio(raw / "AudioWAV" / "1002_TIE_SAD_LO.wav", duration=2.0)  # its video is missing
    assert scan_counts("cremad", raw)["train"] == {"records": 2, "rejected": 3, "media_missing": 1}
    stats = build_source("cremad", tmp_path / "out", raw=raw)
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    got = sorted((r["reason"], r["id_or_row"]) for r in rejects if r["reason"] != "corrupt_media")
    assert got == [
        ("duplicate_id", "cremad/train/1001_IEO_ANG_HI"),
        ("malformed_name", "SentenceFilenames.csv:3"),
        ("missing_file", "cremad/train/1002_TIE_SAD_LO"),
        ("unknown_class", "cremad/train/1001_IEO_ZZZ_HI"),
    ]
    assert stats["splits"]["train"]["in"] == 5
    assert (
        stats["splits"]["train"]["in"]
        == stats["splits"]["train"]["written"] + stats["splits"]["train"]["rejected"]
    )


def test_no_release_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BuilderError, match="no CREMA-D release"):
        list(get_builder("cremad").entries(tmp_path))
