"""Bundled Kinetics-Sounds sample: Kinetics-400 style CSVs and 10 s clips in both accepted layouts.

`train.csv`, `validate.csv` and `test.csv` carry the header `label,youtube_id,time_start,time_end,split` (the
2020 Kinetics-400 release); one train row is of a class outside Kinetics-Sounds (skipped by the class filter) and
one uses a Kinetics spelling of a short paper name (`blowing out candles`). Train clips are in the downloader
layout `train/<label>/<clip>.mp4`, val and test clips in the flat CVDF layout `<split>/<clip>.mp4`.
"""

from __future__ import annotations

from pathlib import Path

from avuie.media.synth import make_video

VERSION = 1
RAW_SUBDIR = ""
HEADER = "label,youtube_id,time_start,time_end,split"

ROWS = {
    "train.csv": [
        ("playing violin", "-0aZ1xIZH8w", 14, 24, "train"),
        ("blowing out candles", "Ul8gMxN2fcs", 0, 10, "train"),
        ("abseiling", "0347ZoDXyP0", 80, 90, "train"),  # not a Kinetics-Sounds class
    ],
    "validate.csv": [("playing drums", "3nZB5F4Y4bE", 30, 40, "val")],
    "test.csv": [('"tap dancing"', "Xz0-Zm1qJ3c", 5, 15, "test")],
}


def clip_name(ytid: str, start: int, end: int) -> str:
    """The downloader's clip file name `<ytid>_<start:06d>_<end:06d>.mp4`."""
    return f"{ytid}_{start:06d}_{end:06d}.mp4"


def generate(root: Path) -> None:
    """Write the CSVs and the synthesized clips under root."""
    root = Path(root)
    for i, (fname, rows) in enumerate(ROWS.items()):
        lines = [HEADER] + [f"{lab},{y},{s},{e},{sp}" for lab, y, s, e, sp in rows]
        (root / fname).write_text("\n".join(lines) + "\n")
        for j, (label, ytid, start, end, split) in enumerate(rows):
            if label == "abseiling":
                continue
            folder = root / split / label.strip('"') if split == "train" else root / split
            make_video(folder / clip_name(ytid, start, end), duration=10.0, size=(160, 120), fps=10,
                       freq=300 + 100 * (3 * i + j))  # fmt: skip
