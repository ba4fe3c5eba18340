"""Bundled VALOR-32K sample: `desc_train.json`, `desc_val.json` (original format), `descs_cap_test.json`
(the VAST-format variant with `subtitle`) and `video_data/<video_id>.mp4` 10 s clips.

Video ids follow the release (`<ytid>_<start>.000_<end>.000`, one with a fractional start). No split has both
variants, so the default picks `desc_` for train/val and `descs_cap_` for test.
"""

from __future__ import annotations

import json
from pathlib import Path

from avuie.media.synth import make_video

VERSION = 1
RAW_SUBDIR = ""

ENTRIES = {
    "desc_train.json": [
        {
            "video_id": "Xq3bN0x2m5E_30.000_40.000",
            "desc": "A man strums an acoustic guitar on a porch while birds chirp in the background.",
        },
        {
            "video_id": "k9PzT4sYw1A_36.200_46.200",
            "desc": "Cars race around a track and their engines roar loudly as the crowd cheers.",
        },
    ],
    "desc_val.json": [
        {"video_id": "pL2cV7nQe0M_0.000_10.000", "desc": "A dog barks at a door while a woman talks to it."},
    ],
    "descs_cap_test.json": [
        {
            "video_id": "R4tU8wZc2Hk_20.000_30.000",
            "desc": "In a kitchen, a woman fries vegetables in a pan and the oil sizzles.",
            "subtitle": " Now we add the onions.",
        },
        {
            "video_id": "b7Ns1LmQx9o_10.000_20.000",
            "desc": "A train passes a crossing as its horn sounds twice.",
            "subtitle": "",
        },
    ],
}


def generate(root: Path) -> None:
    """Write the sample tree under root (annotation files at the root, clips in video_data/)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for name, entries in ENTRIES.items():
        (root / name).write_text(json.dumps(entries))
    vids = [e["video_id"] for entries in ENTRIES.values() for e in entries]
    for i, vid in enumerate(vids):
        make_video(
            root / "video_data" / f"{vid}.mp4", duration=10.0, size=(160, 120), fps=10, freq=300 + 80 * i
        )
