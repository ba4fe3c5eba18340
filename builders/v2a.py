"""Video-to-audio matching (v2a): one video and two audios; which audio belongs to the video?

The pairs are drawn from a labelled audio-visual source (parameter `pair_source`, default `ave`, read with that
source's builder over the same raw root; see builders/_pairs.py): the positive audio is the query video's own
soundtrack, the negative that of a clip of another class from the same split, the correct position balanced
and drawn from `seed` (default 0). Media: the query clip's frames without audio (role `video`), then the two
candidate audios (roles `audio_1`, `audio_2`; members `audio_1.wav`, `audio_2.wav`).
"""

from __future__ import annotations

from dataclasses import replace

from ._pairs import PairBuilder, PairClip
from .base import MediaRequest, register


@register
class V2aBuilder(PairBuilder):
    """v2a matching pairs: the frames of one clip against the audio of two clips."""

    name = "v2a"
    raw_aliases = ("ave",)
    direction = "v2a"
    description = "a video and two audios (its own, and one of another class); which audio matches"

    def pair_media(self, query: PairClip, candidates: list[PairClip]) -> list[MediaRequest]:
        """The query frames, then audio 1 and audio 2."""
        video = replace(query.video, role="video", prefix="", audio_role=None)
        audios = [
            replace(c.audio, role=f"audio_{k}", file=f"audio_{k}.wav")
            for k, c in enumerate(candidates, start=1)
        ]
        return [video, *audios]
