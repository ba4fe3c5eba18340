"""The crab-plus export of every bundled sample, read with Crab+'s own rules (tests/crabkit.py).

Every task folder parses in OmniDataset's and OmniTestDataset's rules (every key, every media path), each image
task's frame gets its own second of audio in the slot the loader cuts, ground-truth masks are where the SAM2 step
looks, every task Crab+ evaluates has a test.json, the mp4s give decord every frame back, and no answer renders
differently from the ground truth Crab+'s test loader builds from the same entry.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from avuie.schemas.crab_media import CRAB_MEDIA, avqa_windows
from PIL import Image

from avuie.export.common import ExportOptions, decode_wav, iter_samples
from avuie.export.crab_fields import TEST_TASKS
from avuie.export.registry import export
from avuie.media import ffmpeg
from tests import crabkit
from tests.buildkit import build_source

SOURCES = sorted(CRAB_MEDIA)
EXACT_GT = ("a2v", "v2a", "ks", "ucf", "meld", "cremad", "mafw", "dfew", "ave", "avvp", "arig")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every bundled source built, exported to the Crab+ layout; the entries by file and the samples by id."""
    base = tmp_path_factory.mktemp("crab_all")
    for source in SOURCES:
        build_source(source, base / "builds" / source)
    builds = sorted((base / "builds").iterdir())
    export(builds, "crab-plus", base / "crab", ExportOptions(workers=2))
    root = base / "crab"
    files = {
        f"{p.parent.name}/{p.stem}": json.loads(p.read_text())
        for p in sorted((root / "AVUIE_2").glob("*/*.json"))
    }
    samples = {s["id"]: (s, f) for s, f in iter_samples(builds)}
    return {"root": str(root), "files": files, "samples": samples, "builds": builds, "base": base}


def _entries(exported: dict[str, Any], kinds: tuple[str, ...] = ("train", "test", "val")):
    for name, entries in exported["files"].items():
        task, file = name.split("/")
        if file in kinds:
            for e in entries:
                yield task, file, e, *exported["samples"][e["sample_id"]]


def test_every_bundled_sample_is_exported_and_every_evaluated_task_has_a_test_file(exported):
    names = set(exported["files"])
    assert {f"{t}/train" for t in SOURCES} <= names
    assert {f"{t}/test" for t in TEST_TASKS} <= names  # avqa_thu's val (AVQA has no test) goes to test.json
    assert "avqa_thu/val" not in names and "ave/val" in names
    n = sum(len(v) for v in exported["files"].values())
    assert n == len(exported["samples"]) >= 100


def test_every_entry_reads_in_crabs_train_and_test_loaders(exported):
    root = exported["root"]
    for task, file, e, sample, _ in _entries(exported):
        keys = crabkit.TRAIN_KEYS[task] + (crabkit.TEST_KEYS.get(task, ()) if task in TEST_TASKS else ())
        missing = [k for k in keys if k not in e]
        assert not missing, (task, file, missing)
        for key in crabkit.media_keys(task, keys):
            path = crabkit.media_path(root, task, key, e[key])
            assert os.path.isfile(path), (task, key, path)
        assert e[crabkit.TRAIN_OUTPUT.get(task, "label")] == sample["response"]
        if task == "arig":
            assert crabkit.arig_train_idx(e["image_path"]) == e["frame_idx"]


def _own_second(sample: dict[str, Any], files: dict[str, bytes]) -> np.ndarray:
    (audio,) = [m for m in sample["media"] if m["kind"] == "audio"]
    pcm, sr = decode_wav(files[audio["files"][0]])
    return pcm[:sr]


@pytest.mark.parametrize("loader", ["train", "test", "val"])
def test_each_frame_gets_its_own_second_of_audio_where_the_loader_cuts(exported, loader):
    """val.json is read by neither loader: renamed test.json, the test loader feeds each frame its own second."""
    checked = 0
    for task, _, e, sample, files in _entries(exported, (loader,)):
        if task not in ("s4", "ms3", "ref_avs"):
            continue
        idx = crabkit.train_audio_idx(task, e) if loader == "train" else e["frame_idx"]
        audio, sr = decode_wav(
            Path(crabkit.media_path(exported["root"], task, "audio_path", e["audio_path"])).read_bytes()
        )
        fed = crabkit.process_audio_by_task(audio, sr, task, idx)
        own = _own_second(sample, files)
        assert np.allclose(fed[: len(own)], own, atol=1e-4), (task, e["sample_id"], idx)
        checked += 1
    assert checked >= (5 if loader == "val" else 8)


def test_video_and_arig_audio_is_the_samples_own(exported):
    for task, _, e, sample, files in _entries(exported):
        if task in ("s4", "ms3", "ref_avs") or "audio_path" not in e:
            continue
        data = Path(crabkit.media_path(exported["root"], task, "audio_path", e["audio_path"])).read_bytes()
        (audio,) = [m for m in sample["media"] if m["kind"] == "audio"][:1]
        assert data == files[audio["files"][0]], (task, e["sample_id"])


def _union(sample: dict[str, Any], files: dict[str, bytes]) -> np.ndarray:
    masks = [np.array(Image.open(io.BytesIO(files[f])).convert("L")) > 0 for m in sample["media"] if m["kind"] == "mask"
             for f in m["files"]]  # fmt: skip
    return np.logical_or.reduce(masks) if masks else np.zeros((224, 224), dtype=bool)


def test_ground_truth_masks_are_where_crabs_sam2_step_looks(exported):
    checked = 0
    for task, _, e, sample, files in _entries(exported):
        if task not in ("s4", "ms3", "ref_avs") or e["split"] == "test_n":
            continue
        image = crabkit.media_path(exported["root"], task, "visual_path", e["visual_path"])
        path = crabkit.seg_mask_path(image) if task != "ref_avs" else crabkit.ref_mask_path(image, e["fid"])
        assert os.path.isfile(path), (task, path)
        assert (crabkit.load_mask(path) > 0).tolist() == _union(sample, files).tolist(), (
            task,
            e["sample_id"],
        )
        checked += 1
    assert checked >= 20


def _inner(answer: str) -> str:
    return re.search(r"<answer>(.*?)</answer>", answer).group(1)  # type: ignore[union-attr]


def test_no_answer_differs_from_crabs_test_ground_truth(exported):
    """OmniTestDataset's ground truth of every exported entry (train, val and test alike) against our answer."""
    for task, _, e, sample, _ in _entries(exported):
        if task not in TEST_TASKS:
            continue
        truth, answer = crabkit.test_ground_truth(task, e), sample["answer"]
        if task in EXACT_GT:
            assert answer == truth, (task, answer, truth)
        elif task in ("avqa", "avqa_thu"):  # the bare answer
            assert _inner(answer) == truth
        elif task in ("s4", "ms3"):  # the sentence naming the objects, then the SAM2 prompt
            assert answer.startswith(truth + " ")
        else:  # ref_avs: the expression
            assert truth == sample["target"]["expression"]


def test_a_perfect_prediction_prompts_sam2_inside_the_ground_truth(exported):
    """Our answer as Crab+'s SAM2 step reads it: a valid box around the mask, three points on the mask."""
    for task, _, e, sample, files in _entries(exported):
        if task not in ("s4", "ms3", "ref_avs"):
            continue
        prompt = crabkit.sam2_prompt(sample["answer"], referring=task == "ref_avs")
        if task == "ref_avs" and not sample["target"]["present"]:
            assert prompt is None and "<answer>false</answer>" in sample["answer"]
            continue
        box, points = prompt
        mask = _union(sample, files)
        ys, xs = np.nonzero(mask)
        assert box == [xs.min(), ys.min(), xs.max(), ys.max()], (task, e["sample_id"])
        assert len(points) == 3 and all(mask[y, x] for x, y in points)
        assert crabkit.valid_prompt(box, points, referring=task == "ref_avs")


def _frame_count(mp4: Path) -> int:
    proc = ffmpeg.run_ffmpeg([ffmpeg.ffmpeg_exe(), "-hide_banner", "-i", str(mp4), "-f", "null", "-"])
    return int(re.findall(r"frame=\s*(\d+)", proc.stderr.decode())[-1])


def test_every_mp4_gives_crabs_reader_each_frame(exported):
    seen = set()
    for task, _, e, _, _ in _entries(exported):
        spec = CRAB_MEDIA[task]
        if spec.frames is None:  # an image task
            continue
        for key in ("video_path", "video1_path", "video2_path"):
            if key not in e or task in seen and key == "video_path":
                continue
            total = _frame_count(Path(crabkit.media_path(exported["root"], task, key, e[key])))
            assert total == spec.frames, (task, key, total)
            assert crabkit.frame_indices(total, spec.frames) == list(range(total))
        seen.add(task)
    assert len(seen) == len([t for t in SOURCES if CRAB_MEDIA[t].frames])


def test_every_sample_carries_the_media_crab_feeds_for_its_task(exported):
    """Frames per video, the audio windows Crab+ cuts (equal parts, MUSIC-AVQA's windows, the first 4 s)."""
    for sample, _ in exported["samples"].values():
        spec = CRAB_MEDIA[sample["source"]]
        videos = [m for m in sample["media"] if m["kind"] == "video_frames"]
        assert all(m["frame_count"] == spec.frames for m in videos) and (spec.frames is None) == (not videos)
        audio = [m for m in sample["media"] if m["kind"] == "audio"][0]
        windows = audio.get("segments") or [[0.0, audio["duration"]]]
        if spec.audio in ("tenths", "fifths"):  # equal parts of the whole clip (joined: the whole audio)
            assert windows[0][0] == 0 and abs(windows[-1][1] - audio["duration"]) < 1e-6
            assert all(abs(a[1] - b[0]) < 1e-6 for a, b in zip(windows, windows[1:], strict=False))
            assert len(windows) in (1, spec.parts)  # the whole clip, or Crab+'s own equal parts
            assert all(abs((e - s) * spec.parts - audio["duration"]) < 1e-3 for s, e in windows[1:])
        elif spec.audio == "avqa":
            assert windows == [[max(0.0, s), e] for s, e in avqa_windows()]
        elif spec.audio == "first4":
            assert windows[0][0] == 0 and audio["duration"] <= 4.0 + 1e-6
        else:  # slot: the frame's own second
            assert audio["duration"] == pytest.approx(1.0, abs=0.02)


def _duration_and_frames(mp4: Path) -> tuple[float, int]:
    proc = ffmpeg.run_ffmpeg([ffmpeg.ffmpeg_exe(), "-hide_banner", "-i", str(mp4), "-f", "null", "-"])
    text = proc.stderr.decode()
    h, m, sec = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text).groups()  # type: ignore[union-attr]
    return int(h) * 3600 + int(m) * 60 + float(sec), int(re.findall(r"frame=\s*(\d+)", text)[-1])


def llamafactory_frames(duration: float, total: int, video_fps: float, video_maxlen: int) -> int:
    """LLaMA-Factory's `_get_video_sample_frames`: floor(min(total, maxlen, duration * fps))."""
    return math.floor(min(total, video_maxlen, duration * video_fps))


def test_sharegpt_export_writes_the_fps_that_keeps_every_frame(exported):
    dest = exported["base"] / "lf"
    summary = export(
        exported["builds"], "sharegpt", dest, ExportOptions(sources=["ucf", "cremad", "avqa", "ave"])
    )
    settings = summary["llamafactory"]
    assert json.loads((dest / "llamafactory.json").read_text()) == settings
    assert f"video_fps: {settings['video_fps']}" in (dest / "README.md").read_text()
    kept_at_default = {}
    for split in summary["splits"]:
        for record in json.loads((dest / f"{split}.json").read_text()):
            for path in record["videos"]:
                duration, total = _duration_and_frames(dest / path)
                assert llamafactory_frames(duration, total, **settings) == total, (record["id"], settings)
                kept_at_default[record["source"]] = llamafactory_frames(duration, total, 2.0, 128)
    assert kept_at_default["ucf"] == 8 and settings["video_fps"] > 2.5  # a 4 s clip of 10 frames
