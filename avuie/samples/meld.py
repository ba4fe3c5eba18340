"""Bundled MELD sample: the three `*_sent_emo.csv` files and utterance clips in the release's split folders.

Rows use the release's columns and quoting (utterances with commas and curly quotes, times `"hh:mm:ss,ms"`);
clips are `dia{D}_utt{U}.mp4` in `train_splits/`, `dev_splits_complete/` and `output_repeated_splits_test/`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from avuie.media.synth import make_video

VERSION = 1
RAW_SUBDIR = ""
HEADER = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID", "Season",
          "Episode", "StartTime", "EndTime"]  # fmt: skip

# csv file, clip folder, rows (utterance, speaker, emotion, sentiment, dialogue, utterance id, seconds)
SPLITS = [
    ("train_sent_emo.csv", "train_splits", [
        ("Oh, that’s so great, I can’t believe it!", "Monica", "joy", "positive", 0, 0, 3.0),
        ("You did what?", "Ross", "surprise", "negative", 0, 1, 5.0),
    ]),
    ("dev_sent_emo.csv", "dev_splits_complete", [
        ("I don’t want to talk about it, okay?", "Rachel", "anger", "negative", 3, 2, 2.5),
    ]),
    ("test_sent_emo.csv", "output_repeated_splits_test", [
        ("Well, it’s just a couch.", "Joey", "neutral", "neutral", 1, 0, 3.0),
    ]),
]  # fmt: skip


def generate(root: Path) -> None:
    """Write the CSVs and the synthesized clips under root."""
    root = Path(root)
    n = 0
    for fname, folder, rows in SPLITS:
        with open(root / fname, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(HEADER)
            for k, (utt, speaker, emo, senti, dia, uid, secs) in enumerate(rows, start=1):
                start = f"00:{10 + k:02d}:05,120"
                end = f"00:{10 + k:02d}:{5 + int(secs):02d},{int(secs * 1000) % 1000:03d}"
                writer.writerow([k, utt, speaker, emo, senti, dia, uid, 4, 12, start, end])
                make_video(root / folder / f"dia{dia}_utt{uid}.mp4", duration=secs, size=(160, 120), fps=10,
                           freq=300 + 70 * n)  # fmt: skip
                n += 1
