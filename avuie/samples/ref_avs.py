"""Bundled Ref-AVS sample: `REFAVS/metadata.csv` (vid,uid,split,fid,exp with CRLF line ends, as the release),
`media/<vid>/{audio.wav, frames/{0..9}.jpg}` and `gt_mask/<vid>/fid_<fid>/0000{i}.png` (L-mode {0,255}).

Rows cover every split: train (a present object and a `null` reference), val, test_s, test_u (with an exact
repeat of a uid, as the release has), test_n (null), and one `TODO` row. An expression with a comma is quoted.
Audio is a 10 s 16 kHz stereo tone, frames 160x120 JPEGs.
"""

from __future__ import annotations

import csv
from pathlib import Path

from avuie.media.synth import make_audio, make_image, make_mask

VERSION = 1
RAW_SUBDIR = "REFAVS"
SIZE = (160, 120)
VIDS = ["qW3eR5tY7uI_14000_24000", "aS2dF4gH6jK_137000_147000", "zX1cV3bN5mM_8000_18000"]

# vid index, uid suffix (object_n) or None for a null reference, split, fid, expression
ROWS = [
    (0, "dog_1", "train", 0, "The dog barking on the left, near the fence."),
    (0, None, "train", 0, "The object making a sound with a faster rhythm"),
    (1, "piano_1", "val", 1, "The piano being played."),
    (1, "man_1", "test_s", 0, "The man who is singing."),
    (2, "emergency-car_1", "test_u", 0, "The object making the loudest sound."),
    (2, "emergency-car_1", "test_u", 0, "The object making the loudest sound."),
    (2, None, "test_n", 0, "The object making a continuous sound"),
    (0, "dog_2", "TODO", 0, "The sounding object."),
]
# per vid and fid: the object's box at frame i
BOXES = {
    (0, 0): lambda i: (10 + 6 * i, 30, 70 + 6 * i, 100),
    (1, 0): lambda i: (90, 10, 150, 110),
    (1, 1): lambda i: (20, 60 - 2 * i, 80, 115),
    (2, 0): lambda i: (40 + 3 * i, 40, 120, 90),
}


def generate(root: Path) -> None:
    """Write the Ref-AVS sample tree under root/REFAVS."""
    ds = Path(root) / RAW_SUBDIR
    ds.mkdir(parents=True)
    with open(ds / "metadata.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(["vid", "uid", "split", "fid", "exp"])
        nulls: dict[int, int] = {}
        for v, obj, split, fid, exp in ROWS:
            vid = VIDS[v]
            if obj is None:
                nulls[v] = nulls.get(v, 0) + 1
                uid = f"null_m-{vid}_null_{nulls[v]}"
            else:
                uid = f"{vid}_{obj}"
            writer.writerow([vid, uid, split, fid, exp])
    for v, vid in enumerate(VIDS):
        media = ds / "media" / vid
        for i in range(10):
            make_image(media / "frames" / f"{i}.jpg", SIZE, seed=30 * v + i)
        make_audio(media / "audio.wav", duration=10.0, sample_rate=16000, channels=2, freq=350 + 100 * v)
    for (v, fid), box in BOXES.items():
        for i in range(10):
            make_mask(ds / "gt_mask" / VIDS[v] / f"fid_{fid}" / f"{i:05d}.png", SIZE, [("rect", box(i))])
