"""Bundled AVSBench sample (s4, ms3 and arig read the same tree): an AVSBench-semantic release in miniature.

`AVSBench-semantic/{metadata.csv, label2idx.json}` and `{v1s|v1m|v2}/<uid>/{audio.wav, frames/{i}.jpg,
labels_semantic/{i}.png, labels_rgb/{i}.png}`: v1s train clips are annotated on frame 0 only (as the release),
every other clip on all its frames; semantic masks hold p = label2idx - 1, RGB masks the VOC colour of p. The
v1m clip has two sounding classes (boy, man); a v2 (AVSS) clip is listed for the subsets filter. Audio is a
5 s (v2: 10 s) 16 kHz stereo tone, frames 160x120 JPEGs.

`generate_object_release(root)` writes the AVSBench-object layout (Single-source/s4_data, Multi-sources/ms3_data
with binary masks and the `.mp4_` MS3 frame names) for tests.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from avuie.media.images import voc_palette
from avuie.media.synth import make_audio, make_image, make_mask
from avuie.schemas.classes import AVSBENCH_LABEL2IDX_NAMES

VERSION = 1
RAW_SUBDIR = "AVSBench-semantic"
SIZE = (160, 120)
P = {name: i for i, name in enumerate(AVSBENCH_LABEL2IDX_NAMES)}  # palette index = label2idx - 1

# (vid, uid, s_min, s_sec, a_obj, split, subset, {frame: [(class, box)]})
CLIPS = [
    ("aZ3kP0s9LmQ", "aZ3kP0s9LmQ_0_5000", 0, 0, "mower", "train", "v1s", {0: [("mower", (20, 40, 99, 100))]}),
    ("b7Hq2xWcYk0", "b7Hq2xWcYk0_3000_8000", 0, 3, "dog", "train", "v1s", {0: [("dog", (60, 30, 140, 90))]}),
    (
        "cQ9-r4TzN1o",
        "cQ9-r4TzN1o_0_5000",
        0,
        0,
        "guitar",
        "val",
        "v1s",
        {i: [("guitar", (10 + 10 * i, 20, 70 + 10 * i, 110))] for i in range(5)},
    ),
    (
        "dLm5pX8vB2s",
        "dLm5pX8vB2s_1000_6000",
        0,
        1,
        "piano",
        "test",
        "v1s",
        {i: [("piano", (30, 50 + 5 * i, 130, 100 + 3 * i))] for i in range(5)},
    ),
    (
        "e4Rt6yUi8oP",
        "e4Rt6yUi8oP_2",
        0,
        10,
        "boy,man",
        "train",
        "v1m",
        {
            i: [("boy", (5, 30, 50, 110))] + ([("man", (90, 10, 150, 115))] if i != 2 else [])
            for i in range(5)
        },
    ),
    (
        "f0Gh1jK2lZx",
        "f0Gh1jK2lZx_1",
        1,
        5,
        "violin,piano",
        "test",
        "v1m",
        {i: [("violin", (15, 15, 60, 60)), ("piano", (80, 60, 155, 118))] for i in range(5)},
    ),
    (
        "gU7yT5rE3wQ",
        "gU7yT5rE3wQ_1000_11000",
        0,
        1,
        "clarinet",
        "train",
        "v2",
        {i: [("clarinet", (40, 20, 110, 100))] for i in range(10)},
    ),
]
SUBSET_FRAMES = {"v1s": 5, "v1m": 5, "v2": 10}


def _write_masks(clip_dir: Path, i: int, objects: list[tuple[str, tuple[int, int, int, int]]]) -> None:
    pal = voc_palette()
    make_mask(clip_dir / "labels_semantic" / f"{i}.png", SIZE, [("rect", box, P[c]) for c, box in objects])
    shapes = [("rect", box, tuple(int(v) for v in pal[P[c]])) for c, box in objects]
    make_mask(clip_dir / "labels_rgb" / f"{i}.png", SIZE, shapes, value=(0, 0, 0), mode="RGB")


def generate(root: Path) -> None:
    """Write the AVSBench-semantic sample tree under root/AVSBench-semantic."""
    ds = Path(root) / RAW_SUBDIR
    ds.mkdir(parents=True)
    table = {name: i + 1 for i, name in enumerate(AVSBENCH_LABEL2IDX_NAMES)}
    (ds / "label2idx.json").write_text(json.dumps(table, indent=4) + "\n")
    with open(ds / "metadata.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label"])
        for k, (vid, uid, s_min, s_sec, a_obj, split, subset, masks) in enumerate(CLIPS):
            writer.writerow([vid, uid, s_min, s_sec, a_obj, split, subset])
            clip_dir = ds / subset / uid
            n = SUBSET_FRAMES[subset]
            for i in range(n):
                make_image(clip_dir / "frames" / f"{i}.jpg", SIZE, seed=10 * k + i)
            for i, objects in masks.items():
                _write_masks(clip_dir, i, objects)
            make_audio(
                clip_dir / "audio.wav", duration=float(n), sample_rate=16000, channels=2, freq=300 + 50 * k
            )


# --- the AVSBench-object layout (for tests) --------------------------------------------------------------------

S4_OBJECT_ROWS = [  # name, start, category, split, box
    ("k8Lp0Oi9Uy7", 0, "lawn_mowing", "train", (30, 30, 120, 100)),
    ("m1Nb2Vc3Xz4", 2, "dog_barking", "test", (50, 20, 150, 110)),
]
MS3_OBJECT_ROWS = [("n5Mq6Wr7Ty8_36", "train"), ("p9Ls0Kd1Jh2", "test")]


def _binary_png(path: Path, box: tuple[int, int, int, int], mode: str) -> None:
    """A binary mask: mode '1' (S4 loader) or 'P' with values 0/1 (MS3 loader)."""
    arr = np.zeros((SIZE[1], SIZE[0]), dtype=np.uint8)
    x1, y1, x2, y2 = box
    arr[y1 : y2 + 1, x1 : x2 + 1] = 1
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "1":
        Image.fromarray(arr * 255, "L").convert("1").save(path)
    else:
        img = Image.fromarray(arr, "P")
        img.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
        img.save(path)


def generate_object_release(root: Path) -> Path:
    """Write a small AVSBench-object release (S4 + MS3, binary masks) under root/AVSBench-object; return it."""
    base = Path(root) / "AVSBench-object"
    s4 = base / "Single-source"
    s4.mkdir(parents=True)
    with open(s4 / "s4_meta_data.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["name", "start", "category", "split"])
        for k, (name, start, category, split, box) in enumerate(S4_OBJECT_ROWS):
            writer.writerow([name, start, category, split])
            frames = [1] if split == "train" else [1, 2, 3, 4, 5]
            for i in range(1, 6):
                stem = f"{split}/{category}/{name}/{name}_{i}.png"
                make_image(s4 / "s4_data" / "visual_frames" / stem, SIZE, seed=100 + 10 * k + i)
                if i in frames:
                    _binary_png(s4 / "s4_data" / "gt_masks" / stem, box, "1")
            make_audio(s4 / "s4_data" / "audio_wav" / split / category / f"{name}.wav", duration=5.0)
    ms3 = base / "Multi-sources"
    ms3.mkdir(parents=True)
    with open(ms3 / "ms3_meta_data.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["video_id", "split"])
        for k, (vid, split) in enumerate(MS3_OBJECT_ROWS):
            writer.writerow([vid, split])
            for i in range(1, 6):
                make_image(
                    ms3 / "ms3_data" / "visual_frames" / vid / f"{vid}.mp4_{i}.png", SIZE, seed=200 + k + i
                )
                box = (10 * i, 20, 60 + 10 * i, 90)
                _binary_png(ms3 / "ms3_data" / "gt_masks" / split / vid / f"{vid}_{i}.png", box, "P")
            make_audio(ms3 / "ms3_data" / "audio_wav" / split / f"{vid}.wav", duration=5.0)
    return base
