"""a2v: pairs from a labelled source (default AVE): negatives of another class, balanced answers, seeded draws."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from avuie.builders import BuilderError, Record, Reject, get_builder

from avuie.samples import ensure_sample
from tests.buildkit import assert_build_ok, build_source, scan_counts


def _pairs(raw: Path, **params) -> list[Record]:
    return [r for r in get_builder("a2v", **params).read(raw) if isinstance(r, Record)]


def _clip_labels(raw: Path) -> dict[str, set[str]]:
    """Every AVE video's labels (45 real videos have two events)."""
    labels: dict[str, set[str]] = {}
    for r in get_builder("ave").read(raw):
        if isinstance(r, Record):
            labels.setdefault(r.media[0].path.name, set()).add(r.target.label)
    return labels


def test_real_ave_gives_one_pair_per_clip(real_root: Path) -> None:
    counts = scan_counts("a2v", real_root / "ave")
    # distinct videos per split (27 train and 1 val videos carry two rows)
    assert {s: (c["records"], c["rejected"]) for s, c in counts.items()} == {
        "train": (3312, 0),
        "val": (401, 0),
        "test": (402, 0),
    }


def test_negatives_never_share_the_query_class_and_answers_are_balanced(real_root: Path) -> None:
    raw = real_root / "ave"
    labels = _clip_labels(raw)
    pairs = _pairs(raw)
    for p in pairs:
        audio, v1, v2 = p.media
        t = p.target
        positive, negative = (v1, v2) if t.answer_index == 0 else (v2, v1)
        assert positive.path == audio.path  # the audio's own clip
        assert not labels[negative.path.name] & labels[audio.path.name]
        assert t.query_label in labels[audio.path.name]
        assert t.candidate_labels[1 - t.answer_index] in labels[negative.path.name]
        assert (v1.role, v1.prefix, v1.audio_role, v2.role, v2.prefix) == (
            "video_1",
            "v1_",
            None,
            "video_2",
            "v2_",
        )
    by_split = Counter((p.split, p.target.answer_index) for p in pairs)
    for split in ("train", "val", "test"):
        assert abs(by_split[(split, 0)] - by_split[(split, 1)]) <= 1
    # a two-event video is one clip carrying both labels
    double = next(
        p for p in pairs if p.native_id.startswith("-ccciEuH9FE") or len(labels[p.media[0].path.name]) > 1
    )
    assert len(labels[double.media[0].path.name]) == 2


def test_a_fixed_seed_reproduces_the_pairs_and_another_seed_changes_them(real_root: Path) -> None:
    raw = real_root / "ave"

    def draw(seed: object) -> list[tuple]:
        return [(p.native_id, p.target.answer_index, p.media[1].path.name, p.media[2].path.name)
                for p in _pairs(raw, seed=seed)]  # fmt: skip

    first = draw(7)
    assert first == draw(7)
    other = draw(8)
    assert [x[0] for x in other] == [x[0] for x in first]  # same queries
    assert sum(a != b for a, b in zip(first, other, strict=True)) > len(first) // 2


def test_real_clips_build_end_to_end(real_root: Path, tmp_path: Path) -> None:
    ds = tmp_path / "AVE_Dataset"
    (ds / "AVE").mkdir(parents=True)
    real_row = next(
        line
        for line in (real_root / "ave/AVE_Dataset/Annotations.txt").read_text().splitlines()
        if "&-67UNKFmRLk&" in line
    )
    # a second real clip (the LLP chainsaw clip) placed as an AVE video of another class
    (ds / "testSet.txt").write_text(f"{real_row}\nChainsaw&6aV6c8mY0lg&good&0&10\n")
    (ds / "trainSet.txt").write_text("Category&VideoID&Quality&StartTime&EndTime\n")  # header only
    (ds / "AVE" / "-67UNKFmRLk.mp4").symlink_to(real_root / "ave/AVE_Dataset/AVE/-67UNKFmRLk.mp4")
    (ds / "AVE" / "6aV6c8mY0lg.mp4").symlink_to(real_root / "llp/data/LLP_dataset/video/6aV6c8mY0lg.mp4")
    stats = build_source("a2v", tmp_path / "out", raw=tmp_path)
    items = assert_build_ok(tmp_path / "out", stats, min_written=2)
    by_id = {it["sample"]["native_id"]: it for it in items}
    violin = by_id["-67UNKFmRLk_violin_fiddle"]["sample"]
    audio, v1, v2 = violin["media"]
    assert audio["role"] == "audio" and audio["sample_rate"] == 16000 and len(audio["segments"]) == 10
    assert (v1["role"], v2["role"]) == ("video_1", "video_2") and v1["frame_count"] == v2["frame_count"] == 10
    sizes = {tuple(v1["original_size"]), tuple(v2["original_size"])}
    assert sizes == {(450, 360), (352, 288)}
    assert set(violin["target"]["candidate_labels"]) == {"Violin, fiddle", "Chainsaw"}
    assert violin["target"]["query_label"] == "Violin, fiddle"
    files = set(by_id["-67UNKFmRLk_violin_fiddle"]["files"])
    assert {"audio.wav", "v1_frame_00.jpg", "v2_frame_09.jpg"} <= files and len(files) == 21


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("a2v", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=7)
    assert stats["totals"]["rejected"] == 0
    for it in items:
        s = it["sample"]
        audio, v1, v2 = s["media"]
        positive = (v1, v2)[s["target"]["answer_index"]]
        assert positive["source_path"] == audio["source_path"]
        assert s["answer"] == f"<answer>{s['target']['answer_index'] + 1}</answer>."  # Crab+'s form


def test_another_pair_source_and_splits_without_negatives(tmp_path: Path) -> None:
    raw = ensure_sample("meld")  # train: joy and surprise clips; val and test: one clip each
    items = list(get_builder("a2v", pair_source="meld").read(raw))
    pairs = [x for x in items if isinstance(x, Record)]
    assert [(p.split, p.target.query_label) for p in pairs] == [("train", "joy"), ("train", "surprise")]
    assert pairs[0].media[0].duration == 4.0  # the pair source's own audio request (emotion: first 4 s)
    rejects = [x for x in items if isinstance(x, Reject)]
    assert sorted((r.split, r.reason) for r in rejects) == [("test", "no_negative"), ("val", "no_negative")]


def test_bad_parameters_are_clear_errors(real_root: Path) -> None:
    with pytest.raises(BuilderError, match="itself a pair builder"):
        _pairs(real_root / "ave", pair_source="v2a")
    with pytest.raises(BuilderError, match="unknown source 'nope'"):
        _pairs(real_root / "ave", pair_source="nope")
    with pytest.raises(BuilderError, match="holds no AVE_Dataset"):
        _pairs(real_root / "meld")
