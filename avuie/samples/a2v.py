"""Bundled a2v sample: a small AVE tree (the default pair source) with enough clips per split for negatives.

`AVE_Dataset/{Annotations.txt, trainSet.txt, valSet.txt, testSet.txt, AVE/<VideoID>.mp4}` as the AVE release
lays it out; one train video has two events (two rows), so the pairing must treat it as one clip with two labels.
Each clip has its own tone, so the audios of two clips differ.
"""

from __future__ import annotations

from pathlib import Path

from avuie.samples import _ave_tree

VERSION = 1
RAW_SUBDIR = _ave_tree.RAW_SUBDIR
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


def generate(root: Path) -> None:
    """Write the AVE sample tree under root/AVE_Dataset (every split file with the header line)."""
    tones = {vid: 250 + 110 * i for i, vid in enumerate(_ave_tree.video_ids(ROWS))}
    _ave_tree.write_ave_tree(root, ROWS, headed=("train", "val", "test"), tones=tones)
