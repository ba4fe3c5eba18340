"""Bundled MER2024 sample: `train-label.csv` (`name,discrete,valence`) and clips `train/<name>.mp4`."""

from __future__ import annotations

from pathlib import Path

from avuie.media.synth import make_video

VERSION = 1
RAW_SUBDIR = ""
ROWS = [
    ("sample_00000007", "happy", 2.5, 3.0),
    ("sample_00000012", "worried", -1.2, 4.5),
    ("sample_00000031", "neutral", 0.0, 2.0),
]


def generate(root: Path) -> None:
    """Write train-label.csv and the synthesized clips under root."""
    root = Path(root)
    lines = ["name,discrete,valence"] + [f"{n},{d},{v}" for n, d, v, _ in ROWS]
    (root / "train-label.csv").write_text("\n".join(lines) + "\n")
    for i, (name, _, _, secs) in enumerate(ROWS):
        make_video(root / "train" / f"{name}.mp4", duration=secs, size=(160, 120), fps=10, freq=320 + 80 * i)
