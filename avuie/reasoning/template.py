"""The deterministic offline reasoning: a few sentences per family built from the annotation.

The chain ties what is seen to what is heard with times and positions, and ends with the lead-in to the final
answer (`schemas.wordings.answer_lead`: "So the answer is", or nothing where the answer is a sentence); the
pipeline appends the answer. It never contains answer tags or answer syntax itself. Same sample in, same text out.
"""

from __future__ import annotations

from typing import Any

from avuie.schemas import DEFAULT_STYLE, TARGET_TYPES, answer_style
from avuie.schemas.wordings import answer_lead

TEMPLATE_VERSION = "template-v2"


def _secs(start: float, end: float) -> str:
    def f(x: float) -> str:
        return str(int(x)) if float(x) == int(x) else f"{x:.1f}"

    return f"from second {f(start)} to second {f(end)}"


def _where(box: list[int] | tuple[int, ...], size: tuple[int, int] = (224, 224)) -> str:
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2 / size[0], (y1 + y2) / 2 / size[1]
    horiz = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "centre"
    vert = "upper" if cy < 1 / 3 else "lower" if cy > 2 / 3 else "middle"
    area = (x2 - x1 + 1) * (y2 - y1 + 1) / (size[0] * size[1])
    scale = "a large" if area > 0.25 else "a small" if area < 0.05 else "a medium-sized"
    return f"{scale} region in the {vert} {horiz} of the frame"


def _modality_list(events: dict[str, list]) -> str:
    parts = []
    for label, segs in sorted(events.items(), key=lambda kv: (kv[1][0][0], kv[0])):
        spans = ", ".join(_secs(s, e) for s, e in segs)
        parts.append(f"{label.replace('_', ' ')} ({spans})")
    return "; ".join(parts)


def template_reasoning(sample: dict[str, Any], context: dict[str, Any] | None = None) -> str:
    """The template chain of a sample draft (its `target` as a dict or model, its source, media and answer)."""
    t = sample["target"]
    t = t if isinstance(t, dict) else t.model_dump()
    kind = t["kind"]
    style = DEFAULT_STYLE
    if sample.get("answer"):
        target = TARGET_TYPES[kind].model_validate(t)
        style = answer_style(sample["answer"], target, sample.get("source")) or DEFAULT_STYLE
    ctx = {**(context or {}), "answer_style": style}
    return f"{_BY_KIND[kind](t, sample, ctx).strip()} {answer_lead(kind, style)}".strip()


def _single_event(t: dict, sample: dict, ctx: dict) -> str:
    dur = t["duration"]
    if t["start"] == t["end"]:
        return (
            f"I watch the {dur:g}-second clip and listen to its audio track segment by segment. The annotation "
            f"names {t['label']} for this clip but marks no whole second where it is both seen and heard, so the "
            f"interval is empty."
        )
    return (
        f"I watch the {dur:g}-second clip and listen to its audio track one second at a time. The sound of "
        f"{t['label'].lower()} is heard {_secs(t['start'], t['end'])}, and in the same seconds the frames show its "
        f"source, so the event is both audible and visible there; outside that span the sound and the picture "
        f"do not agree."
    )


def _dense_events(t: dict, sample: dict, ctx: dict) -> str:
    events = t["events"]
    lines = [f"{e['label']} {_secs(e['start'], e['end'])}" for e in events]
    overlap = any(b["start"] < a["end"] for a, b in zip(events, events[1:], strict=False))
    return (
        f"I scan the {t['duration']:g}-second video and its audio from start to end. I find {len(events)} "
        f"audio-visual event{'s' if len(events) != 1 else ''}, each seen and heard together: "
        + "; ".join(lines)
        + "."
        + (" Some events overlap in time." if overlap else "")
        + " I list them by start time."
    )


def _av_parsing(t: dict, sample: dict, ctx: dict) -> str:
    audio, visual = t.get("audio", {}), t.get("visual", {})
    both = sorted(set(audio) & set(visual))
    text = "I split the 10-second clip into ten 1-second segments and check each modality on its own. "
    if t.get("weak"):
        text += "The clip-level labels say which events occur; without finer evidence each one spans the whole clip. "
    if audio:
        text += f"In the audio I hear: {_modality_list(audio)}. "
    else:
        text += "Nothing annotated is heard in the audio. "
    if visual:
        text += f"In the frames I see: {_modality_list(visual)}. "
    else:
        text += "Nothing annotated is visible in the frames. "
    if both:
        text += f"{', '.join(b.replace('_', ' ') for b in both)} is both heard and seen. "
    only_a = sorted(set(audio) - set(visual))
    if only_a:
        text += f"{', '.join(a.replace('_', ' ') for a in only_a)} is heard but its source is not visible. "
    return text


def _open_qa(t: dict, sample: dict, ctx: dict) -> str:
    qtype = t.get("question_type") or "question"
    modality = qtype.split("/")[0] if "/" in qtype else "audio-visual"
    return (
        f'The question is: "{t["question"].strip()}" It is a {qtype.replace("/", " ").lower()} question, so I '
        f"rely on the {modality.lower()} evidence of the performance. Following the instruments as they are seen "
        f"on stage and heard in the mix over the clip, the evidence points to {t['answer']}."
    )


def _multiple_choice(t: dict, sample: dict, ctx: dict) -> str:
    options = t["options"]
    answer = options[t["answer_index"]]
    others = [o for o in options if o != answer]
    return (
        f'The question is: "{t["question"].strip()}" I compare the options with what the video shows and what '
        f"the audio carries. {answer} fits both the scene and the sound, while "
        + ", ".join(others)
        + " do not match what is seen and heard."
    )


def _groups_text(groups: list[dict], size: tuple[int, int]) -> str:
    parts = []
    for g in groups:
        parts.append(f"the {g['label']} occupies {_where(g['box'], size)}")
    return "; ".join(parts)


def _segmentation(t: dict, sample: dict, ctx: dict) -> str:
    size = tuple(t.get("frame_size", (224, 224)))
    groups = t["groups"]
    heard = ", ".join(g["label"] for g in groups)
    if len(groups) > 1 and ctx.get("answer_style") == "crab":
        marking = "One box around all of them and three points on them mark where the sound comes from."
    else:
        marking = "I mark each sounding object with its box and three points on it."
    return (
        f"I listen to the audio aligned with this frame and hear {heard}. Looking for the source in the frame, "
        f"{_groups_text(groups, size)}. {marking}"
    )


def _referring(t: dict, sample: dict, ctx: dict) -> str:
    expr = t["expression"].strip().rstrip(".")
    if not t["present"]:
        return (
            f'The expression asks for "{expr}". I check the frame and the sound, and no object in the scene '
            f"fits that description, so the referred object is not there."
        )
    size = tuple(t.get("frame_size", (224, 224)))
    return (
        f'The expression asks for "{expr}". Matching the description against the frame and the sound, '
        f"{_groups_text(t['groups'], size)}, which is the referred object."
    )


def _grounding(t: dict, sample: dict, ctx: dict) -> str:
    size = tuple(t.get("frame_size", (224, 224)))
    return (
        f"Over the five seconds of audio I hear a {t['label']}. In the frame, the {t['label']} is "
        f"{_where(t['box'], size)}, which is where the sound comes from."
    )


def _caption(t: dict, sample: dict, ctx: dict) -> str:
    return (
        "I look at what happens in the frames over the 10 seconds and listen to the sounds that go with it: "
        "who or what is visible, what they do, and which sounds, speech or music accompany them. Putting the "
        "picture and the sound together, I describe the clip in one caption."
    )


def _matching(t: dict, sample: dict, ctx: dict) -> str:
    q = t["query_label"]
    labels = t["candidate_labels"]
    if t["direction"] == "a2v":
        return (
            f"The audio sounds like {q}. Video 1 shows {labels[0]} and video 2 shows {labels[1]}. Only video "
            f"{t['answer_index'] + 1} shows something that would make this sound."
        )
    return (
        f"The video shows {q}. Audio 1 sounds like {labels[0]} and audio 2 sounds like {labels[1]}. Only audio "
        f"{t['answer_index'] + 1} is what this scene would sound like."
    )


def _classification(t: dict, sample: dict, ctx: dict) -> str:
    label = t["label"]
    if sample.get("family") == "emotion_recognition":
        return (
            f"I read the face in the frames and listen to the voice in the audio. The expression and the tone "
            f"of voice agree with each other and both convey {label}."
        )
    return (
        f"I follow the motion across the frames and listen to the sound it makes. The movements and the sound "
        f"together are typical of {label}."
    )


_BY_KIND = {
    "single_event": _single_event,
    "dense_events": _dense_events,
    "av_parsing": _av_parsing,
    "open_qa": _open_qa,
    "multiple_choice": _multiple_choice,
    "segmentation": _segmentation,
    "referring_segmentation": _referring,
    "grounding": _grounding,
    "caption": _caption,
    "matching": _matching,
    "classification": _classification,
}
