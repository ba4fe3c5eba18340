"""Bundled UnAV-100 sample: `data/unav100/annotations/unav100_annotations.json` and `raw_videos/<vid>.mp4`.

The JSON is ActivityNet style as the release ships it (`database` -> video -> subset, duration, annotations with
float segments, label and label_id). The train video has overlapping events of different classes and one class
that repeats; the validation video (subset `validation`) has an end that overshoots its duration by a few
hundredths of a second, as ActivityNet-style files often do; videos are untrimmed (not 10 s).
"""

from __future__ import annotations

import json
from pathlib import Path

from avuie.media.synth import make_video

VERSION = 1
RAW_SUBDIR = ""

DATABASE = {
    "0Rfx3Oyp7aU": {
        "subset": "train",
        "duration": 24.0,
        "fps": 10.0,
        "annotations": [
            {"segment": [0.0, 9.5], "label": "man speaking", "label_id": 0},
            {"segment": [4.2, 13.8], "label": "dog barking", "label_id": 12},
            {"segment": [17.0, 22.4], "label": "dog barking", "label_id": 12},
        ],
    },
    "Hf5eGf3Wm1k": {
        "subset": "validation",
        "duration": 16.0,
        "fps": 10.0,
        "annotations": [
            {"segment": [2.31, 16.04], "label": "playing violin", "label_id": 45},
            {"segment": [0.0, 5.0], "label": "woman speaking", "label_id": 1},
        ],
    },
    "zL1u_8MQr3Y": {
        "subset": "test",
        "duration": 12.0,
        "annotations": [{"segment": [1.5, 7.25], "label": "car passing by", "label_id": 70}],
    },
}


def generate(root: Path) -> None:
    """Write the sample tree under root (the code release's root: data/unav100/..., raw_videos/...)."""
    root = Path(root)
    ann = root / "data" / "unav100" / "annotations"
    ann.mkdir(parents=True)
    (ann / "unav100_annotations.json").write_text(json.dumps({"database": DATABASE}))
    for i, (vid, entry) in enumerate(DATABASE.items()):
        make_video(
            root / "raw_videos" / f"{vid}.mp4",
            duration=entry["duration"],
            size=(160, 120),
            fps=10,
            freq=300 + 100 * i,
        )
