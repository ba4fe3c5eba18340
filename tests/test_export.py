"""`avuie export`: the Crab+ layout, a Hugging Face dataset and LLaMA-Factory sharegpt JSON, read back."""

from __future__ import annotations

import io
import json
import re
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from avuie.builders.instructions import instruction
from avuie.schemas import Sample, Target, make_key, make_sample_id, render_answer
from avuie.schemas.vocab import AVS_CLASSES
from avuie.shards.derived import finalize_build
from avuie.shards.writer import TarShardWriter, write_json_atomic
from PIL import Image
from pydantic import TypeAdapter
from typer.testing import CliRunner

from avuie.build.assemble import content_hash, manifest_row, sample_members
from avuie.cli import app
from avuie.export.common import ExportError, ExportOptions, decode_wav, encode_wav
from avuie.export.registry import export
from avuie.media import ffmpeg
from tests.buildkit import build_source

runner = CliRunner()
RNG = np.random.default_rng(0)


# ---------------------------------------------------------------- a build of image and two-video tasks


def _jpeg(seed: int) -> bytes:
    pixels = np.full((224, 224, 3), seed * 20 % 255, dtype=np.uint8)
    pixels[: 10 + seed, :, 0] = 255
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _mask() -> bytes:
    m = np.zeros((224, 224), dtype=np.uint8)
    m[40:120, 50:150] = 255
    buf = io.BytesIO()
    Image.fromarray(m, "L").save(buf, format="PNG")
    return buf.getvalue()


def _tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _sample(source: str, family: str, native: str, media_items: list, target: dict, instr: str) -> dict:
    sid = make_sample_id(source, "train", native)
    answer = render_answer(TypeAdapter(Target).validate_python(target))
    return {
        "id": sid,
        "key": make_key(sid),
        "source": source,
        "family": family,
        "split": "train",
        "native_id": native,
        "media": media_items,
        "instruction": instr,
        "target": target,
        "answer": answer,
        "reasoning": "I look and listen, and the evidence points one way.",
        "response": f"I look and listen, and the evidence points one way. {answer}",
        "provenance": {"annotation_file": "synthetic", "builder": source, "builder_version": "1"},
        "license": "test licence",
    }


def _segmentation(source: str, frame: int) -> tuple[dict, dict[str, bytes]]:
    label = AVS_CLASSES[0]
    items = [
        {
            "kind": "image",
            "role": "image",
            "files": ["image.jpg"],
            "source_path": f"/raw/v1m/clip/frames/{frame}.jpg",
        },
        {
            "kind": "audio",
            "role": "audio",
            "files": ["audio.wav"],
            "start": float(frame),
            "duration": 1.0,
            "sample_rate": 16000,
        },
        {"kind": "mask", "role": "mask_0", "files": ["mask_0.png"]},
    ]
    target = {
        "kind": "segmentation",
        "groups": [
            {
                "label": label,
                "box": [50, 40, 149, 119],
                "points": [[60, 50], [100, 80], [140, 110]],
                "mask": "mask_0.png",
            }
        ],
    }
    d = _sample(source, "segmentation", f"clip_{frame}", items, target, instruction(source))
    files = {"image.jpg": _jpeg(frame), "audio.wav": encode_wav(_tone(1.0, 300 + 50 * frame), 16000)}
    return d, files | {"mask_0.png": _mask()}


def _a2v() -> tuple[dict, dict[str, bytes]]:
    frames = {f"v{k}_frame_{i:02d}.jpg": _jpeg(i + k) for k in (1, 2) for i in range(10)}
    items = [
        {"kind": "audio", "role": "audio", "files": ["audio.wav"], "duration": 10.0, "sample_rate": 16000},
        *[
            {
                "kind": "video_frames",
                "role": f"video_{k}",
                "files": [f"v{k}_frame_{i:02d}.jpg" for i in range(10)],
                "duration": 10.0,
                "frame_count": 10,
            }
            for k in (1, 2)
        ],
    ]
    target = {
        "kind": "matching",
        "direction": "a2v",
        "answer_index": 1,
        "query_label": "Bark",
        "candidate_labels": ["Church bell", "Bark"],
    }
    d = _sample("a2v", "cross_modal_matching", "pair_0", items, target, instruction("a2v"))
    return d, {"audio.wav": encode_wav(_tone(10.0, 440), 16000), **frames}


def _write_build(out: Path, source: str, family: str, samples: list[tuple[dict, dict[str, bytes]]]) -> None:
    """Write real shards (validated samples) with the pipeline's writer, markers and parquet tables."""
    shard_dir = out / "shards" / "train"
    writer = TarShardWriter(shard_dir / f"{source}-train-00000.tar")
    rows = []
    for d, files in samples:
        sample = Sample.model_validate(d)
        sample.content_hash = content_hash(sample.model_dump(mode="json"), files)
        nbytes = writer.write(sample.key, sample_members(sample, files))
        rows.append(manifest_row(sample, f"shards/train/{source}-train-00000.tar", nbytes))
    writer.close()
    marker = {"split": "train", "tars": [f"{source}-train-00000.tar"], "in": len(rows), "manifest": rows}
    write_json_atomic(shard_dir / f"{source}-train-00000.done.json", marker | {"rejects": []})
    finalize_build(out, [], {"source": source, "family": family})
    write_json_atomic(out / "build.json", {"source": source, "family": family, "license": "test licence"})


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ave (the bundled sample, real pipeline) + s4, ms3 and a2v builds of hand-made valid samples."""
    base = tmp_path_factory.mktemp("export_builds")
    build_source("ave", base / "ave")
    _write_build(base / "s4", "s4", "segmentation", [_segmentation("s4", 2)])
    _write_build(base / "ms3", "ms3", "segmentation", [_segmentation("ms3", f) for f in (0, 3)])
    _write_build(base / "a2v", "a2v", "cross_modal_matching", [_a2v()])
    return base


def _manifest_counts(root: Path) -> dict[str, int]:
    from avuie.catalog.db import open_catalog

    rows = open_catalog([root]).rows("SELECT split, count(*) AS n FROM samples GROUP BY 1")
    return {r["split"]: r["n"] for r in rows}


def _frame_count(mp4: Path) -> int:
    proc = ffmpeg.run_ffmpeg([ffmpeg.ffmpeg_exe(), "-hide_banner", "-i", str(mp4), "-f", "null", "-"])
    return int(re.findall(r"frame=\s*(\d+)", proc.stderr.decode())[-1])


# ---------------------------------------------------------------- crab-plus

# The Crab+ loader (GeWu-Lab/Crab_Plus dataset/qwen2_5_omni/omni_dataset.py): the keys each task indexes, and
# the folder its media keys are joined onto (None: the task folder itself).
LOADER_KEYS = {
    "ave": ["video_path", "audio_path", "event", "vid", "start_time", "end_time", "label_content"],
    "a2v": ["video1_path", "video2_path", "audio_path", "correct_video", "audio_event", "video1_event"]
    + ["video2_event", "label"],
    "s4": ["image_path", "audio_path", "vid", "uid", "a_obj", "label_content"],
    "ms3": ["image_path", "audio_path", "vid", "uid", "a_obj", "frame_idx", "label_content"],
}
MEDIA_FOLDER = {"video_path": "video", "video1_path": "video", "video2_path": "video", "audio_path": "audio"}


def _loader_paths(task_dir: Path, task: str, entry: dict[str, Any]) -> list[Path]:
    image_task = task in ("s4", "ms3", "arig", "ref_avs")
    paths = []
    for key in ("video_path", "video1_path", "video2_path", "audio_path", "image_path", "mask_path"):
        if key in entry:
            folder = None if image_task else MEDIA_FOLDER.get(key)
            paths.append(task_dir / folder / entry[key] if folder else task_dir / entry[key])
    return paths


def test_crab_plus_has_every_file_the_loader_opens(root: Path, tmp_path: Path) -> None:
    summary = export([root], "crab-plus", tmp_path / "crab", ExportOptions(workers=2))
    base = tmp_path / "crab" / "AVUIE_2"
    assert json.loads((base / "export.json").read_text())["files"] == summary["files"]
    assert {p.name for p in (base / "ave").glob("*.json")} == {"train.json", "val.json", "test.json"}
    for task, keys in LOADER_KEYS.items():
        entries = json.loads((base / task / "train.json").read_text())
        assert entries, task
        for e in entries:
            assert all(k in e for k in keys), (task, set(keys) - set(e))
            assert e["output"].endswith(answer_of(e))
            paths = _loader_paths(base / task, task, e)
            assert paths and all(p.is_file() for p in paths), (task, [p for p in paths if not p.is_file()])
            assert "<video_start><video><video_end>" in e["instruction"] or task in ("s4", "ms3")
    # the mp4s hold exactly the sampled frames (decord's nframes=10 reads them back)
    ave = json.loads((base / "ave" / "train.json").read_text())[0]
    assert _frame_count(base / "ave" / "video" / ave["video_path"]) == 10
    assert len(list((base / "ave" / "video" / ave["frames_path"]).glob("frame_*.jpg"))) == 10
    a2v = json.loads((base / "a2v" / "train.json").read_text())[0]
    assert a2v["correct_video"] == 2 and a2v["video2_event"] == "Bark"
    assert a2v["video1_path"] != a2v["video2_path"]


def answer_of(entry: dict[str, Any]) -> str:
    """The answer an entry's output ends with, rendered (default style) from the entry's own fields."""
    from avuie.schemas import MatchingTarget, SingleEventTarget

    task = entry["task_name"]
    if task == "ave":
        return render_answer(
            SingleEventTarget(label=entry["event"], start=entry["start_time"], end=entry["end_time"])
        )
    if task == "a2v":
        labels = (entry["video1_event"], entry["video2_event"])
        return render_answer(
            MatchingTarget(direction="a2v", answer_index=entry["correct_video"] - 1,
                           query_label=entry["audio_event"], candidate_labels=labels)
        )  # fmt: skip
    # s4/ms3: the Crab+ sentence naming the sounding objects starts the answer
    return entry["output"][entry["output"].index("The object making the sound") :]


def _crab_plus_audio_slice(wav: Path, task: str, idx: int) -> np.ndarray:
    """What the Crab+ audio processor feeds the model for s4/ms3 (second `idx` of a 5 s file)."""
    audio, sr = decode_wav(wav.read_bytes())
    per_second = int(len(audio) / 5)
    i = 0 if task == "s4" else idx
    return audio[i * per_second : (i + 1) * per_second]


def test_crab_plus_image_task_audio_lands_where_the_loader_cuts(root: Path, tmp_path: Path) -> None:
    export([root], "crab-plus", tmp_path / "crab", ExportOptions())
    base = tmp_path / "crab" / "AVUIE_2"
    for task, frames in (("s4", [2]), ("ms3", [0, 3])):
        entries = json.loads((base / task / "train.json").read_text())
        assert sorted(e.get("frame_idx", e.get("idx")) for e in entries) == frames
        for e in entries:
            idx = e.get("frame_idx", e.get("idx"))
            assert e["image_path"].endswith(f"/frames/{idx}.jpg")
            with wave.open(str(base / task / e["audio_path"])) as w:
                assert w.getnframes() == 5 * 16000 and w.getframerate() == 16000
            got = _crab_plus_audio_slice(base / task / e["audio_path"], task, idx)
            assert np.allclose(got, _tone(1.0, 300 + 50 * idx), atol=2e-4)
            mask = Image.open(base / task / e["mask_path"])
            assert mask.size == (224, 224) and set(np.unique(np.array(mask))) == {0, 255}


def test_crab_plus_val_policy(root: Path, tmp_path: Path) -> None:
    export([root], "crab-plus", tmp_path / "merged", ExportOptions(val_to="train", video="frames"))
    ave = tmp_path / "merged" / "AVUIE_2" / "ave"
    assert not (ave / "val.json").exists()
    counts = _manifest_counts(root / "ave")
    assert len(json.loads((ave / "train.json").read_text())) == counts["train"] + counts["val"]
    entry = json.loads((ave / "train.json").read_text())[0]
    assert (ave / "video" / entry["video_path"]).is_dir()  # --video frames: the folder of JPEGs
    assert not list((ave / "video").glob("*.mp4"))


# ---------------------------------------------------------------- hf


def test_hf_loads_back_with_decoded_media(root: Path, tmp_path: Path) -> None:
    import datasets

    export([root], "hf", tmp_path / "hf", ExportOptions(sources=["ave", "s4", "a2v"]))
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    counts = _manifest_counts(root / "ave")
    counts["train"] += 2  # s4 and a2v
    assert {k: len(v) for k, v in ds.items()} == counts
    audio_bytes = datasets.List(datasets.Audio(decode=False))  # no torchcodec needed
    rows = {r["source"]: r for r in ds["train"].cast_column("audio", audio_bytes)}
    ave = rows["ave"]
    assert len(ave["frames"]) == 10 and ave["frames"][0].size == (224, 224)
    assert len(ave["audio"]) == 1 and decode_wav(ave["audio"][0]["bytes"])[0].shape == (160000,)
    assert ave["target"]["kind"] == "single_event" and ave["target"]["caption"] is None
    assert ave["response"].endswith(ave["answer"])
    s4 = rows["s4"]
    assert len(s4["frames"]) == 1 and [m["kind"] for m in s4["media"]] == ["image", "audio", "mask"]
    assert s4["mask_files"] == ["mask_0.png"] and np.array(s4["masks"][0]).max() == 255
    pcm, rate = decode_wav(s4["audio"][0]["bytes"])
    assert rate == 16000 and np.allclose(pcm, _tone(1.0, 400), atol=2e-4)
    a2v = rows["a2v"]
    assert len(a2v["frames"]) == 20 and [m["role"] for m in a2v["media"]][1:] == ["video_1", "video_2"]
    # a filter that empties some splits leaves them out (no empty split in the DatasetDict)
    export([root], "hf", tmp_path / "hf_s4", ExportOptions(sources=["s4"]))
    assert {k: len(v) for k, v in datasets.load_from_disk(str(tmp_path / "hf_s4")).items()} == {"train": 1}


# ---------------------------------------------------------------- sharegpt


@pytest.mark.parametrize("video", ["mp4", "frames"])
def test_sharegpt_paths_exist_and_match_placeholders(root: Path, tmp_path: Path, video: str) -> None:
    dest = tmp_path / "lf"
    export([root], "sharegpt", dest, ExportOptions(video=video))
    info = json.loads((dest / "dataset_info.json").read_text())
    assert set(info) == {"avuie_train", "avuie_val", "avuie_test"}
    total = 0
    for entry in info.values():
        records = json.loads((dest / entry["file_name"]).read_text())
        total += len(records)
        for r in records:
            user = r["messages"][0]["content"]
            for kind in ("image", "video", "audio"):
                assert user.count(f"<{kind}>") == len(r[f"{kind}s"]), (r["id"], kind)
            for item in r["images"] + r["audios"] + r["videos"]:
                for p in item if isinstance(item, list) else [item]:
                    assert (dest / p).is_file(), p
            assert (
                r["messages"][1]["content"].rstrip(".").endswith((">", "]"))
                or "end_time:" in r["messages"][1]["content"]
            )
    assert total == sum(_manifest_counts(root).values())


# ---------------------------------------------------------------- CLI and errors


def test_export_cli_and_errors(root: Path, tmp_path: Path) -> None:
    dest = tmp_path / "cli"
    args = ["export", str(root / "ave"), "--format", "sharegpt", "--to", str(dest), "--split", "train"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert len(json.loads((dest / "train.json").read_text())) == _manifest_counts(root / "ave")["train"]
    assert not (dest / "val.json").exists()
    res = runner.invoke(app, args)  # not empty any more
    assert res.exit_code == 2 and "not empty" in " ".join(res.output.split())
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    res = runner.invoke(app, ["export", str(root), "--format", "parquet", "--to", str(tmp_path / "x")])
    assert res.exit_code == 2 and "unknown export format" in " ".join(res.output.split())
    with pytest.raises(ExportError, match="nothing to export"):
        export([root], "hf", tmp_path / "none", ExportOptions(sources=["no_such_source"]))
    assert not (tmp_path / "none").exists()
