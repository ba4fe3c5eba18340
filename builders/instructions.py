"""Every instruction of AV-UIE v2, in one place (train and test use the same text).

Media markers `<video>`, `<audio>`, `<image>` say where each medium goes, in the order of the sample's media, so
that any chat template can render them. `instruction(source, **fields)` fills the source's template.
"""

from __future__ import annotations

_AV = "<video>\n<audio>\n"
_IA = "<image>\n<audio>\n"

INSTRUCTIONS: dict[str, str] = {
    "ave": _AV
    + "This is a 10-second video with its audio. Which event is both audible and visible, and during which whole "
    "seconds [start,end) does it happen? Reason about what you see and hear, then answer as "
    "<event>class</event> <range>start,end</range>.",
    "unav": _AV
    + "This is an untrimmed video of {duration} seconds with its audio. Find every audio-visual event and its "
    "time span. Reason step by step, then list each event as <event>class</event> <range>start,end</range>, "
    "ordered by start time.",
    "avvp": _AV
    + "This is a 10-second video with its audio, split into ten 1-second segments. Parse which events are heard "
    "and which are seen, and in which segments. Reason step by step, then answer with one "
    "<audio_event>class,(start end),...</audio_event> per audible class and one "
    "<visual_event>class,(start end),...</visual_event> per visible class.",
    "avqa": _AV
    + "Watch and listen to this music performance, then answer the question. Question: {question} Reason "
    "step by step, then give the answer as <answer>word</answer>.",
    "avqa_thu": _AV
    + "Watch and listen to the video, then answer the question by choosing one option. Question: {question} "
    "Options: {options}. Reason step by step, then give the chosen option's text as <answer>option</answer>.",
    "s4": _IA
    + "This is one video frame and the 1 second of audio around it. Which object makes the sound? Reason about "
    "what you hear and where it is, then answer with <obj>class</obj> <box>[x1,y1,x2,y2]</box> "
    "<points>[x,y],[x,y],[x,y]</points> in pixels of the 224x224 frame.",
    "ms3": _IA
    + "This is one video frame and the 1 second of audio around it. Several objects may sound. Reason about what "
    "you hear and where each source is, then answer, for every sounding object, with <obj>class</obj> "
    "<box>[x1,y1,x2,y2]</box> <points>[x,y],[x,y],[x,y]</points> in pixels of the 224x224 frame.",
    "ref_avs": _IA
    + 'This is one video frame and the 1 second of audio around it. Referring expression: "{expression}". Is '
    "the referred object in the frame? Reason step by step, then answer <answer>true</answer> followed by "
    "<obj>class</obj> <box>[x1,y1,x2,y2]</box> <points>[x,y],[x,y],[x,y]</points>, or <answer>false</answer>.",
    "arig": _IA
    + "This is one video frame and 5 seconds of audio. Locate the object that makes the sound. Reason step by "
    "step, then answer <obj>class</obj> <box>[x1,y1,x2,y2]</box> in pixels of the 224x224 frame.",
    "avcap": _AV
    + "Describe this 10-second video and its sound in one or two sentences that say what is seen and what is "
    "heard. Reason first, then give the caption as <answer>caption</answer>.",
    "a2v": "<audio>\nVideo 1: <video>\nVideo 2: <video>\n"
    "Which of the two videos matches the audio? Reason about what each video shows and what the audio "
    "sounds like, then answer <answer>video 1</answer> or <answer>video 2</answer>.",
    "v2a": "<video>\nAudio 1: <audio>\nAudio 2: <audio>\n"
    "Which of the two audios belongs to the video? Reason about what the video shows and what each audio "
    "sounds like, then answer <answer>audio 1</answer> or <answer>audio 2</answer>.",
    "ks": _AV
    + "What action is performed in this video? Use both what you see and what you hear. Reason step by step, "
    "then answer <answer>action</answer>.",
    "ucf": _AV
    + "What action is performed in this video? Use both what you see and what you hear. Reason step by step, "
    "then answer <answer>action</answer>.",
    "meld": _AV
    + 'The speaker says: "{utterance}"\nWhat emotion does the speaker express? Use the face, the voice and the '
    "words. Reason step by step, then answer <answer>emotion</answer> (one of: {classes}).",
    "mer24": _AV
    + "What emotion does the person in this clip express? Use the face and the voice. Reason step by step, then "
    "answer <answer>emotion</answer> (one of: {classes}).",
    "cremad": _AV
    + "The actor speaks one sentence. What emotion do the face and the voice express? Reason step by step, then "
    "answer <answer>emotion</answer> (one of: {classes}).",
    "mafw": _AV + "What emotion does the person in this clip express? Reason step by step, then answer "
    "<answer>emotion</answer> (one of: {classes}).",
    "dfew": _AV + "What emotion does the person in this clip express? Reason step by step, then answer "
    "<answer>emotion</answer> (one of: {classes}).",
}


def instruction(source: str, **fields: object) -> str:
    """The instruction of `source` with its fields filled (question, options, expression, duration...)."""
    return INSTRUCTIONS[source].format(**fields)
