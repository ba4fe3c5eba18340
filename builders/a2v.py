"""Audio-to-video matching (a2v): one audio and two videos; which video does the audio belong to?

The pairs are drawn from a labelled audio-visual source (parameter `pair_source`, default `ave`, read with that
source's builder over the same raw root; see builders/_pairs.py): the positive video is the query audio's own
clip, the negative a clip of another class from the same split, the correct position balanced and drawn from
`seed` (default 0). Media: the query clip's audio (`audio.wav`, with the pair source's audio windows), then
the two candidates' frames without audio (roles `video_1`, `video_2`; members `v1_frame_XX.jpg`,
`v2_frame_XX.jpg`).
"""

from __future__ import annotations

from dataclasses import replace

from ._pairs import PairBuilder, PairClip
from .base import MediaRequest, register


@register
class A2vBuilder(PairBuilder):
    """a2v matching pairs: the audio of one clip against the frames of two clips."""

    name = "a2v"
    raw_aliases = ("ave",)
    direction = "a2v"
    description = "an audio and two videos (one its own clip, one of another class); which video matches"

    def pair_media(self, query: PairClip, candidates: list[PairClip]) -> list[MediaRequest]:
        """The query audio, then the frames of video 1 and video 2."""
        audio = replace(query.audio, role="audio", file="audio.wav")
        videos = [
            replace(c.video, role=f"video_{k}", prefix=f"v{k}_", audio_role=None)
            for k, c in enumerate(candidates, start=1)
        ]
        return [audio, *videos]
