"""shards/layout.py: the names of shards, parts and markers, and the listings, against a real build."""

from __future__ import annotations

import json

import pytest
from avuie.shards import layout

from tests.buildkit import build_source


def test_names_round_trip():
    shard = layout.shard_name("ref_avs", "test_u", 3)
    assert shard == "ref_avs-test_u-00003"
    assert [layout.part_name(shard, k) for k in range(3)] == [
        "ref_avs-test_u-00003.tar",
        "ref_avs-test_u-00003-1.tar",
        "ref_avs-test_u-00003-2.tar",
    ]
    assert layout.done_name(shard) == "ref_avs-test_u-00003.done.json"
    assert layout.shard_of_done(layout.split_dir("/o", "test_u") / layout.done_name(shard)) == shard
    assert layout.shard_rel("test_u", "x.tar") == "shards/test_u/x.tar"
    assert layout.tmp_path("/o/a.tar").name == "a.tar.tmp"
    assert layout.build_of_tar("/o/shards/train/x.tar").as_posix() == "/o"


@pytest.mark.parametrize(
    ("tar", "expected"),
    [
        ("ave-train-00000.tar", ["ave-train-00000.done.json", "ave-train.done.json"]),
        ("ave-train-00000-2.tar", ["ave-train-00000-2.done.json", "ave-train-00000.done.json"]),
        ("plain.tar", ["plain.done.json"]),
    ],
)
def test_done_candidates(tar, expected):
    assert layout.done_candidates(tar) == expected


def test_listings_match_what_a_multi_part_build_wrote(tmp_path):
    out = tmp_path / "ave"
    stats = build_source("ave", out, shard_size=4, shard_bytes=150_000)
    markers = layout.list_done(out)
    tars = layout.list_tars(out)
    assert len(markers) >= 2 and any("-1.tar" in t.name for t in tars)  # several shards, one in parts
    listed = {marker.parent / t for marker in markers for t in json.loads(marker.read_text())["tars"]}
    assert listed == set(tars) == set(layout.find_shards(out))
    assert sum(s["shards"] for s in stats["splits"].values()) == len(tars)
    assert layout.find_manifests(tmp_path) == [out / layout.MANIFEST]
    for tar in tars:
        assert any((tar.parent / name).exists() for name in layout.done_candidates(tar.name))
    assert list(layout.temp_files(out)) == []
    with pytest.raises(FileNotFoundError):
        layout.find_shards(tmp_path / "nowhere")
