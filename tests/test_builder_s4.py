"""s4 (AVSBench S4): the real metadata scans to 3452/740/740, the real mask builds to `mower`, both release
layouts build, boxes and points are exact on masks of known geometry, and bad rows and masks are rejected."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from avuie.builders import BuilderError, Record, get_builder
from avuie.schemas.classes import AVSBENCH_LABEL2IDX_NAMES
from PIL import Image
from typer.testing import CliRunner

from avuie.build.scan import scan
from avuie.cli import app
from avuie.media.images import mask_geometry, resize_mask, voc_palette
from avuie.media.synth import make_audio, make_image, make_mask
from avuie.samples.s4 import CLIPS, SIZE, generate_object_release
from tests.buildkit import assert_build_ok, build_source, scan_counts

HEADER = "vid,uid,s_min,s_sec,a_obj,split,label\n"


def decoded_mask(data: bytes) -> np.ndarray:
    """A written mask member as a bool array."""
    return np.asarray(Image.open(io.BytesIO(data))) > 127


def semantic_clip(root: Path, subset: str, uid: str, masks: dict, size=SIZE, frames=5, rgb=False) -> None:
    """A semantic-release clip folder; `masks` = {frame: [(palette index, box)]} (boxes inclusive)."""
    clip = root / subset / uid
    for i in range(frames):
        make_image(clip / "frames" / f"{i}.jpg", size, seed=i)
    for i, objects in masks.items():
        if rgb:
            shapes = [("rect", box, tuple(int(c) for c in voc_palette()[p])) for p, box in objects]
            make_mask(clip / "labels_rgb" / f"{i}.png", size, shapes, value=(0, 0, 0), mode="RGB")
        else:
            make_mask(clip / "labels_semantic" / f"{i}.png", size, [("rect", box, p) for p, box in objects])
    make_audio(clip / "audio.wav", duration=float(frames))


def test_real_metadata_scans_to_the_paper_counts(real_root: Path) -> None:
    report = scan("s4", real_root / "avsbench")
    splits = report["splits"]
    assert {s: (v["records"], v["rejected"]) for s, v in splits.items()} == {
        "train": (3452, 0),
        "val": (740, 0),
        "test": (740, 0),
    }
    assert report["reject_reasons"] == {}  # every real row parses
    # train clips are annotated on their first frame only, val/test on all five
    assert {s: v["samples"] for s, v in splits.items()} == {"train": 3452, "val": 3700, "test": 3700}


def test_real_rows_point_at_the_semantic_clip_folders(real_root: Path) -> None:
    records = [
        r
        for r in get_builder("s4").entries(real_root / "avsbench")
        if isinstance(r, Record) and r.context["uid"] == "_4R3qHn1n50_0_5000"
    ]
    assert [r.native_id for r in records] == [f"_4R3qHn1n50_0_5000_f{i}" for i in range(5)]
    image, audio, mask = records[0].media
    clip = real_root / "avsbench" / "semantic" / "v1s" / "_4R3qHn1n50_0_5000"
    assert image.path == clip / "frames" / "0.jpg" and mask.path == clip / "labels_semantic" / "0.png"
    assert mask.encoding == "semantic" and audio.path == clip / "audio.wav"
    assert (records[3].media[1].start, records[3].media[1].duration) == (3.0, 1.0)
    assert records[0].context["category"] == "lawn mowing" and records[0].entry == "s4_meta_data.csv:2163"


def test_real_example_builds_to_mower(real_root: Path, tmp_path: Path) -> None:
    stats = build_source("s4", tmp_path / "out", raw=real_root / "avsbench", splits=["test"])
    items = assert_build_ok(tmp_path / "out", stats)
    assert [it["sample"]["native_id"] for it in items] == ["_4R3qHn1n50_0_5000_f0"]
    assert stats["splits"]["test"]["reasons"] == {"missing_file": 3699}
    sample, files = items[0]["sample"], items[0]["files"]
    raw = np.asarray(Image.open(real_root / "avsbench/semantic/v1s/_4R3qHn1n50_0_5000/labels_semantic/0.png"))
    assert set(np.unique(raw)) == {0, 45}  # 45 + 1 = label2idx of mower
    expected = resize_mask(raw == 45, (224, 224))
    assert (decoded_mask(files["mask_0.png"]) == expected).all()
    (group,) = sample["target"]["groups"]
    box, points = mask_geometry(expected)
    assert group["label"] == "mower" and group["box"] == box and group["points"] == points
    assert sample["answer"].startswith(
        "The object making the sound in the video is mower. Its bounding box is ["
    )
    media = {m["role"]: m for m in sample["media"]}
    assert media["image"]["original_size"] == [720, 540] and media["mask_0"]["original_size"] == [720, 540]
    assert media["audio"]["sample_rate"] == 16000 and abs(media["audio"]["duration"] - 1.0) < 0.02


def test_semantic_metadata_csv_is_read_when_present(real_root: Path, tmp_path: Path) -> None:
    # The semantic release's metadata.csv is not public: rows for the real uids, in its documented columns.
    root = tmp_path / "AVSBench-semantic"
    root.mkdir()
    for name in ("v1s", "v1m", "v2", "label2idx.json"):
        (root / name).symlink_to(real_root / "avsbench" / "semantic" / name)
    (root / "metadata.csv").write_text(
        HEADER + "_4R3qHn1n50,_4R3qHn1n50_0_5000,0,0,mower,test,v1s\n"
        "HxMoMMrA6Eo,HxMoMMrA6Eo_0_5000,0,0,bus,test,v1s\n"
        '3vheOi4y540,3vheOi4y540_1,0,0,"boy,man",test,v1m\n'
    )
    assert scan_counts("s4", tmp_path) == {"test": {"records": 2, "rejected": 0, "media_missing": 2}}
    stats = build_source("s4", tmp_path / "out", raw=tmp_path)
    items = assert_build_ok(tmp_path / "out", stats)
    assert [it["sample"]["id"] for it in items] == ["s4/test/_4R3qHn1n50_0_5000_f0"]
    assert items[0]["sample"]["provenance"]["annotation_file"] == "metadata.csv"
    # HxMoMMrA6Eo ships frame 1 without its mask: every other frame lacks a file
    assert stats["splits"]["test"]["reasons"] == {"missing_file": 9}


def test_bundled_sample_builds_and_reads_back(tmp_path: Path) -> None:
    stats = build_source("s4", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=12)
    assert stats["totals"] == {"in": 12, "written": 12, "rejected": 0}
    by_id = {it["sample"]["native_id"]: it for it in items}
    assert {n for n in by_id if n.startswith(("aZ3k", "b7Hq"))} == {
        "aZ3kP0s9LmQ_0_5000_f0",
        "b7Hq2xWcYk0_3000_8000_f0",
    }
    for _vid, uid, *_, subset, masks in CLIPS:
        if subset != "v1s":
            continue
        for i, objects in masks.items():
            it = by_id[f"{uid}_f{i}"]
            (label, box) = objects[0]
            painted = np.zeros(SIZE[::-1], bool)
            painted[box[1] : box[3] + 1, box[0] : box[2] + 1] = True
            (group,) = it["sample"]["target"]["groups"]
            assert group["label"] == label and group["box"] == mask_geometry(resize_mask(painted))[0]
            assert len(it["files"]) == 3  # image.jpg, audio.wav, mask_0.png
            assert Image.open(io.BytesIO(it["files"]["image.jpg"])).size == (224, 224)


def test_boxes_are_tight_and_points_inside_on_masks_of_known_geometry(tmp_path: Path) -> None:
    root = tmp_path / "sem"
    root.mkdir()
    (root / "metadata.csv").write_text(HEADER + "kG1,kG1_0_5000,0,0,x,train,v1s\n")
    boy, man = (20, 30, 90, 150), (120, 40, 200, 210)
    semantic_clip(root, "v1s", "kG1_0_5000", {0: [(9, boy), (41, man)]}, size=(224, 224))
    stats = build_source("s4", tmp_path / "out", raw=root)
    (it,) = assert_build_ok(tmp_path / "out", stats)
    groups = it["sample"]["target"]["groups"]
    assert [(g["label"], g["box"]) for g in groups] == [("boy", list(boy)), ("man", list(man))]
    for g in groups:
        mask = decoded_mask(it["files"][g["mask"]])
        assert len(g["points"]) == 3 and all(mask[y, x] for x, y in g["points"])


def test_values_are_named_by_the_release_label2idx(tmp_path: Path) -> None:
    root = tmp_path / "sem"
    root.mkdir()
    table = {name: i + 1 for i, name in enumerate(AVSBENCH_LABEL2IDX_NAMES)}
    table["boy"], table["violin"] = table["violin"], table["boy"]  # a release with another order
    (root / "label2idx.json").write_text(json.dumps(table))
    (root / "metadata.csv").write_text(HEADER + "kG2,kG2_0_5000,0,0,x,train,v1s\n")
    semantic_clip(root, "v1s", "kG2_0_5000", {0: [(table["violin"] - 1, (10, 10, 60, 60))]})
    (it,) = assert_build_ok(tmp_path / "out", build_source("s4", tmp_path / "out", raw=root))
    assert [g["label"] for g in it["sample"]["target"]["groups"]] == ["violin"]


def test_rgb_masks_decode_through_the_voc_palette(tmp_path: Path) -> None:
    root = tmp_path / "sem"
    root.mkdir()
    (root / "metadata.csv").write_text(
        HEADER + "kG3,kG3_0_5000,0,0,x,train,v1s\nkG4,kG4_0_5000,0,0,x,train,v1s\n"
    )
    semantic_clip(root, "v1s", "kG3_0_5000", {0: [(14, (30, 20, 100, 90))]}, rgb=True)  # 14 + 1 = clarinet
    semantic_clip(root, "v1s", "kG4_0_5000", {0: [(14, (30, 20, 100, 90))]}, rgb=True)
    make_mask(root / "v1s/kG4_0_5000/labels_rgb/0.png", SIZE, [("rect", (5, 5, 50, 50))], (1, 2, 3), "RGB")
    stats = build_source("s4", tmp_path / "out", raw=root)
    (it,) = assert_build_ok(tmp_path / "out", stats)
    assert [g["label"] for g in it["sample"]["target"]["groups"]] == ["clarinet"]
    assert stats["splits"]["train"]["reasons"] == {"unknown_colour": 1}  # a colour outside the palette


def test_object_release_layout_builds_with_the_category_as_class(tmp_path: Path) -> None:
    generate_object_release(tmp_path)
    stats = build_source("s4", tmp_path / "out", raw=tmp_path)
    items = assert_build_ok(tmp_path / "out", stats, min_written=6)
    labels = {it["sample"]["native_id"]: it["sample"]["target"]["groups"][0]["label"] for it in items}
    assert labels == {"k8Lp0Oi9Uy7_0_5000_f0": "lawn mowing"} | {
        f"m1Nb2Vc3Xz4_2000_7000_f{i}": "dog barking" for i in range(5)
    }
    it = next(it for it in items if it["sample"]["native_id"] == "k8Lp0Oi9Uy7_0_5000_f0")
    painted = np.zeros(SIZE[::-1], bool)
    painted[30:101, 30:121] = True
    assert it["sample"]["target"]["groups"][0]["box"] == mask_geometry(resize_mask(painted))[0]
    assert it["sample"]["media"][0]["source_path"].endswith("k8Lp0Oi9Uy7/k8Lp0Oi9Uy7_1.png")


def test_bad_semantic_rows_and_masks_are_rejected_with_their_reasons(tmp_path: Path) -> None:
    root = tmp_path / "sem"
    root.mkdir()
    rows = [
        "a,a_0_5000,0,0,x,train,v1s",  # good
        "b,,0,0,x,train,v1s",  # empty uid
        "c,c_0_5000,0,0,x,dev,v1s",  # unknown split
        "d,d_0_5000,0,0,x,train,v3",  # unknown subset
        "a,a_0_5000,0,0,x,train,v1s",  # the same clip again
        "e,e_0_5000,0,0,x,train,v1s",  # nothing sounds
        "f,f_0_5000,0,0,x,train,v1s",  # a value outside label2idx
        "g,g_0_5000,0,0,x,train,v1s",  # no clip folder
        "h,h_1,0,0,x,train,v1m",  # ms3's row: not an s4 entry
    ]
    (root / "metadata.csv").write_text(HEADER + "\n".join(rows) + "\n")
    semantic_clip(root, "v1s", "a_0_5000", {0: [(45, (10, 10, 50, 50))]})
    semantic_clip(root, "v1s", "e_0_5000", {0: []})
    semantic_clip(root, "v1s", "f_0_5000", {0: [(200, (10, 10, 50, 50))]})
    stats = build_source("s4", tmp_path / "out", raw=root)
    assert_build_ok(tmp_path / "out", stats)
    assert stats["splits"]["train"]["reasons"] == {
        "malformed_row": 1,
        "unknown_subset": 1,
        "duplicate_id": 1,
        "empty_mask": 1,
        "unknown_class": 1,
        "missing_file": 1,
    }
    assert stats["splits"]["dev"]["reasons"] == {"unknown_split": 1}
    assert stats["totals"]["written"] == 1 and stats["totals"]["in"] == 8
    import pyarrow.parquet as pq

    details = {
        r["id_or_row"]: r["detail"] for r in pq.read_table(tmp_path / "out/rejects.parquet").to_pylist()
    }
    assert details["s4/train/e_0_5000_f0"]
    assert details["s4/train/f_0_5000_f0"].startswith("mask value 200")


def test_bad_object_rows_are_rejected_and_an_empty_root_is_an_error(tmp_path: Path) -> None:
    meta = tmp_path / "Single-source" / "s4_meta_data.csv"
    meta.parent.mkdir()
    meta.write_text(
        "name,start,category,split\nok1,0,helicopter,train\nbad1,0,kazoo_playing,train\n"
        "bad2,abc,helicopter,val\n,0,helicopter,test\nbad3,1,helicopter,dev\n"
    )
    report = scan("s4", tmp_path)
    assert report["reject_reasons"] == {"unknown_class": 1, "malformed_row": 2, "unknown_split": 1}
    assert report["splits"]["train"]["records"] == 1
    with pytest.raises(BuilderError, match="no AVSBench release"):
        list(get_builder("s4").entries(tmp_path / "Single-source" / "nothing"))


def test_cli_lists_the_segmentation_sources_and_builds_s4(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["sources"])
    assert listed.exit_code == 0, listed.output
    for name in ("s4", "ms3", "arig", "ref_avs"):
        assert name in listed.output
    built = runner.invoke(app, ["build", "--source", "s4", "--out", str(tmp_path / "x")])
    assert built.exit_code == 0, built.output
    assert json.loads((tmp_path / "x" / "stats.json").read_text())["totals"]["written"] == 12
