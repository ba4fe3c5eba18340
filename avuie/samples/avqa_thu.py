"""Bundled AVQA (Yang et al.) sample: `train_qa.json`, `val_qa.json` and `data/video/<video_name>.mp4`.

Entries carry the keys the official preprocessing reads (question_text, multi_choice with four options,
answer as an integer index into them, video_name `<ytid>_<start:06d>`, video_id, question_type) plus `id` and
`question_relation`. Two train questions share one clip (the native id is question-based); clips are 10 s.
"""

from __future__ import annotations

import json
from pathlib import Path

from avuie.media.synth import make_video

VERSION = 1
RAW_SUBDIR = ""


def _qa(qid: int, name: str, vid: int, qtype: str, text: str, options: list[str], answer: int) -> dict:
    return {
        "id": qid,
        "video_name": name,
        "video_id": vid,
        "question_text": text,
        "multi_choice": options,
        "answer": answer,
        "question_relation": "Both",
        "question_type": qtype,
    }


QUESTIONS = {
    "train": [
        _qa(
            20001,
            "-HG3Omg_89c_000030",
            3,
            "Which",
            "Which animal makes the sound in the video?",
            ["Dog", "Cat", "Cow", "Sheep"],
            0,
        ),
        _qa(
            20002,
            "-HG3Omg_89c_000030",
            3,
            "Where",
            "Where is the sounding animal?",
            ["In a kitchen", "On a lawn", "On a boat", "In a car"],
            1,
        ),
    ],
    "val": [
        _qa(
            40001,
            "x7Yq0kWcJ9s_000110",
            8,
            "Happening",
            "What is happening in the video?",
            ["A man plays guitar", "A car races", "A baby cries", "A woman sings"],
            3,
        ),
    ],
}
FILES = {"train": "train_qa.json", "val": "val_qa.json"}


def generate(root: Path) -> None:
    """Write the sample tree under root (the question files at the root, clips in data/video/)."""
    root = Path(root)
    for split, qs in QUESTIONS.items():
        (root / FILES[split]).parent.mkdir(parents=True, exist_ok=True)
        (root / FILES[split]).write_text(json.dumps(qs))
    names = sorted({q["video_name"] for qs in QUESTIONS.values() for q in qs})
    for i, name in enumerate(names):
        make_video(
            root / "data" / "video" / f"{name}.mp4", duration=10.0, size=(160, 120), fps=10, freq=350 + 90 * i
        )
