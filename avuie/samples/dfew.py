"""Bundled DFEW sample: `EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv` and the clips
`Clip/original/<id:05d>.mp4`.

The lists have the header `video_name,label` and integer labels 1-7; each fold puts a different clip in test.
"""

from __future__ import annotations

from pathlib import Path

from avuie.media.synth import make_video

VERSION = 1
RAW_SUBDIR = ""
CLIPS = [(1, 1, 2.5), (17, 4, 3.0), (203, 7, 4.5), (16372, 3, 2.0)]  # (id, label 1-7, seconds)


def generate(root: Path) -> None:
    """Write the fold lists and the synthesized clips under root."""
    root = Path(root)
    for fold in range(1, 6):
        test = (fold - 1) % len(CLIPS)
        for split in ("train", "test"):
            folder = root / "EmoLabel_DataSplit" / f"{split}(single-labeled)"
            folder.mkdir(parents=True, exist_ok=True)
            rows = [
                f"{vid},{label}"
                for i, (vid, label, _) in enumerate(CLIPS)
                if (i == test) == (split == "test")
            ]
            (folder / f"set_{fold}.csv").write_text("\n".join(["video_name,label", *rows]) + "\n")
    for i, (vid, _, secs) in enumerate(CLIPS):
        make_video(root / "Clip" / "original" / f"{vid:05d}.mp4", duration=secs, size=(160, 120), fps=10,
                   freq=330 + 65 * i)  # fmt: skip
