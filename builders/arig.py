"""ARIG: audio-referred image grounding on the AVSBench S4 clips (Crab's grounding task derived from v1s masks).

Reads the same raw tree as s4 (see _avsbench.py: AVSBench-semantic `v1s` or AVSBench-object `Single-source`), one
sample per annotated S4 frame (native_id `<uid>_f<frame>`). Media: the frame and five seconds of the clip's
audio (start 0, duration 5) with five 1 s segments as windows. Target: the sounding object's class and tight box
in the frame (GroundingTarget), from the frame's mask resized to the frame size (nearest). When a mask holds
several classes, the one with the most pixels at frame size is the answer (ties: the lower palette index); a
mask with nothing sounding is rejected (`empty_mask`); classes below `min_area` are noise, as in s4. The mask
itself is not written: grounding needs none.

Parameters: as s4 (`release`, `media`, `mask_encoding`, `subsets` default "v1s", `min_area`).
"""

from __future__ import annotations

from collections.abc import Iterator

from avuie.schemas import GroundingTarget, canonical

from ._avsbench import AvsBenchBuilder, AvsClip
from ._clip import second_windows
from ._masks import Invalid, frame_size
from .base import AudioMedia, Cut, MaskMedia, Record, register

AUDIO_SECONDS = 5


@register
class ArigBuilder(AvsBenchBuilder):
    """ARIG: one S4 frame + 5 s of audio; the sounding object's class and box."""

    name = "arig"
    raw_aliases = ("s4", "avsbench")
    layout = "the s4 raw tree (AVSBench-semantic v1s or AVSBench-object Single-source)"
    description = "one S4 frame + 5 s of audio (five 1 s segments); the sounding object's class and box"

    def clip_records(self, clip: AvsClip) -> Iterator[Record]:
        """As s4, with the clip's first five seconds of audio in five 1 s windows instead of the frame's 1 s."""
        for record in super().clip_records(clip):
            record.media[1] = AudioMedia(
                clip.audio,
                start=0.0,
                duration=float(AUDIO_SECONDS),
                windows=second_windows(AUDIO_SECONDS),
            )
            yield record

    def make_target(self, record: Record, cut: Cut) -> GroundingTarget:
        """The class with the most pixels at frame size, and its tight box."""
        from avuie.media.images import mask_geometry, resize_mask

        size = frame_size(cut)
        best = None
        for label, mask in self.record_classes(record, cut):
            small = resize_mask(mask, size)
            if mask.mean() >= self.min_area and small.any() and (best is None or small.sum() > best[1].sum()):
                best = (label, small)
        if best is None:
            path = next(str(m.path) for m in record.media if isinstance(m, MaskMedia))
            raise Invalid("empty_mask", f"nothing sounds in {path}")
        try:
            label = canonical(self.name, best[0])
        except ValueError as exc:
            raise Invalid("unknown_class", str(exc)) from exc
        box, _ = mask_geometry(best[1])
        return GroundingTarget(label=label, box=tuple(box), frame_size=size)
