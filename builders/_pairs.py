"""Cross-modal matching pairs (a2v, v2a) drawn from a labelled audio-visual source.

The release does not say which source the pairs come from, so it is a parameter. `PairBuilder.read` reads the
pair source with its own builder over the same raw root, groups its records into clips (one clip per media file
and time span; a clip with two labelled events, as 45 AVE videos have, carries both labels), and per split
makes one pair per clip (labels of the same clip in other splits count too): the query is the clip's audio (a2v) or frames (v2a); the two candidates are the same
clip's other modality and that of a negative clip of the same split that shares none of the query's labels.
The correct position is balanced (half 0, half 1, shuffled) and everything is drawn from `random.Random` seeded
by the `seed` parameter and the split, so the same seed gives the same pairs.

Parameters: `pair_source` (default `ave`), `seed` (default 0), `source_params` (a dict handed to the pair
source's builder, e.g. `{"classes": [...]}` for ks).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avuie.schemas import MatchingTarget, TaskFamily, target_labels

from .base import AudioMedia, Builder, BuilderError, MediaRequest, Record, Reject, VideoMedia
from .instructions import instruction

DRAW_ATTEMPTS = 64


@dataclass
class PairClip:
    """One clip of the pair source: where its frames and its audio come from, and its labels."""

    record: Record
    video: VideoMedia
    audio: AudioMedia
    labels: list[str] = field(default_factory=list)


def clip_of(record: Record) -> PairClip | None:
    """The clip a pair-source record describes (None when it has no video or no label)."""
    videos = [m for m in record.media if isinstance(m, VideoMedia)]
    if not videos or record.target is None:
        return None
    v = videos[0]
    audios = [m for m in record.media if isinstance(m, AudioMedia)]
    if audios:
        a = audios[0]
        audio = AudioMedia(path=a.path, start=a.start, duration=a.duration, windows=a.windows)
    else:
        audio = AudioMedia(path=v.path, start=v.start, duration=v.duration, windows=v.audio_windows)
    video = VideoMedia(
        path=v.path, num_frames=v.num_frames, start=v.start, duration=v.duration, audio_role=None
    )
    labels = list(dict.fromkeys(target_labels(record.target)))
    return PairClip(record, video, audio, labels) if labels else None


def clip_key(clip: PairClip) -> tuple:
    """What makes two records the same clip: the file and the span of its frames."""
    return (str(clip.video.path), clip.video.start, clip.video.duration)


def group_clips(records: list[Record], every_label: dict[tuple, list[str]] | None = None) -> list[PairClip]:
    """Records grouped into clips (same file and span), in read order; a clip keeps every label of its records.

    `every_label` adds the labels the same clip has in other splits (a video whose two events fall in two
    splits), so that no negative is drawn from a class the query clip also shows.
    """
    clips: dict[tuple, PairClip] = {}
    for r in records:
        clip = clip_of(r)
        if clip is None:
            continue
        key = clip_key(clip)
        if key in clips:
            clips[key].labels += [lab for lab in clip.labels if lab not in clips[key].labels]
        else:
            clips[key] = clip
    for key, clip in clips.items():
        clip.labels += [lab for lab in (every_label or {}).get(key, []) if lab not in clip.labels]
    return list(clips.values())


def labels_by_clip(records: list[Record]) -> dict[tuple, list[str]]:
    """Every label of every clip over all splits."""
    out: dict[tuple, list[str]] = {}
    for r in records:
        clip = clip_of(r)
        if clip is not None:
            labels = out.setdefault(clip_key(clip), [])
            labels += [lab for lab in clip.labels if lab not in labels]
    return out


def draw_negative(rng: random.Random, clips: list[PairClip], i: int) -> PairClip | None:
    """A clip of `clips` sharing no label with clip i (random tries, then a scan from a random offset)."""
    query = set(clips[i].labels)
    n = len(clips)
    for _ in range(DRAW_ATTEMPTS):
        j = rng.randrange(n)
        if j != i and not query & set(clips[j].labels):
            return clips[j]
    offset = rng.randrange(n)
    for k in range(n):
        j = (offset + k) % n
        if j != i and not query & set(clips[j].labels):
            return clips[j]
    return None


def make_pairs(clips: list[PairClip], seed: Any, split: str) -> list[tuple[PairClip, PairClip | None, int]]:
    """(query clip, negative clip or None, answer index) per clip, drawn deterministically from seed and split."""
    rng = random.Random(f"{seed}:{split}")
    positions = [k % 2 for k in range(len(clips))]
    rng.shuffle(positions)
    return [(clip, draw_negative(rng, clips, i), positions[i]) for i, clip in enumerate(clips)]


class PairBuilder(Builder):
    """Base of a2v and v2a: subclasses set `direction` and build the media of one pair."""

    parameters = ("pair_source", "seed", "source_params")

    direction: str = "a2v"
    family = TaskFamily.cross_modal_matching
    license = "that of the pair source (default AVE: none stated, YouTube-derived, research use)"
    layout = "the pair source's layout (parameter pair_source, default ave: AVE_Dataset/...)"

    def pair_media(self, query: PairClip, candidates: list[PairClip]) -> list[MediaRequest]:
        """The media requests of one pair, in the order of the instruction's markers."""
        raise NotImplementedError

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Read the pair source, then yield one pair record per clip of each split (rejects pass through)."""
        from avuie.builders import get_builder

        source = str(self.params.get("pair_source", "ave"))
        seed = self.params.get("seed", 0)
        source_params = self.params.get("source_params") or {}
        if source in ("a2v", "v2a"):
            raise BuilderError(f"pair_source {source!r} is itself a pair builder")
        if not isinstance(source_params, dict):
            raise BuilderError(f"parameter source_params must be a mapping, not {source_params!r}")
        try:
            pair_source = get_builder(source, **source_params)
        except KeyError as exc:
            raise BuilderError(f"parameter pair_source: {exc.args[0]}") from None
        by_split: dict[str, list[Record]] = {}
        for item in pair_source.entries(Path(raw)):
            if isinstance(item, Reject):
                yield item
            else:
                by_split.setdefault(item.split, []).append(item)
        every_label = labels_by_clip([r for records in by_split.values() for r in records])
        if by_split and not every_label:
            raise BuilderError(f"pair_source {source!r} yields no clip with a video and a class label")
        for split, records in by_split.items():
            clips = group_clips(records, every_label)
            for query, negative, answer in make_pairs(clips, seed, split):
                yield self._pair(source, split, query, negative, answer)

    def _pair(
        self, source: str, split: str, query: PairClip, negative: PairClip | None, answer: int
    ) -> Record | Reject:
        r = query.record
        if negative is None:
            detail = f"no other {split} clip of {source} without the labels {query.labels}"
            return Reject(
                split, r.entry, "no_negative", detail, r.native_id, r.annotation_file, r.annotation_row
            )
        candidates = [negative, negative]
        candidates[answer] = query
        labels = (candidates[0].labels[0], candidates[1].labels[0])
        target = MatchingTarget(
            direction=self.direction,
            answer_index=answer,
            query_label=query.labels[0],
            candidate_labels=labels,
        )
        return Record(
            native_id=r.native_id,
            split=split,
            entry=r.entry,
            instruction=instruction(self.name),
            media=self.pair_media(query, candidates),
            target=target,
            context={
                "pair_source": source,
                "query": r.native_id,
                "candidates": [c.record.native_id for c in candidates],
            },
            annotation_file=r.annotation_file,
            annotation_row=r.annotation_row,
        )
