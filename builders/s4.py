"""AVSBench S4 (Zhou et al., ECCV 2022): single sound source segmentation, one sample per annotated frame.

The AVSBench releases, the media and the target are read as builders/_avsbench.py describes (shared with ms3
and arig); S4 reads the `v1s` subset of AVSBench-semantic or `Single-source/` of AVSBench-object.
"""

from __future__ import annotations

from ._avsbench import AvsBenchBuilder
from .base import register


@register
class S4Builder(AvsBenchBuilder):
    """AVSBench S4: one sample per annotated frame of a single-source clip."""

    name = "s4"
    raw_aliases = ("avsbench",)
    layout = (
        "AVSBench-semantic {metadata.csv,label2idx.json,v1s/<uid>/{audio.wav,frames/{i}.jpg,labels_semantic/{i}.png}} "
        "or AVSBench-object Single-source/{s4_meta_data.csv,s4_data/...}"
    )
    description = "one frame + its 1 s of audio; the sounding object's class, box, 3 points and mask"
