"""ms3 (AVSBench MS3): the real metadata scans to 296/64/64, the real masks build (semantic values and the v2 RGB
palette), one group per sounding class, the object release's `.mp4_` frames and its class-less masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from avuie.builders import BuilderError, get_builder
from avuie.builders._avsbench import load_palette_names
from avuie.builders._masks import class_masks
from PIL import Image

from avuie.build.scan import scan
from avuie.samples.s4 import generate_object_release
from tests.buildkit import assert_build_ok, build_source

SEMANTIC = ("avsbench", "semantic")


def test_real_metadata_scans_to_the_paper_counts(real_root: Path) -> None:
    report = scan("ms3", real_root / "avsbench")
    splits = report["splits"]
    assert {s: (v["records"], v["rejected"]) for s, v in splits.items()} == {
        "train": (296, 0),
        "val": (64, 0),
        "test": (64, 0),
    }
    assert report["reject_reasons"] == {}
    assert {s: v["samples"] for s, v in splits.items()} == {"train": 1480, "val": 320, "test": 320}


def test_real_semantic_values_name_boy_and_man(real_root: Path) -> None:
    sem = real_root.joinpath(*SEMANTIC)
    values = np.asarray(Image.open(sem / "v1m/3vheOi4y540_1/labels_semantic/1.png"))
    classes = class_masks(values, "semantic", load_palette_names(sem))
    assert [(name, int(mask.sum())) for name, mask in classes] == [("boy", 15), ("man", 204622)]


def test_real_example_builds_and_drops_stray_edge_pixels(real_root: Path, tmp_path: Path) -> None:
    stats = build_source("ms3", tmp_path / "out", raw=real_root / "avsbench", splits=["test"])
    items = assert_build_ok(tmp_path / "out", stats)
    assert [it["sample"]["native_id"] for it in items] == ["3vheOi4y540_1_f1"]
    sample = items[0]["sample"]
    # the 15 pixels of value 9 (boy) lie on the edge of the man region: annotation noise below min_area
    assert [g["label"] for g in sample["target"]["groups"]] == ["man"]
    assert sample["media"][0]["original_size"] == [1280, 720]
    assert (sample["media"][1]["start"], sample["media"][1]["duration"]) == (1.0, 1.0)


def test_real_v2_rgb_mask_builds_to_clarinet(real_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "AVSBench-semantic"
    root.mkdir()
    for name in ("v1s", "v1m", "v2", "label2idx.json"):
        (root / name).symlink_to(real_root.joinpath(*SEMANTIC, name))
    (root / "metadata.csv").write_text(
        "vid,uid,s_min,s_sec,a_obj,split,label\n_aldtLqTVYI,_aldtLqTVYI_1000_11000,0,1,clarinet,train,v2\n"
    )
    stats = build_source("ms3", tmp_path / "out", raw=tmp_path, params={"subsets": "v1m,v2"})
    items = assert_build_ok(tmp_path / "out", stats)
    assert [it["sample"]["native_id"] for it in items] == ["_aldtLqTVYI_1000_11000_f0"]
    assert [g["label"] for g in items[0]["sample"]["target"]["groups"]] == ["clarinet"]
    assert stats["splits"]["train"]["in"] == 10  # v2 clips: 10 annotated frames
    assert items[0]["sample"]["media"][-1]["source_path"].endswith("labels_rgb/0.png")


def test_bundled_sample_builds_one_group_per_sounding_class(tmp_path: Path) -> None:
    stats = build_source("ms3", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=10)
    assert stats["totals"] == {"in": 10, "written": 10, "rejected": 0}  # the v2 clip is not read by default
    labels = {
        it["sample"]["native_id"]: [g["label"] for g in it["sample"]["target"]["groups"]] for it in items
    }
    assert labels["e4Rt6yUi8oP_2_f0"] == ["boy", "man"] and labels["e4Rt6yUi8oP_2_f2"] == ["boy"]
    assert labels["f0Gh1jK2lZx_1_f4"] == ["piano", "violin"]  # palette order
    two = next(it for it in items if it["sample"]["native_id"] == "e4Rt6yUi8oP_2_f0")
    assert {"mask_0.png", "mask_1.png"} <= set(two["files"])
    # the RGB masks of the same release give the same targets
    stats = build_source("ms3", tmp_path / "rgb", params={"mask_encoding": "rgb"})
    rgb = {
        it["sample"]["native_id"]: it["sample"]["target"] for it in assert_build_ok(tmp_path / "rgb", stats)
    }
    assert rgb == {it["sample"]["native_id"]: it["sample"]["target"] for it in items}


def test_object_release_masks_name_no_class(tmp_path: Path) -> None:
    generate_object_release(tmp_path)
    report = scan("ms3", tmp_path)
    assert report["reject_reasons"] == {"mask_without_class": 2}
    assert {s: v["rejected"] for s, v in report["splits"].items()} == {"train": 1, "test": 1}
    stats = build_source("ms3", tmp_path / "out", raw=tmp_path, params={"binary_label": "man"})
    items = assert_build_ok(tmp_path / "out", stats, min_written=10)
    first = next(it["sample"] for it in items if it["sample"]["native_id"] == "n5Mq6Wr7Ty8_36_f0")
    assert first["media"][0]["source_path"].endswith("visual_frames/n5Mq6Wr7Ty8_36/n5Mq6Wr7Ty8_36.mp4_1.png")
    assert first["target"]["groups"][0]["label"] == "man"
    with pytest.raises(BuilderError, match="binary_label"):
        get_builder("ms3", binary_label="kazoo")
