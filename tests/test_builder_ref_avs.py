"""ref_avs (Ref-AVS): the real metadata scans to the paper's split counts with the 25 TODO rows rejected and the
repeated uids reported, the real frame-7 example builds, null references answer false, bad rows are rejected."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from avuie.builders import BuilderError, Record, get_builder
from PIL import Image

from avuie.build.scan import scan
from avuie.media.images import mask_geometry, resize_mask
from avuie.media.synth import make_audio, make_image, make_mask
from tests.buildkit import assert_build_ok, build_source, scan_counts

REAL_VID = "-8mcyL3kWNQ_8000_18000"


def test_real_metadata_scans_to_the_paper_counts(real_root: Path) -> None:
    report = scan("ref_avs", real_root / "ref_avs")
    counts = {s: (v["records"], v["rejected"]) for s, v in report["splits"].items()}
    assert counts == {
        "train": (14113, 0),
        "val": (1349, 0),
        "test_s": (2288, 0),
        "test_u": (1656, 0),
        "test_n": (1028, 0),
        "TODO": (0, 25),
    }
    # nothing else is rejected; the 11 repeated uids are reported, and each row stays its own sample
    assert report["reject_reasons"] == {"todo_split": 25}
    assert sum(s.get("notices", {}).get("duplicate_uid", 0) for s in report["splits"].values()) == 11
    records = [r for r in get_builder("ref_avs").read(real_root / "ref_avs") if isinstance(r, Record)]
    assert len(records) == 20459 - 25 and len({r.native_id for r in records}) == len(records)
    nulls = [r for r in records if r.target is not None]
    assert len(nulls) == 1028 + 680 and all(r.target.present is False for r in nulls)
    saw = sorted(r.native_id for r in records if r.native_id.startswith("MDyjY3uiWp0_297000_307000_saw_4"))
    assert saw == [
        "MDyjY3uiWp0_297000_307000_saw_4_row15289_f0",
        "MDyjY3uiWp0_297000_307000_saw_4_row19089_f0",
    ]


def test_real_example_builds_on_frame_7(real_root: Path, tmp_path: Path) -> None:
    stats = build_source("ref_avs", tmp_path / "out", raw=real_root / "ref_avs", splits=["test_u"])
    items = assert_build_ok(tmp_path / "out", stats, min_written=6)
    assert sorted(it["sample"]["native_id"] for it in items) == [
        f"{REAL_VID}_emergency-car_{n}_f7" for n in range(1, 7)
    ]
    assert stats["splits"]["test_u"]["reasons"] == {"missing_file": 1650}
    assert stats["splits"]["test_u"]["in"] == 1656
    assert stats["notices"]["test_u"] == {"duplicate_uid": 10}
    raw = np.asarray(Image.open(real_root / f"ref_avs/REFAVS/gt_mask/{REAL_VID}/fid_11/00007.png"))
    assert set(np.unique(raw)) == {0, 255}
    expected = resize_mask(raw > 0)
    for it in items:
        sample = it["sample"]
        (group,) = sample["target"]["groups"]
        assert sample["target"]["present"] is True and group["label"] == "emergency-car"
        assert group["box"] == mask_geometry(expected)[0]
        assert ((np.asarray(Image.open(io.BytesIO(it["files"]["mask_0.png"]))) > 127) == expected).all()
        assert sample["answer"].startswith("<answer>true</answer> The referred object is emergency-car.")
        assert (sample["media"][1]["start"], sample["media"][1]["duration"]) == (7.0, 1.0)
        assert sample["instruction"].count(sample["target"]["expression"]) == 1


ABSENT = "<answer>false</answer> The referred object is absent."


def test_bundled_sample_builds_every_split(tmp_path: Path) -> None:
    stats = build_source("ref_avs", tmp_path / "out")
    items = assert_build_ok(tmp_path / "out", stats, min_written=7)
    # 8 rows: 7 samples and the TODO row rejected; the repeated uid is a notice, not a reject
    assert stats["totals"] == {"in": 8, "written": 7, "rejected": 1}
    answers = {it["sample"]["id"]: it["sample"]["answer"] for it in items}
    assert answers["ref_avs/test_n/null_m-zX1cV3bN5mM_8000_18000_null_1_f0"] == ABSENT
    assert answers["ref_avs/train/null_m-qW3eR5tY7uI_14000_24000_null_1_f0"] == ABSENT
    assert answers["ref_avs/train/qW3eR5tY7uI_14000_24000_dog_1_f0"].startswith(
        "<answer>true</answer> The referred object is dog."
    )
    repeated = sorted(i for i in answers if "emergency-car_1" in i)
    assert repeated == [
        "ref_avs/test_u/zX1cV3bN5mM_8000_18000_emergency-car_1_row5_f0",
        "ref_avs/test_u/zX1cV3bN5mM_8000_18000_emergency-car_1_row6_f0",
    ]
    assert stats["splits"]["TODO"]["reasons"] == {"todo_split": 1}
    assert stats["splits"]["test_u"]["reasons"] == {}
    assert stats["notices"]["test_u"] == {"duplicate_uid": 1}
    null = next(it for it in items if it["sample"]["split"] == "test_n")
    assert set(null["files"]) == {"image.jpg", "audio.wav"}  # no mask for an absent object
    # the expression with a comma survived the CSV reader
    dog = next(it for it in items if "dog_1" in it["sample"]["id"])
    assert dog["sample"]["target"]["expression"] == "The dog barking on the left, near the fence."


def _tree(root: Path) -> Path:
    ds = root / "REFAVS"
    vid = "aB1_0_10000"
    rows = [
        f"{vid},{vid}_dog_1,train,0,The dog.",  # good
        f"{vid},dogonly,train,0,Not <vid>_<object>_<n>.",  # malformed uid
        f"{vid},{vid}_dog_2,train,0,",  # empty expression
        f"{vid},{vid}_dog_3,train,x,The dog.",  # bad fid
        f"{vid},{vid}_kazoo_1,train,0,The kazoo.",  # unknown object
        f"{vid},{vid}_dog_4,test_x,0,The dog.",  # unknown split
        f"{vid},{vid}_dog_5,val,1,The dog that is not there.",  # empty mask in fid_1
        f"{vid},{vid}_dog_6,val,2,The dog with no mask folder.",  # missing mask
    ]
    ds.mkdir(parents=True)
    (ds / "metadata.csv").write_bytes(("\ufeffvid,uid,split,fid,exp\n" + "\n".join(rows) + "\n").encode())
    for i in range(10):
        make_image(ds / "media" / vid / "frames" / f"{i}.jpg", (80, 60), seed=i)
        make_mask(ds / "gt_mask" / vid / "fid_0" / f"{i:05d}.png", (80, 60), [("rect", (10, 10, 40, 40))])
        make_mask(ds / "gt_mask" / vid / "fid_1" / f"{i:05d}.png", (80, 60), [])
    make_audio(ds / "media" / vid / "audio.wav", duration=10.0)
    return ds


def test_bad_rows_and_masks_are_rejected_with_their_reasons(tmp_path: Path) -> None:
    _tree(tmp_path)
    stats = build_source("ref_avs", tmp_path / "out", raw=tmp_path)  # a BOM + LF copy of the metadata
    (it,) = assert_build_ok(tmp_path / "out", stats)
    assert it["sample"]["id"] == "ref_avs/train/aB1_0_10000_dog_1_f0"
    assert stats["splits"]["train"]["reasons"] == {
        "malformed_row": 2,
        "empty_expression": 1,
        "unknown_class": 1,
    }
    assert stats["splits"]["test_x"]["reasons"] == {"unknown_split": 1}
    assert stats["splits"]["val"]["reasons"] == {"empty_mask": 1, "missing_file": 1}
    rejects = pq.read_table(tmp_path / "out" / "rejects.parquet").to_pylist()
    empty = next(r for r in rejects if r["reason"] == "empty_mask")
    assert empty["detail"] and empty["annotation_row"] == "7"


def test_frame_parameter_and_dropping_repeats(tmp_path: Path) -> None:
    ds = _tree(tmp_path)
    records = [r for r in get_builder("ref_avs", frame=4).read(ds) if isinstance(r, Record)]
    assert records[0].native_id == "aB1_0_10000_dog_1_f4" and records[0].media[1].start == 4.0
    every = [r.native_id for r in get_builder("ref_avs", frame="all").read(ds) if isinstance(r, Record)]
    assert every[:10] == [f"aB1_0_10000_dog_1_f{i}" for i in range(10)]
    with pytest.raises(BuilderError, match="frame"):
        list(get_builder("ref_avs", frame=12).read(ds))
    with open(ds / "metadata.csv", "a") as fh:
        fh.write("aB1_0_10000,aB1_0_10000_dog_1,train,0,The dog.\n")
    assert scan_counts("ref_avs", ds, duplicates="drop")["train"]["rejected"] == 5
    assert scan_counts("ref_avs", ds)["train"]["rejected"] == 4  # kept: reported, still a record
    with pytest.raises(BuilderError, match="no Ref-AVS release"):
        list(get_builder("ref_avs").read(tmp_path / "nothing"))
