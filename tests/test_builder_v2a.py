"""v2a: one video and two audios drawn from a labelled source (default AVE), seeded and class-disjoint."""

from __future__ import annotations

from pathlib import Path

from avuie.builders import Record, get_builder

from tests.buildkit import assert_build_ok, build_source, scan_counts


def _pairs(raw: Path, **params) -> list[Record]:
    return [r for r in get_builder("v2a", **params).read(raw) if isinstance(r, Record)]


def test_real_ave_pairs_are_class_disjoint_and_seeded(real_root: Path) -> None:
    raw = real_root / "ave"
    counts = scan_counts("v2a", raw)
    assert {s: c["records"] for s, c in counts.items()} == {"train": 3312, "val": 401, "test": 402}
    labels: dict[str, set[str]] = {}
    for r in get_builder("ave").read(raw):
        if isinstance(r, Record):
            labels.setdefault(r.media[0].path.name, set()).add(r.target.label)
    pairs = _pairs(raw, seed=3)
    for p in pairs:
        video, a1, a2 = p.media
        assert (video.role, video.audio_role, a1.role, a1.file, a2.role, a2.file) == (
            "video", None, "audio_1", "audio_1.wav", "audio_2", "audio_2.wav",
        )  # fmt: skip
        positive, negative = (a1, a2) if p.target.answer_index == 0 else (a2, a1)
        assert positive.path == video.path and not labels[negative.path.name] & labels[video.path.name]
        assert p.target.direction == "v2a"
    key = [(p.native_id, p.target.answer_index, p.media[1].path, p.media[2].path) for p in pairs]
    assert key == [
        (p.native_id, p.target.answer_index, p.media[1].path, p.media[2].path) for p in _pairs(raw, seed=3)
    ]
    assert key != [
        (p.native_id, p.target.answer_index, p.media[1].path, p.media[2].path) for p in _pairs(raw, seed=4)
    ]


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("v2a", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=7)
    assert stats["totals"]["rejected"] == 0
    for it in items:
        s = it["sample"]
        video, a1, a2 = s["media"]
        assert video["frame_count"] == 10 and a1["sample_rate"] == a2["sample_rate"] == 16000
        assert (a1, a2)[s["target"]["answer_index"]]["source_path"] == video["source_path"]
        assert s["answer"] == f"<answer>{s['target']['answer_index'] + 1}</answer>."  # Crab+'s form
        assert set(it["files"]) == {f"frame_{i:02d}.jpg" for i in range(10)} | {"audio_1.wav", "audio_2.wav"}
