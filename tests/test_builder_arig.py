"""arig (audio-referred image grounding on S4): the S4 rows scan as s4 does, the real mask grounds `mower`, the
box is the tight box of the mask, five 1 s audio segments, the largest class wins, empty masks are rejected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from avuie.build.scan import scan
from avuie.media.images import mask_geometry, resize_mask
from avuie.media.synth import make_audio, make_image, make_mask
from tests.buildkit import assert_build_ok, build_source


def test_real_metadata_scans_as_s4(real_root: Path) -> None:
    report = scan("arig", real_root / "avsbench")
    assert {s: (v["records"], v["rejected"]) for s, v in report["splits"].items()} == {
        "train": (3452, 0),
        "val": (740, 0),
        "test": (740, 0),
    }
    assert report["reject_reasons"] == {}


def test_real_example_grounds_the_mower(real_root: Path, tmp_path: Path) -> None:
    stats = build_source("arig", tmp_path / "out", raw=real_root / "avsbench", splits=["test"])
    items = assert_build_ok(tmp_path / "out", stats)
    assert [it["sample"]["native_id"] for it in items] == ["_4R3qHn1n50_0_5000_f0"]
    sample = items[0]["sample"]
    raw = np.asarray(Image.open(real_root / "avsbench/semantic/v1s/_4R3qHn1n50_0_5000/labels_semantic/0.png"))
    box = mask_geometry(resize_mask(raw == 45))[0]
    assert sample["target"] == {"kind": "grounding", "label": "mower", "box": box, "frame_size": [224, 224]}
    x1, y1, x2, y2 = box
    assert (
        sample["answer"]
        == f"The sounding object is mower. Its coordinates are <obj>({x1},{y1})({x2},{y2})</obj>."
    )
    image, audio = sample["media"]  # grounding writes no mask
    assert image["kind"] == "image" and audio["kind"] == "audio"
    assert abs(audio["duration"] - 5.0) < 0.02 and audio["start"] == 0.0
    assert audio["segments"] == [[float(k), float(k + 1)] for k in range(5)]
    # the grounding example HxMoMMrA6Eo ships frame 1 without its mask: a missing file, not a crash
    assert stats["splits"]["test"]["reasons"] == {"missing_file": 3699}


def test_bundled_sample_boxes_equal_the_s4_boxes(tmp_path: Path) -> None:
    stats = build_source("arig", tmp_path / "arig")
    items = assert_build_ok(tmp_path / "arig", stats, min_written=12)
    s4 = assert_build_ok(tmp_path / "s4", build_source("s4", tmp_path / "s4"), min_written=12)
    s4_boxes = {it["sample"]["native_id"]: it["sample"]["target"]["groups"][0] for it in s4}
    for it in items:
        target = it["sample"]["target"]
        group = s4_boxes[it["sample"]["native_id"]]
        assert (target["label"], target["box"]) == (group["label"], group["box"])
        assert set(it["files"]) == {"image.jpg", "audio.wav"}


def test_largest_class_wins_and_empty_masks_are_rejected(tmp_path: Path) -> None:
    root = tmp_path / "sem"
    (root / "v1s").mkdir(parents=True)
    (root / "metadata.csv").write_text(
        "vid,uid,s_min,s_sec,a_obj,split,label\nm,m_0_5000,0,0,x,train,v1s\nn,n_0_5000,0,0,x,train,v1s\n"
    )
    for uid, shapes in (
        ("m_0_5000", [("rect", (5, 5, 30, 30), 17), ("rect", (60, 20, 150, 110), 41)]),
        ("n_0_5000", []),
    ):
        clip = root / "v1s" / uid
        make_image(clip / "frames" / "0.jpg", (160, 120))
        make_mask(clip / "labels_semantic" / "0.png", (160, 120), shapes)
        make_audio(clip / "audio.wav", duration=5.0)
    stats = build_source("arig", tmp_path / "out", raw=root)
    (it,) = assert_build_ok(tmp_path / "out", stats)
    painted = np.zeros((120, 160), bool)
    painted[20:111, 60:151] = True
    assert it["sample"]["target"]["label"] == "man"  # 41 + 1 = man, larger than the dog (17 + 1)
    assert it["sample"]["target"]["box"] == mask_geometry(resize_mask(painted))[0]
    assert stats["splits"]["train"]["reasons"] == {"empty_mask": 1}
