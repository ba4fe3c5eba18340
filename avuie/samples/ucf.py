"""Bundled UCF101 sample: the official list files (CRLF, 1-based classInd) and a few synthesized .avi clips.

`ucfTrainTestlist/classInd.txt` lists the 101 classes; `trainlist01.txt` rows carry the class index and
`testlist01.txt` rows the path only, as in the release. One clip keeps the release's spelling quirk
(`HandstandPushups/v_HandStandPushups_...`). Every sample clip has an audio track.
"""

from __future__ import annotations

from pathlib import Path

from avuie.media.synth import make_video
from avuie.schemas.classes_clips import UCF101_CLASSES

VERSION = 1
RAW_SUBDIR = ""

TRAIN = [
    "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
    "HandstandPushups/v_HandStandPushups_g08_c02.avi",
    "PlayingGuitar/v_PlayingGuitar_g10_c03.avi",
]
TEST = ["Drumming/v_Drumming_g01_c01.avi", "PlayingGuitar/v_PlayingGuitar_g02_c04.avi"]


def generate(root: Path) -> None:
    """Write ucfTrainTestlist/ and UCF-101/ under root."""
    root = Path(root)
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    index = {c: i for i, c in enumerate(UCF101_CLASSES, start=1)}
    crlf = "\r\n"
    (lists / "classInd.txt").write_bytes((crlf.join(f"{i} {c}" for c, i in index.items()) + crlf).encode())
    train = crlf.join(f"{p} {index[p.split('/')[0]]}" for p in TRAIN) + crlf
    (lists / "trainlist01.txt").write_bytes(train.encode())
    (lists / "testlist01.txt").write_bytes((crlf.join(TEST) + crlf).encode())
    for i, rel in enumerate(TRAIN + TEST):
        make_video(root / "UCF-101" / rel, duration=4.0, size=(160, 120), fps=10, freq=350 + 90 * i)
