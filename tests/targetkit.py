"""Hypothesis strategies for every target kind (shared by the answer, schema and hostile-input tests)."""

from __future__ import annotations

from avuie.schemas import (
    AVParsingTarget,
    CaptionTarget,
    ClassificationTarget,
    DenseEventsTarget,
    GroundingTarget,
    MatchingTarget,
    MultipleChoiceTarget,
    ObjectGroup,
    OpenQATarget,
    ReferringSegmentationTarget,
    SegmentationTarget,
    SingleEventTarget,
)
from avuie.schemas.classes import AVE_CLASSES, AVQA_ANSWERS, LLP_CLASSES
from hypothesis import strategies as st

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
label = st.lists(words, min_size=1, max_size=3).map(" ".join)


@st.composite
def single_events(draw):
    s = draw(st.integers(0, 9))
    e = draw(st.integers(s + 1, 10))
    return SingleEventTarget(label=draw(st.sampled_from(AVE_CLASSES)), start=s, end=e)


@st.composite
def dense_events(draw):
    dur = draw(st.floats(5, 200).map(lambda x: round(x, 1)))
    events = []
    for _ in range(draw(st.integers(1, 5))):
        s = round(draw(st.floats(0, dur - 1)), 1)
        e = round(draw(st.floats(s + 0.1, dur)), 1)
        if e > s:
            events.append({"label": draw(label), "start": s, "end": e})
    if not events:
        events = [{"label": "dog barking", "start": 0.0, "end": 1.0}]
    events.sort(key=lambda ev: (ev["start"], ev["end"], ev["label"]))
    return DenseEventsTarget(events=events, duration=dur)


def _segments(draw):
    cuts = sorted(draw(st.sets(st.integers(0, 10), min_size=2, max_size=6)))
    pairs = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)]
    return pairs


@st.composite
def av_parsing(draw):
    audio = {c: _segments(draw) for c in draw(st.sets(st.sampled_from(LLP_CLASSES), max_size=3))}
    visual = {c: _segments(draw) for c in draw(st.sets(st.sampled_from(LLP_CLASSES), max_size=3))}
    if not audio and not visual:
        audio = {"Speech": [(0, 10)]}
    return AVParsingTarget(audio=audio, visual=visual)


@st.composite
def groups(draw, n_min=1):
    out = []
    for i in range(draw(st.integers(n_min, 3))):
        x1, x2 = sorted(draw(st.lists(st.integers(0, 223), min_size=2, max_size=2)))
        y1, y2 = sorted(draw(st.lists(st.integers(0, 223), min_size=2, max_size=2)))
        pts = [(draw(st.integers(x1, x2)), draw(st.integers(y1, y2))) for _ in range(3)]
        out.append(ObjectGroup(label=draw(label), box=(x1, y1, x2, y2), points=pts, mask=f"mask_{i}.png"))
    return out


@st.composite
def choices(draw):
    opts = draw(st.lists(label, min_size=4, max_size=4, unique_by=lambda s: s.lower()))
    return MultipleChoiceTarget(question="Which one?", options=opts, answer_index=draw(st.integers(0, 3)))


@st.composite
def matchings(draw):
    q, other = draw(st.lists(label, min_size=2, max_size=2, unique=True))
    idx = draw(st.sampled_from([0, 1]))
    cands = (q, other) if idx == 0 else (other, q)
    return MatchingTarget(
        direction=draw(st.sampled_from(["a2v", "v2a"])),
        answer_index=idx,
        query_label=q,
        candidate_labels=cands,
    )


@st.composite
def referring(draw):
    present = draw(st.booleans())
    return ReferringSegmentationTarget(
        expression="the dog on the left", present=present, groups=draw(groups()) if present else []
    )


any_target = st.one_of(
    single_events(),
    dense_events(),
    av_parsing(),
    st.builds(OpenQATarget, question=st.just("What is heard?"), answer=st.sampled_from(AVQA_ANSWERS)),
    choices(),
    st.builds(SegmentationTarget, groups=groups()),
    referring(),
    st.builds(GroundingTarget, label=label, box=st.just((10, 20, 100, 200))),
    st.builds(CaptionTarget, caption=st.lists(words, min_size=1, max_size=12).map(" ".join)),
    matchings(),
    st.builds(ClassificationTarget, label=label, original_label=label),
)
