"""Bundled LLP / AVVP sample: `data/` with the six tab-separated CSVs and synthesized 10 s clips.

Rows are written in the release's format (tab-separated, header line, `<ytid>_<start>_<end>` filenames, one
with an id that begins with '-'). Train has weak video-level labels; val and test have dense rows in the eval
CSVs, including two overlapping rows of one class (merged into one run), an audio-only class and an empty
segment (onset == offset) as the release has.
"""

from __future__ import annotations

from pathlib import Path

from avuie.media.synth import make_video

VERSION = 1
RAW_SUBDIR = ""

WEAK = {
    "train": [("BjCEufrlXm4_20_30", "Speech,Dog"), ("-4O9rI-FpqL_10_20", "Cheering,Speech,Clapping")],
    "val": [("8sfcMZ8A3OQ_180_190", "Frying_(food),Speech")],
    "test": [("KSRjje7GH44_60_70", "Blender,Speech")],
}
# filename, onset, offset, label
DENSE_AUDIO = [
    ("8sfcMZ8A3OQ_180_190", 0, 10, "Frying_(food)"),
    ("8sfcMZ8A3OQ_180_190", 2, 5, "Speech"),
    ("8sfcMZ8A3OQ_180_190", 4, 7, "Speech"),
    ("KSRjje7GH44_60_70", 8, 10, "Blender"),
    ("KSRjje7GH44_60_70", 0, 8, "Speech"),
    ("KSRjje7GH44_60_70", 9, 9, "Speech"),
]
DENSE_VISUAL = [
    ("8sfcMZ8A3OQ_180_190", 0, 10, "Frying_(food)"),
    ("KSRjje7GH44_60_70", 0, 10, "Blender"),
]
FILES = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}


def _write_tsv(path: Path, header: list[str], rows: list[tuple]) -> None:
    lines = ["\t".join(header)] + ["\t".join(str(x) for x in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def generate(root: Path) -> None:
    """Write the sample tree under root/data (root is the raw root)."""
    data = Path(root) / "data"
    (data / "LLP_dataset" / "video").mkdir(parents=True)
    for split, rows in WEAK.items():
        _write_tsv(data / FILES[split], ["filename", "event_labels"], rows)
    _write_tsv(
        data / "AVVP_dataset_full.csv", ["filename", "event_labels"], [r for v in WEAK.values() for r in v]
    )
    _write_tsv(data / "AVVP_eval_audio.csv", ["filename", "onset", "offset", "event_labels"], DENSE_AUDIO)
    _write_tsv(data / "AVVP_eval_visual.csv", ["filename", "onset", "offset", "event_labels"], DENSE_VISUAL)
    names = [f for rows in WEAK.values() for f, _ in rows]
    for i, name in enumerate(names):
        make_video(
            data / "LLP_dataset" / "video" / f"{name[:11]}.mp4",
            duration=10.0,
            size=(160, 120),
            fps=10,
            freq=300 + 100 * i,
        )
