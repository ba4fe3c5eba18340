"""Event metrics: AVE segment accuracy, AVVP (LLP) segment- and event-level F1, UnAV-100 mAP over tIoU.

All functions take plain Python / numpy inputs and return fractions in [0, 1].

AVVP follows the LLP benchmark's published evaluation (YapengTian/AVVP-ECCV20 `utils/eval_metrics.py` and the
`eval` loop of `main_avvp.py`, commit 0b28c1a7eafbd952d8ed5aac67a722fb09306ae4; Crab+'s
`utils/avvp_eval_metrics.py` is the same file) with no deviation:

- per video, 25 classes x 10 one-second segments, audio `a`, visual `v`, and audio-visual `av = a * v`
  (both for predictions and ground truth);
- per video and modality, an F1 per class over the classes that have a ground-truth or a predicted positive,
  averaged over those classes; a video with no positive at all in that modality scores 1.0 ("all true
  negatives"), so a prediction that rightly names nothing in a modality scores 1.0 there; the `event` F pools
  the audio and visual counts of each class;
- event level: an event is a run of consecutive positive segments of one class; a predicted event is a true
  positive when it overlaps *any* ground-truth event of its class with IoU >= 0.5 (not one-to-one: two predicted
  events may both match one ground-truth event, as published); a ground-truth event with no such prediction is
  a false negative;
- every per-video score is averaged over videos; Type@AV = mean of the audio, visual and audio-visual F1s;
  Event@AV = mean over videos of the pooled (audio + visual) F.

UnAV-100 uses the ActivityNet detection AP (activitynet/ActivityNet `Evaluation/eval_detection.py`
`compute_average_precision_detection`, commit ebc8aebb4018a758c4efb35bb7ab547d31b1eb1e; VOC-2011 interpolation) per
class at each tIoU threshold, averaged over the classes present in the ground truth. Predictions parsed from text
carry no confidence: the runner gives every event the score 1.0. Tied scores are ranked as one block (the
precision/recall curve gets one point per distinct score, as in scikit-learn's average precision), so the result
does not depend on the order in which samples are listed; with distinct scores this is exactly ActivityNet's AP.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

UNAV_TIOU_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)

# ---------------------------------------------------------------------------------------------------- AVE


def segment_labels(label: str | None, start: float, end: float, num_segments: int = 10) -> list[str | None]:
    """Per one-second segment, the event label where the segment's centre lies in [start, end), else None."""
    return [label if start <= t + 0.5 < end else None for t in range(num_segments)]


def ave_accuracy(
    preds: Sequence[tuple[str, float, float] | None],
    gts: Sequence[tuple[str, float, float]],
    num_segments: int = 10,
) -> dict:
    """AVE segment accuracy over all videos' one-second segments (background segments count too).

    Takes per video a prediction `(label, start, end)` or None (unparseable: all its segments count as wrong)
    and the ground truth `(label, start, end)`. Returns {"accuracy", "n_videos", "n_segments"}.
    """
    _same_length(preds, gts)
    correct = total = 0
    for pred, gt in zip(preds, gts, strict=True):
        truth = segment_labels(*gt, num_segments=num_segments)
        total += num_segments
        if pred is None:
            continue
        guess = segment_labels(*pred, num_segments=num_segments)
        correct += sum(_fold(g) == _fold(t) for g, t in zip(guess, truth, strict=True))
    return {"accuracy": correct / total if total else 0.0, "n_videos": len(gts), "n_segments": total}


# ---------------------------------------------------------------------------------------------------- AVVP


def events_to_matrix(
    events: Mapping[str, Sequence[Sequence[float]]], classes: Sequence[str], num_segments: int = 10
) -> np.ndarray:
    """A (len(classes), num_segments) 0/1 matrix: row c, column t is 1 when an event of class c covers the
    centre of segment t. Labels are matched case- and underscore-insensitively; an unknown label raises."""
    index = {_fold(c): i for i, c in enumerate(classes)}
    out = np.zeros((len(classes), num_segments))
    centres = np.arange(num_segments) + 0.5
    for label, spans in events.items():
        row = index.get(_fold(label))
        if row is None:
            raise KeyError(f"label {label!r} is not among the {len(classes)} classes")
        for start, end in spans:
            out[row, (centres >= start) & (centres < end)] = 1
    return out


def _binary(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if not np.isin(x, (0.0, 1.0)).all():
        raise ValueError("AVVP matrices must be binary (0/1)")
    return x


def _mean_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> float:
    active = (tp + fp != 0) | (tp + fn != 0)
    if not active.any():
        return 1.0  # all true negatives, as published
    return float(np.mean(2 * tp[active] / (2 * tp[active] + fn[active] + fp[active])))


def segment_level(so_a, so_v, so_av, gt_a, gt_v, gt_av) -> tuple[float, float, float, float]:
    """Segment-level F1 of one video: (audio, visual, pooled audio+visual, audio-visual), LLP definition.

    Takes six binary (classes, segments) matrices: predictions and ground truth for a, v and av.
    """
    so_a, so_v, so_av, gt_a, gt_v, gt_av = map(_binary, (so_a, so_v, so_av, gt_a, gt_v, gt_av))
    counts = {}
    for name, so, gt in (("a", so_a, gt_a), ("v", so_v, gt_v), ("av", so_av, gt_av)):
        counts[name] = (
            (so * gt).sum(axis=1),
            (so * (1 - gt)).sum(axis=1),
            ((1 - so) * gt).sum(axis=1),
        )
    pooled = tuple(counts["a"][i] + counts["v"][i] for i in range(3))
    return (_mean_f1(*counts["a"]), _mean_f1(*counts["v"]), _mean_f1(*pooled), _mean_f1(*counts["av"]))


def extract_events(seq: Sequence[float]) -> list[tuple[int, int]]:
    """The runs of consecutive 1s of a 0/1 sequence as [start, end) segment-index pairs."""
    runs: list[tuple[int, int]] = []
    start = None
    for t, x in enumerate(list(seq) + [0]):
        if x == 1 and start is None:
            start = t
        elif x != 1 and start is not None:
            runs.append((start, t))
            start = None
    return runs


def _overlaps(x: tuple[int, int], y: tuple[int, int]) -> bool:
    inter = max(0, min(x[1], y[1]) - max(x[0], y[0]))
    union = (x[1] - x[0]) + (y[1] - y[0]) - inter
    return inter >= 0.5 * union


def event_counts(pred_row: Sequence[float], gt_row: Sequence[float]) -> tuple[int, int, int]:
    """(TP, FP, FN) of one class's events at IoU 0.5, matched as the LLP benchmark does (not one-to-one)."""
    pred, gt = extract_events(pred_row), extract_events(gt_row)
    tp = sum(any(_overlaps(p, g) for g in gt) for p in pred)
    fn = sum(not any(_overlaps(g, p) for p in pred) for g in gt)
    return tp, len(pred) - tp, fn


def event_level(so_a, so_v, so_av, gt_a, gt_v, gt_av) -> tuple[float, float, float, float]:
    """Event-level F1 of one video at IoU 0.5: (audio, visual, pooled audio+visual, audio-visual)."""
    mats = list(map(_binary, (so_a, so_v, so_av, gt_a, gt_v, gt_av)))
    counts = {}
    for name, so, gt in (("a", mats[0], mats[3]), ("v", mats[1], mats[4]), ("av", mats[2], mats[5])):
        rows = np.array([event_counts(so[c], gt[c]) for c in range(so.shape[0])], dtype=float)
        counts[name] = (rows[:, 0], rows[:, 1], rows[:, 2])
    pooled = tuple(counts["a"][i] + counts["v"][i] for i in range(3))
    return (_mean_f1(*counts["a"]), _mean_f1(*counts["v"]), _mean_f1(*pooled), _mean_f1(*counts["av"]))


def avvp_from_matrices(
    preds: Sequence[tuple[np.ndarray, np.ndarray] | None], gts: Sequence[tuple[np.ndarray, np.ndarray]]
) -> dict:
    """AVVP scores over videos from (audio, visual) binary matrices; av = audio * visual on both sides.

    A None prediction (unparseable response) scores 0 on every per-video F. Returns {"segment": {...},
    "event": {...}, "n_videos"}, each level with audio, visual, audio_visual, type_av and event_av.
    """
    _same_length(preds, gts)
    per_level: dict[str, list[tuple[float, float, float, float]]] = {"segment": [], "event": []}
    for pred, (gt_a, gt_v) in zip(preds, gts, strict=True):
        if pred is None:
            for level in per_level.values():
                level.append((0.0, 0.0, 0.0, 0.0))
            continue
        so_a, so_v = pred
        args = (so_a, so_v, np.asarray(so_a) * so_v, gt_a, gt_v, np.asarray(gt_a) * gt_v)
        per_level["segment"].append(segment_level(*args))
        per_level["event"].append(event_level(*args))
    out: dict = {"n_videos": len(gts)}
    for level, rows in per_level.items():
        f_a, f_v, f, f_av = np.mean(np.array(rows), axis=0) if rows else np.zeros(4)
        out[level] = {
            "audio": float(f_a),
            "visual": float(f_v),
            "audio_visual": float(f_av),
            "type_av": float((f_a + f_v + f_av) / 3),
            "event_av": float(f),
        }
    return out


def avvp_scores(
    preds: Sequence[tuple[Mapping, Mapping] | None],
    gts: Sequence[tuple[Mapping, Mapping]],
    classes: Sequence[str],
    num_segments: int = 10,
) -> dict:
    """AVVP scores from per-video (audio events, visual events) dicts {label: [[start, end], ...]}.

    Predicted labels outside `classes` are kept as extra rows (they can only be false positives).
    """
    labels = list(classes)
    known = {_fold(c) for c in labels}
    for pred in preds:
        for events in pred or ():
            for label in events:
                if _fold(label) not in known:
                    known.add(_fold(label))
                    labels.append(label)

    def mats(pair: tuple[Mapping, Mapping]) -> tuple[np.ndarray, np.ndarray]:
        return tuple(events_to_matrix(ev, labels, num_segments) for ev in pair)  # type: ignore[return-value]

    return avvp_from_matrices([None if p is None else mats(p) for p in preds], [mats(g) for g in gts])


# ---------------------------------------------------------------------------------------------------- UnAV


def segment_iou(target: Sequence[float], candidates: np.ndarray) -> np.ndarray:
    """Temporal IoU of one [start, end] segment with each row of an (N, 2) array of segments."""
    candidates = np.asarray(candidates, dtype=float).reshape(-1, 2)
    inter = (np.minimum(target[1], candidates[:, 1]) - np.maximum(target[0], candidates[:, 0])).clip(0)
    union = (candidates[:, 1] - candidates[:, 0]) + (target[1] - target[0]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the interpolated precision/recall curve (VOCdevkit 2011, as ActivityNet)."""
    mprec = np.hstack([[0.0], precision, [0.0]])
    mrec = np.hstack([[0.0], recall, [1.0]])
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def average_precision_detection(
    gts: Sequence[tuple[str, float, float]],
    preds: Sequence[tuple[str, float, float, float]],
    thresholds: Sequence[float] = UNAV_TIOU_THRESHOLDS,
) -> np.ndarray:
    """AP of one class at each tIoU threshold (ActivityNet matching; tied scores ranked as one block).

    Takes ground truth `(video, start, end)` and predictions `(video, start, end, score)`; returns one AP per
    threshold. Each prediction, best score first, takes the unmatched ground truth of its video with the highest
    tIoU at or above the threshold.
    """
    ap = np.zeros(len(thresholds))
    if not preds or not gts:
        return ap
    by_video: dict[str, list[int]] = defaultdict(list)
    for j, (video, _, _) in enumerate(gts):
        by_video[video].append(j)
    gt_segs = np.array([[s, e] for _, s, e in gts], dtype=float)
    order = sorted(range(len(preds)), key=lambda i: -preds[i][3])  # stable: ties keep input order
    locked = np.full((len(thresholds), len(gts)), False)
    tp = np.zeros((len(thresholds), len(preds)))
    for rank, i in enumerate(order):
        video, start, end, _ = preds[i]
        cands = by_video.get(video, [])
        tiou = segment_iou((start, end), gt_segs[cands]) if cands else np.zeros(0)
        ranked = sorted(range(len(cands)), key=lambda k: -tiou[k])
        for t, thr in enumerate(thresholds):
            for k in ranked:
                if tiou[k] < thr:
                    break
                if not locked[t, cands[k]]:
                    locked[t, cands[k]] = True
                    tp[t, rank] = 1
                    break
    fp = 1 - tp
    scores = np.array([preds[i][3] for i in order])
    ends = np.append(
        np.nonzero(scores[1:] != scores[:-1])[0], len(scores) - 1
    )  # last index of each tie block
    tp_cum, fp_cum = np.cumsum(tp, axis=1)[:, ends], np.cumsum(fp, axis=1)[:, ends]
    recall = tp_cum / len(gts)
    precision = tp_cum / (tp_cum + fp_cum)
    for t in range(len(thresholds)):
        ap[t] = interpolated_ap(precision[t], recall[t])
    return ap


def unav_map(
    preds: Mapping[str, Sequence[tuple[str, float, float, float]] | None],
    gts: Mapping[str, Sequence[tuple[str, float, float]]],
    thresholds: Sequence[float] = UNAV_TIOU_THRESHOLDS,
) -> dict:
    """UnAV-100 mAP: per video id, predicted `(label, start, end, score)` events (None: unparseable, no
    detection) and ground-truth `(label, start, end)` events. AP per class over the classes in the ground truth.

    Returns {"mAP@0.5": ..., ..., "mAP_avg": mean over thresholds, "n_videos", "n_classes"}.
    """
    gt_by_class: dict[str, list] = defaultdict(list)
    pred_by_class: dict[str, list] = defaultdict(list)
    for video, events in gts.items():
        for label, start, end in events:
            gt_by_class[_fold(label)].append((video, start, end))
    for video, events in preds.items():
        for label, start, end, score in events or ():
            pred_by_class[_fold(label)].append((video, start, end, score))
    if not gt_by_class:
        raise ValueError("UnAV mAP needs at least one ground-truth event")
    aps = np.array(
        [average_precision_detection(g, pred_by_class.get(c, []), thresholds) for c, g in gt_by_class.items()]
    )
    per_thr = aps.mean(axis=0)
    out = {f"mAP@{thr:.1f}": float(v) for thr, v in zip(thresholds, per_thr, strict=True)}
    out.update({"mAP_avg": float(per_thr.mean()), "n_videos": len(gts), "n_classes": len(gt_by_class)})
    return out


# ---------------------------------------------------------------------------------------------------- helpers


def _fold(label: str | None) -> str | None:
    return None if label is None else " ".join(label.replace("_", " ").split()).lower()


def _same_length(preds: Sequence, gts: Sequence) -> None:
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth samples")
