"""Class vocabularies of every source, with the canonical names answers use (docs/DESIGN.md, "Task families").

`VOCABULARIES[source]` is the tuple of canonical class names a target label must come from (None where the
label space is open: captions, UnAV-100 whose classes are listed by the annotation file itself). `canonical(source,
raw)` maps a dataset's original label spelling to its canonical name; `display_label` is what answers show.
"""

from __future__ import annotations

import re

from .classes import (
    AVE_CLASSES,
    AVQA_ANSWERS,
    AVSBENCH_LABEL2IDX_NAMES,
    LLP_CLASSES,
    REFAVS_OBJECTS,
    S4_CATEGORIES,
)
from .classes_clips import (
    CREMAD_CODES,
    DFEW_EMOTIONS,
    KINETICS_SOUNDS_CLASSES,
    MAFW_EMOTIONS,
    MELD_EMOTIONS,
    MER24_EMOTIONS,
    UCF101_CLASSES,
)


def split_camel(name: str) -> str:
    """'ApplyEyeMakeup' -> 'apply eye makeup'; 'YoYo' -> 'yo yo'."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name).lower()


def snake_to_words(name: str) -> str:
    """'playing_acoustic_guitar' -> 'playing acoustic guitar'."""
    return name.replace("_", " ").strip().lower()


AVS_CLASSES = tuple(n for n in AVSBENCH_LABEL2IDX_NAMES if n != "background") + tuple(
    snake_to_words(c) for c in S4_CATEGORIES
)

VOCABULARIES: dict[str, tuple[str, ...] | None] = {
    "ave": AVE_CLASSES,
    "unav": None,
    "avvp": LLP_CLASSES,
    "avqa": AVQA_ANSWERS,
    "avqa_thu": None,
    "s4": AVS_CLASSES,
    "ms3": AVS_CLASSES,
    "arig": AVS_CLASSES,
    "ref_avs": REFAVS_OBJECTS,
    "avcap": None,
    "a2v": None,
    "v2a": None,
    "ks": KINETICS_SOUNDS_CLASSES,
    "ucf": tuple(split_camel(c) for c in UCF101_CLASSES),
    "meld": MELD_EMOTIONS,
    "mer24": MER24_EMOTIONS,
    "cremad": tuple(CREMAD_CODES.values()),
    "mafw": MAFW_EMOTIONS,
    "dfew": DFEW_EMOTIONS,
}


def register_vocabulary(source: str, classes: tuple[str, ...] | list[str] | None) -> None:
    """Record the closed class list of `source` (None: open labels), for a source outside the table above.

    Builders call it through `@register` when they declare `classes`; a source already known with another list
    raises ValueError (one list per source).
    """
    new = None if classes is None else tuple(classes)
    if source in VOCABULARIES and VOCABULARIES[source] != new:
        raise ValueError(f"source {source!r} already has another class list")
    VOCABULARIES[source] = new


def vocabulary(source: str) -> tuple[str, ...] | None:
    """The closed class list of a source, or None where labels are open (captions, UnAV, AVQA options)."""
    return VOCABULARIES.get(source)


def canonical(source: str, raw: str) -> str:
    """Map an original label spelling to the source's canonical name (case- and space-insensitive match).

    Raises ValueError when the label is not in a closed vocabulary.
    """
    vocab = vocabulary(source)
    text = " ".join(str(raw).split())
    if vocab is None:
        return text
    if text in vocab:
        return text
    folded = {_fold(v): v for v in vocab}
    for candidate in (text, snake_to_words(text), split_camel(text)):
        hit = folded.get(_fold(candidate))
        if hit is not None:
            return hit
    raise ValueError(f"label {raw!r} is not in the {source} class list")


def _fold(text: str) -> str:
    return re.sub(r"[\s_]+", " ", text).strip().lower()
