"""Classification metrics (Kinetics-Sounds, UCF101, the emotion sets): accuracy, UAR and WAR.

UAR (unweighted average recall) = the mean over the ground-truth classes of each class's recall; WAR (weighted
average recall) = recalls weighted by class frequency, which equals plain accuracy (the DFEW / MAFW convention).
Classes that only ever appear as predictions do not enter UAR. Labels are compared case- and space-insensitively.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from avuie.eval.metrics_qa import normalize_answer


def classification_scores(preds: Sequence[str | None], gts: Sequence[str]) -> dict:
    """Accuracy, UAR, WAR and per-class recall of predicted labels (None: unparseable, counts as wrong).

    Returns {"accuracy", "uar", "war", "per_class_recall": {label: recall}, "n"}.
    """
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth samples")
    truth = [normalize_answer(g) for g in gts]
    guess = [normalize_answer(p) for p in preds]
    support = Counter(truth)
    hits = Counter(t for p, t in zip(guess, truth, strict=True) if p is not None and p == t)
    recall = {label: hits[label] / n for label, n in sorted(support.items())}
    n = len(truth)
    acc = sum(hits.values()) / n if n else 0.0
    return {
        "accuracy": acc,
        "uar": sum(recall.values()) / len(recall) if recall else 0.0,
        "war": sum(support[c] / n * r for c, r in recall.items()) if n else 0.0,
        "per_class_recall": recall,
        "n": n,
    }
