"""Question-answering and choice metrics: MUSIC-AVQA accuracy per modality x question type, AVQA and a2v/v2a
accuracy. Answers are compared after `normalize_answer` (case, underscores, spaces, end punctuation).

MUSIC-AVQA question types read `Modality/Type` (e.g. `Audio-Visual/Temporal`); the benchmark reports accuracy
per type, per modality (all questions of that modality) and overall; those are what `avqa_accuracy` returns.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence


def normalize_answer(text: str | None) -> str | None:
    """Lower-case, underscores and runs of spaces to one space, no surrounding punctuation; None stays None."""
    if text is None:
        return None
    text = re.sub(r"[\s_]+", " ", text.lower()).strip()
    return text.strip(" .,;:!?\"'")


def accuracy(preds: Sequence, gts: Sequence) -> float:
    """Share of positions where the prediction equals the ground truth (a None prediction is wrong)."""
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth samples")
    if not gts:
        return 0.0
    return sum(p is not None and p == g for p, g in zip(preds, gts, strict=True)) / len(gts)


def avqa_accuracy(preds: Sequence[str | None], gts: Sequence[str], question_types: Sequence[str]) -> dict:
    """MUSIC-AVQA accuracy: overall, per modality and per `Modality/Type`.

    Takes predicted answers (None: unparseable), ground-truth answers and question types. Returns
    {"accuracy", "by_modality": {modality: acc}, "by_type": {"Modality/Type": acc}, "counts": {...}, "n"}.
    """
    if not len(preds) == len(gts) == len(question_types):
        raise ValueError("predictions, answers and question types must have the same length")
    hits = [
        normalize_answer(p) is not None and normalize_answer(p) == normalize_answer(g)
        for p, g in zip(preds, gts, strict=True)
    ]
    by_type: dict[str, list[bool]] = defaultdict(list)
    by_modality: dict[str, list[bool]] = defaultdict(list)
    for hit, qtype in zip(hits, question_types, strict=True):
        qtype = qtype or "unknown"
        by_type[qtype].append(hit)
        by_modality[qtype.split("/")[0]].append(hit)
    return {
        "accuracy": sum(hits) / len(hits) if hits else 0.0,
        "by_modality": {m: sum(h) / len(h) for m, h in sorted(by_modality.items())},
        "by_type": {t: sum(h) / len(h) for t, h in sorted(by_type.items())},
        "counts": {t: len(h) for t, h in sorted(by_type.items())},
        "n": len(hits),
    }


def choice_accuracy(preds: Sequence[int | None], gts: Sequence[int]) -> dict:
    """Accuracy of chosen option indices (AVQA's four options; a2v/v2a's two candidates).

    Returns {"accuracy", "n"}; a None prediction (unparseable) is wrong.
    """
    return {"accuracy": accuracy(list(preds), list(gts)), "n": len(gts)}
