"""Bundled CREMA-D sample: `SentenceFilenames.csv`, `VideoDemographics.csv`, FLV videos and WAV audio.

Actors 1001 (train), 1009 (val) and 1010 (test) under the builder's documented actor rule; names follow
`<ActorID>_<Sentence>_<Emotion>_<Level>`.
"""

from __future__ import annotations

from pathlib import Path

from avuie.media.synth import make_audio, make_video

VERSION = 1
RAW_SUBDIR = ""
NAMES = [
    ("1001_IEO_NEU_XX", 2.5),
    ("1001_DFA_ANG_HI", 3.0),
    ("1009_TIE_HAP_MD", 2.0),
    ("1010_MTI_SAD_LO", 4.5),
]
DEMOGRAPHICS = [(1001, 51, "Male"), (1009, 25, "Female"), (1010, 42, "Female")]


def generate(root: Path) -> None:
    """Write the CSVs, VideoFlash/*.flv and AudioWAV/*.wav under root."""
    root = Path(root)
    rows = ['"Stimulus_Number","Filename"'] + [f'{i},"{n}"' for i, (n, _) in enumerate(NAMES, start=1)]
    (root / "SentenceFilenames.csv").write_text("\n".join(rows))  # the release's file ends without a newline
    demo = ['"ActorID","Age","Sex","Race","Ethnicity"']
    demo += [f'{a},{age},"{sex}","Caucasian","Not Hispanic"' for a, age, sex in DEMOGRAPHICS]
    (root / "VideoDemographics.csv").write_text("\n".join(demo) + "\n")
    for i, (name, secs) in enumerate(NAMES):
        make_video(
            root / "VideoFlash" / f"{name}.flv", duration=secs, size=(160, 120), fps=10, freq=300 + 60 * i
        )
        make_audio(root / "AudioWAV" / f"{name}.wav", duration=secs, sample_rate=16000, freq=300 + 60 * i)
