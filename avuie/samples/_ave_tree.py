"""The AVE release tree that the bundled ave and a2v (and v2a) samples write, from their own rows.

`AVE_Dataset/{Annotations.txt, trainSet.txt, valSet.txt, testSet.txt, AVE/<VideoID>.mp4}`: each split file holds
its rows (with the header line where the caller asks for it), Annotations.txt the header and every row, and each
video is a synthesized 10 s clip with its own tone.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from avuie.media.synth import make_video

RAW_SUBDIR = "AVE_Dataset"
HEADER = "Category&VideoID&Quality&StartTime&EndTime"
FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}

AveRow = tuple[str, str, int, int]  # (category, video id, start, end)


def video_ids(rows: dict[str, list[AveRow]]) -> list[str]:
    """The distinct video ids of the rows, in the order they first appear."""
    return list(dict.fromkeys(v for split_rows in rows.values() for _, v, _, _ in split_rows))


def write_ave_tree(
    root: Path, rows: dict[str, list[AveRow]], *, headed: Collection[str], tones: dict[str, int]
) -> Path:
    """Write root/AVE_Dataset from rows per split; return that folder.

    `headed`: the splits whose file starts with the header line; `tones`: each video id's sine frequency (Hz).
    """
    ds = Path(root) / RAW_SUBDIR
    (ds / "AVE").mkdir(parents=True)
    every = []
    for split, split_rows in rows.items():
        lines = [f"{c}&{v}&good&{s}&{e}" for c, v, s, e in split_rows]
        every += lines
        head = [HEADER] if split in headed else []
        (ds / FILES[split]).write_text("\n".join(head + lines) + "\n")
    (ds / "Annotations.txt").write_text("\n".join([HEADER, *every]) + "\n")
    for vid, freq in tones.items():
        make_video(ds / "AVE" / f"{vid}.mp4", duration=10.0, size=(160, 120), fps=10, freq=freq)
    return ds
