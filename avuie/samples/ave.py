"""Bundled AVE sample: `AVE_Dataset/` with Annotations.txt, the three split files and synthesized clips.

trainSet.txt carries the header line (as the zip copies do), valSet.txt and testSet.txt do not (as the repo copy
of Annotations.txt), and one video has two events (two rows), as 45 real AVE videos do.
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
    "val": [("Acoustic guitar", "MH3m4AwEcRY", 6, 8)],
    "test": [("Frying (food)", "fCZi6I6kPpU", 1, 7)],
}


def generate(root: Path) -> None:
    """Write the sample tree under root/AVE_Dataset (only trainSet.txt with the header line)."""
    tones = {vid: 300 + 100 * i for i, vid in enumerate(sorted(_ave_tree.video_ids(ROWS)))}
    ds = _ave_tree.write_ave_tree(root, ROWS, headed=("train",), tones=tones)
    (ds / "ReadMe.txt").write_text("AVE sample synthesized by avuie (lavfi testsrc2 + sine).\n")
