"""Bundled MUSIC-AVQA sample: `data/json_update/` and `data/json/` question files plus synthesized 60 s videos.

Entries are written as the release writes them: a pretty-printed JSON list, `type` and `templ_values` as JSON
strings, the answer under `anser`, a full-width `？`, two placeholders filled left to right. Splits share a video
(as the real val and test do); one question is about a synthetic video (`va...` id, in the officially misspelled
`MUCIS-AVQA-videos-Synthetic/` folder). `data/json/avqa-val.json` repeats a question id with another answer, as
the original release does.
"""

from __future__ import annotations

import json
from pathlib import Path

from avuie.media.synth import make_video

VERSION = 1
RAW_SUBDIR = ""


def _q(vid: str, qid: int, mod: str, kind: str, text: str, values: list[str], answer: str) -> dict:
    return {
        "video_id": vid,
        "question_id": qid,
        "type": json.dumps([mod, kind]),
        "question_content": text,
        "templ_values": json.dumps(values),
        "question_deleted": 0,
        "anser": answer,
    }


QUESTIONS = {
    "train": [
        _q(
            "00000028",
            3,
            "Audio",
            "Counting",
            "How many musical instruments were heard throughout the video?",
            [],
            "one",
        ),
        _q(
            "va00003871",
            5,
            "Visual",
            "Existential",
            "Is there a <Object> in the entire video?",
            ["violin"],
            "yes",
        ),
    ],
    "val": [
        _q(
            "00000028",
            7,
            "Audio-Visual",
            "Existential",
            "Is the <Object> in the video always playing?",
            ["ukulele"],
            "yes",
        ),
        _q(
            "00000108",
            10,
            "Audio-Visual",
            "Temporal",
            "Where is the <FL> sounding instrument？",
            ["first"],
            "left",
        ),
    ],
    "test": [
        _q(
            "00000108",
            12,
            "Audio",
            "Comparative",
            "Is the <Object> louder than the <Object>?",
            ["guzheng", "acoustic_guitar"],
            "no",
        ),
    ],
}
ORIGINAL_VAL_EXTRA = _q(
    "00000108", 10, "Audio-Visual", "Temporal", "Where is the <FL> sounding instrument？", ["first"], "right"
)
VIDEOS = {
    "MUSIC-AVQA-videos-Real": ["00000028", "00000108"],
    "MUCIS-AVQA-videos-Synthetic": ["va00003871"],
}


def generate(root: Path) -> None:
    """Write the sample tree under root (root/data/json_update, root/data/json, root/<video folders>)."""
    root = Path(root)
    for folder in ("json_update", "json"):
        (root / "data" / folder).mkdir(parents=True)
    for split, qs in QUESTIONS.items():
        text = json.dumps(qs, indent=2, ensure_ascii=False)
        (root / "data" / "json_update" / f"avqa-{split}.json").write_text(text + "\n", encoding="utf-8")
    original_val = [*QUESTIONS["val"], ORIGINAL_VAL_EXTRA]
    (root / "data" / "json" / "avqa-val.json").write_text(
        json.dumps(original_val, indent=2, ensure_ascii=False)
    )
    i = 0
    for folder, vids in VIDEOS.items():
        for vid in vids:
            make_video(
                root / folder / f"{vid}.mp4", duration=60.0, size=(160, 120), fps=5, freq=300 + 100 * i
            )
            i += 1
