"""Bundled a2v sample: a small AVE tree (the default pair source) with enough clips per split for negatives.

`AVE_Dataset/{Annotations.txt, trainSet.txt, valSet.txt, testSet.txt, AVE/<VideoID>.mp4}` as the AVE release
lays it out; one train video has two events (two rows), so the pairing must treat it as one clip with two labels.
Each clip has its own tone, so the audios of two clips differ.
"""

from __future__ import annotations

from pathlib import Path

from avuie.synth import make_video

VERSION = 1
RAW_SUBDIR = "AVE_Dataset"
HEADER = "Category&VideoID&Quality&StartTime&EndTime"
ROWS = {
    "train": [
        ("Church bell", "RUhOCu3LNXM", 0, 10),
        ("Male speech, man speaking", "-ccciEuH9FE", 2, 9),
        ("Female speech, woman speaking", "-ccciEuH9FE", 2, 9),
        ("Bark", "0IklLP7_kBw", 4, 10),
    ],
    "val": [("Acoustic guitar", "MH3m4AwEcRY", 6, 8), ("Goat", "k_yVVSxD2fE", 0, 10)],
    "test": [("Frying (food)", "fCZi6I6kPpU", 1, 7), ("Truck", "bqG3K-1CKZg", 0, 6)],
}
FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}


def generate(root: Path) -> None:
    """Write the AVE sample tree under root/AVE_Dataset."""
    ds = Path(root) / RAW_SUBDIR
    (ds / "AVE").mkdir(parents=True)
    every = []
    for split, rows in ROWS.items():
        lines = [f"{c}&{v}&good&{s}&{e}" for c, v, s, e in rows]
        every += lines
        (ds / FILES[split]).write_text("\n".join([HEADER, *lines]) + "\n")
    (ds / "Annotations.txt").write_text("\n".join([HEADER, *every]) + "\n")
    videos = list(dict.fromkeys(v for rows in ROWS.values() for _, v, _, _ in rows))
    for i, vid in enumerate(videos):
        make_video(ds / "AVE" / f"{vid}.mp4", duration=10.0, size=(160, 120), fps=10, freq=250 + 110 * i)
