"""What Crab+ feeds its model per task: frames, audio windows and the audio slot of a frame (the one home of these
facts; builders, exporters and tests read them here).

From GeWu-Lab/Crab_Plus (commit 7ddc56d): `dataset/qwen2_5_omni/omni_dataset.py` asks decord for `nframes`
frames per video (10, or 4 for the emotion tasks; lines 145, 319, 403, ...) and `vision_process.py` takes them
at `linspace(0, total_frames - 1, nframes).round()` (220, 317); `dataset/qwen_omni_utils/v2_5/audio_process.py`
`process_audio_by_task` cuts the 16 kHz audio (first padding it to at least 1 s, 100-102):

- `tenths` (a2v, v2a, ks, ucf, avqa_thu, ave, avvp, unav, avcap; 129-144): the whole file as ten equal parts;
- `avqa` (110-127): ten 2 s windows [6k - 0.5, 6k + 1.5] of the 60 s clip, the first padded with 0.5 s of silence;
- `first4` (mer24, meld, dfew, mafw, cremad; 146-162): the first 4 s, padded with silence to 4 s;
- `fifths` (arig; 164-180): the whole file as five equal parts;
- `slot` (s4, ms3 of 5 s, 182-199; ref_avs of 10 s, 201-218): one part, the entry's `idx` (s4's training loader
  passes 0, omni_dataset.py:810; its test loader `frame_idx`, 1887).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CrabMedia:
    """One task's media in Crab+: video frames asked for (None: an image task), the audio cut and its parts."""

    frames: int | None
    audio: str  # tenths | avqa | first4 | fifths | slot
    parts: int  # how many equal parts the cut divides the audio into (slot: the file's length in seconds)


_TENTHS = CrabMedia(10, "tenths", 10)
_EMOTION = CrabMedia(4, "first4", 4)
CRAB_MEDIA: dict[str, CrabMedia] = {
    **{t: _TENTHS for t in ("a2v", "v2a", "ks", "ucf", "avqa_thu", "ave", "avvp", "unav", "avcap")},
    **{t: _EMOTION for t in ("meld", "mer24", "cremad", "mafw", "dfew")},
    "avqa": CrabMedia(10, "avqa", 10),
    "arig": CrabMedia(None, "fifths", 5),
    "s4": CrabMedia(None, "slot", 5),
    "ms3": CrabMedia(None, "slot", 5),
    "ref_avs": CrabMedia(None, "slot", 10),
}


def audio_slot(task: str, split_file: str, frame_idx: int) -> int:
    """The second (slot) of its audio file Crab+'s loader feeds for an image-task entry in `split_file`.json.

    Every loader cuts the entry's `frame_idx` but s4's training loader, which always cuts slot 0. val.json is
    read by neither loader: it is an evaluation split, so it follows the test loader (renamed test.json, it reads).
    """
    return 0 if (task, split_file) == ("s4", "train") else frame_idx


def avqa_windows() -> list[tuple[float, float]]:
    """Crab+'s MUSIC-AVQA windows in seconds of the 60 s clip (the first starts 0.5 s before the clip)."""
    return [(6.0 * k - 0.5, 6.0 * k + 1.5) for k in range(10)]
