"""Every instruction of AV-UIE v2, in one place (train and test use the same text).

Media markers `<video>`, `<audio>`, `<image>` say where each medium goes, in the order of the sample's media, so
that any chat template can render them. `instruction(source, **fields)` fills the source's template; the form of
the final answer it asks for (`{answer_format}`) comes from `avuie.schemas.wordings.answer_format` for the
source's target kind (`KINDS`), in the default answer style.
"""

from __future__ import annotations

from avuie.schemas.wordings import answer_format

_AV = "<video>\n<audio>\n"
_IA = "<image>\n<audio>\n"

_FORM = " Reason step by step, then answer in this form: {answer_format}"
_PIXELS = " Coordinates are pixels of the 224x224 frame."
_EMOTION = " CLASS is one emotion (one of: {classes})." + _FORM

INSTRUCTIONS: dict[str, str] = {
    "ave": _AV
    + "This is a 10-second video with its audio. Which event is both audible and visible, and during which whole "
    "seconds [start,end) does it happen? Use what you see and what you hear." + _FORM,
    "unav": _AV
    + "This is an untrimmed video of {duration} seconds with its audio. Find every audio-visual event and its "
    "time span, and list the events ordered by start time." + _FORM,
    "avvp": _AV
    + "This is a 10-second video with its audio, split into ten 1-second segments. Parse which events are heard "
    "and which are seen, and in which segments." + _FORM,
    "avqa": _AV
    + "Watch and listen to this music performance, then answer the question. Question: {question}"
    + _FORM,
    "avqa_thu": _AV
    + "Watch and listen to the video, then answer the question by choosing one option. Question: {question} "
    "Options: {options}." + _FORM,
    "s4": _IA
    + "This is one video frame and the 1 second of audio around it. Which object makes the sound, and where is "
    "it?" + _PIXELS + _FORM,
    "ms3": _IA
    + "This is one video frame and the 1 second of audio around it. Several objects may sound. Which ones, and "
    "where are they?" + _PIXELS + _FORM,
    "ref_avs": _IA
    + 'This is one video frame and the 1 second of audio around it. Referring expression: "{expression}". Is '
    "the referred object in the frame, and where?" + _PIXELS + _FORM,
    "arig": _IA
    + "This is one video frame and 5 seconds of audio. Locate the object that makes the sound."
    + _PIXELS
    + _FORM,
    "avcap": _AV
    + "Describe this 10-second video and its sound in one or two sentences that say what is seen and what is "
    "heard." + _FORM,
    "a2v": "<audio>\nVideo 1: <video>\nVideo 2: <video>\n"
    "Which of the two videos matches the audio? Think about what each video shows and what the audio sounds "
    "like." + _FORM,
    "v2a": "<video>\nAudio 1: <audio>\nAudio 2: <audio>\n"
    "Which of the two audios belongs to the video? Think about what the video shows and what each audio sounds "
    "like." + _FORM,
    "ks": _AV + "What action is performed in this video? Use both what you see and what you hear." + _FORM,
    "ucf": _AV + "What action is performed in this video? Use both what you see and what you hear." + _FORM,
    "meld": _AV
    + 'The speaker says: "{utterance}"\nWhat emotion does the speaker express? Use the face, the voice and the '
    "words." + _EMOTION,
    "mer24": _AV
    + "What emotion does the person in this clip express? Use the face and the voice."
    + _EMOTION,
    "cremad": _AV
    + "The actor speaks one sentence. What emotion do the face and the voice express?"
    + _EMOTION,
    "mafw": _AV + "What emotion does the person in this clip express?" + _EMOTION,
    "dfew": _AV + "What emotion does the person in this clip express?" + _EMOTION,
}


# The target kind each source's answer renders (what `{answer_format}` describes).
KINDS: dict[str, str] = {
    "ave": "single_event",
    "unav": "dense_events",
    "avvp": "av_parsing",
    "avqa": "open_qa",
    "avqa_thu": "multiple_choice",
    "s4": "segmentation",
    "ms3": "segmentation",
    "ref_avs": "referring_segmentation",
    "arig": "grounding",
    "avcap": "caption",
    "a2v": "matching",
    "v2a": "matching",
} | {s: "classification" for s in ("ks", "ucf", "meld", "mer24", "cremad", "mafw", "dfew")}


def register_instruction(source: str, template: str, kind: str) -> None:
    """Record the instruction template of a source outside the tables above and the target kind its answer
    renders; `{answer_format}` in the template becomes that kind's answer form. Builders call it through
    `@register` when they declare `instruction_template`; another template for a known source raises ValueError.
    """
    if INSTRUCTIONS.get(source, template) != template or KINDS.get(source, kind) != kind:
        raise ValueError(f"source {source!r} already has another instruction or answer kind")
    INSTRUCTIONS[source], KINDS[source] = template, kind


def instruction(source: str, **fields: object) -> str:
    """The instruction of `source` with its fields filled (question, options, expression, duration...) and the
    answer form of its target kind."""
    return INSTRUCTIONS[source].format(answer_format=answer_format(KINDS[source], source), **fields)
