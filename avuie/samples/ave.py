"""Bundled AVE sample: `AVE_Dataset/` with Annotations.txt, the three split files and synthesized clips.

trainSet.txt carries the header line (as the zip copies do), valSet.txt and testSet.txt do not (as the repo copy
of Annotations.txt), and one video has two events (two rows), as 45 real AVE videos do.
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
    "val": [("Acoustic guitar", "MH3m4AwEcRY", 6, 8)],
    "test": [("Frying (food)", "fCZi6I6kPpU", 1, 7)],
}
FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}


def generate(root: Path) -> None:
    """Write the sample tree under root/AVE_Dataset."""
    ds = Path(root) / RAW_SUBDIR
    (ds / "AVE").mkdir(parents=True)
    all_rows = []
    for split, rows in ROWS.items():
        lines = [f"{c}&{v}&good&{s}&{e}" for c, v, s, e in rows]
        all_rows += lines
        head = [HEADER] if split == "train" else []
        (ds / FILES[split]).write_text("\n".join(head + lines) + "\n")
    (ds / "Annotations.txt").write_text("\n".join([HEADER, *all_rows]) + "\n")
    vids = sorted({v for rows in ROWS.values() for _, v, _, _ in rows})
    for i, vid in enumerate(vids):
        make_video(ds / "AVE" / f"{vid}.mp4", duration=10.0, size=(160, 120), fps=10, freq=300 + 100 * i)
    (ds / "ReadMe.txt").write_text("AVE sample synthesized by avuie (lavfi testsrc2 + sine).\n")
