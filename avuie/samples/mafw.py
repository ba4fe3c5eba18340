"""Bundled MAFW sample: the 5-fold single-label lists and clips `data/clips/<clip>.mp4`.

`Train & Test Set/single/no_caption/set_{1..5}/{train,test}.txt` hold `<clip>.mp4 <label>` lines (no header);
each fold puts a different clip in test.
"""

from __future__ import annotations

from pathlib import Path

from avuie.media.synth import make_video

VERSION = 1
RAW_SUBDIR = ""
CLIPS = [("00025.mp4", "anger", 3.0), ("00193.mp4", "helplessness", 2.0), ("01207.mp4", "happiness", 4.5),
         ("09870.mp4", "contempt", 2.5)]  # fmt: skip


def generate(root: Path) -> None:
    """Write the lists of the five folds and the synthesized clips under root."""
    root = Path(root)
    for fold in range(1, 6):
        folder = root / "Train & Test Set" / "single" / "no_caption" / f"set_{fold}"
        folder.mkdir(parents=True)
        test = (fold - 1) % len(CLIPS)
        lines = {"train": [], "test": []}
        for i, (clip, label, _) in enumerate(CLIPS):
            lines["test" if i == test else "train"].append(f"{clip} {label}")
        for split, rows in lines.items():
            (folder / f"{split}.txt").write_text("\n".join(rows) + "\n")
    for i, (clip, _, secs) in enumerate(CLIPS):
        make_video(root / "data" / "clips" / clip, duration=secs, size=(160, 120), fps=10, freq=310 + 75 * i)
