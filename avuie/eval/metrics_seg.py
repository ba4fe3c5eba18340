"""Segmentation and grounding metrics: AVSBench mIoU and F (s4, ms3), Ref-AVS (ref_avs), box IoU/AUC (arig).

Masks are 2-D arrays (any non-zero pixel is foreground). The predicted masks come from text through the
prompt-to-mask step (`avuie.eval.masks`), so they are binary. The mask metrics equal, to 1e-6, the benchmarks'
own code applied to the same masks:

- AVSBench: OpenNLPLab/AVSBench `avs_scripts/avs_s4/utils/utility.py` (`mask_iou`, `Eval_Fmeasure`, `_eval_pr`)
  at commit 4d4c90100610758bce301507f92c95b574415427, driven as `avs_scripts/avs_s4/test.py` and
  `avs_scripts/avs_ms3/test.py` drive them (`--test_batch_size 1`: one batch = one video's frames; the batch
  scores are averaged with `utils/pyutils.py` `AverageMeter`).
- Ref-AVS: GeWu-Lab/Ref-AVS `utils/metric/utility.py` (`mask_iou`, `Eval_Fmeasure`, `metric_s_for_null`) at
  commit f0fbef3c1c778f0bb01d0d70109a0a6c9fb5d271, driven as `scripts/train.py` `test()` with the test loaders
  of `run_refavs.py` (`batch_size=4`: one batch = four expressions, in release order, with all their frames).

A binary mask enters the reference as logits whose sign is the mask (foreground > 0 > background; 0/1 logits
give the same figures). What the reference then computes, per batch of frames:

- IoU per frame = inter / (union + 1e-7); a frame whose ground truth is empty scores its true negatives over
  all its pixels (an empty prediction there scores ~1, a full-frame one 0). Batch mIoU = mean over its frames.
- F (beta^2 = 0.3): the reference sweeps 255 thresholds over the sigmoid of the logits, averages each
  threshold's per-frame F over the batch's frames with a non-empty ground truth, and keeps the best threshold.
  On a binary mask the sweep meets exactly three predictions: the all-foreground mask (threshold 0, always in
  the sweep), the mask itself, and nothing (F 0). So batch F = max(mean F of the masks, mean F of all-foreground
  masks): an empty prediction still earns the all-foreground point. Precision or recall 0 gives F = 0. A batch
  whose ground truths are all empty scores F = 0 (and counts in the average).
- Ref-AVS null set (test_n): S = sqrt(predicted foreground pixels / all pixels), pooled over the batch's frames
  (not a mean of per-frame roots); lower is better. The plain mean area fraction is reported next to it.
- The task figure is the mean over batches (the last batch may be short, as the reference's last batch is).

The references evaluate at 224 x 224 (AVSBench) or 256 x 256 (Ref-AVS) after resizing; here the masks are
scored at the size they come in (the build's frame size).

arig: box IoU on inclusive integer pixel boxes [x1, y1, x2, y2] (a box covers (x2-x1+1)*(y2-y1+1) pixels,
matching boxes taken from masks); accuracy at IoU >= 0.5; AUC = area under the success rate (share of samples
with IoU >= t) over t = 0, 0.05, ..., 1 (trapezoids), the sound-source-localisation convention.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

F_BETA2 = 0.3
IOU_EPS = 1e-7  # the references' `mask_iou(..., eps=1e-7)`
AVS_VIDEOS_PER_BATCH = 1  # avs_s4/test.py and avs_ms3/test.py: --test_batch_size default 1
REFAVS_EXPRESSIONS_PER_BATCH = 4  # Ref-AVS run_refavs.py: DataLoader(test_dataset_*, batch_size=4)
AUC_THRESHOLDS = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))


def _masks(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred) > 0, np.asarray(gt) > 0
    if pred.shape != gt.shape:
        raise ValueError(f"predicted mask {pred.shape} and ground-truth mask {gt.shape} differ in size")
    return pred, gt


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of one frame's binary masks, inter / (union + 1e-7); an empty ground truth scores the prediction's
    empty pixels over all pixels (the reference's "no object" rule)."""
    pred, gt = _masks(pred, gt)
    if not gt.any():
        return float((~pred).sum() / (pred.size + IOU_EPS))
    return float((pred & gt).sum() / ((pred | gt).sum() + IOU_EPS))


def _f_beta(tp: float, n_pred: float, n_gt: float, beta2: float) -> float:
    if tp == 0:
        return 0.0  # precision and recall 0: the reference's NaN, set to 0
    precision, recall = tp / n_pred, tp / n_gt
    return (1 + beta2) * precision * recall / (beta2 * precision + recall)


def mask_fscore(pred: np.ndarray, gt: np.ndarray, beta2: float = F_BETA2) -> float | None:
    """F-beta (beta^2 = 0.3) of one frame's binary mask; None for an empty ground truth (left out of F)."""
    pred, gt = _masks(pred, gt)
    if not gt.any():
        return None
    return _f_beta(float((pred & gt).sum()), float(pred.sum()), float(gt.sum()), beta2)


def full_fscore(gt: np.ndarray, beta2: float = F_BETA2) -> float | None:
    """F-beta of the all-foreground prediction on one frame (the sweep's threshold 0); None for an empty GT."""
    gt = np.asarray(gt) > 0
    if not gt.any():
        return None
    return _f_beta(float(gt.sum()), float(gt.size), float(gt.sum()), beta2)


def batch_scores(
    pred_masks: Sequence[np.ndarray], gt_masks: Sequence[np.ndarray], beta2: float = F_BETA2
) -> tuple[float, float]:
    """(mIoU, F) of one evaluation batch of frames, as the reference's `mask_iou` and `Eval_Fmeasure` score it.

    F is the better of the batch's mean mask F and its mean all-foreground F over the frames with a non-empty
    ground truth, and 0 when every ground truth of the batch is empty.
    """
    if not pred_masks or len(pred_masks) != len(gt_masks):
        raise ValueError(f"a batch needs as many predicted masks ({len(pred_masks)}) as ground truths")
    ious = [mask_iou(p, g) for p, g in zip(pred_masks, gt_masks, strict=True)]
    kept = [
        (mask_fscore(p, g, beta2), full_fscore(g, beta2)) for p, g in zip(pred_masks, gt_masks, strict=True)
    ]
    kept = [pair for pair in kept if pair[0] is not None]
    f = max(float(np.mean([m for m, _ in kept])), float(np.mean([a for _, a in kept]))) if kept else 0.0
    return float(np.mean(ious)), f


def batches_of(keys: Sequence[Hashable], per_batch: int) -> list[list[int]]:
    """Evaluation batches as sample indices: samples with the same key (a video, an expression) stay together,
    keys in the order they first appear, `per_batch` keys to a batch (the last batch may be short)."""
    if per_batch < 1:
        raise ValueError(f"per_batch must be at least 1, not {per_batch}")
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    ordered = list(groups.values())
    return [sum(ordered[i : i + per_batch], []) for i in range(0, len(ordered), per_batch)]


def avs_scores(
    pred_masks: Sequence[np.ndarray],
    gt_masks: Sequence[np.ndarray],
    videos: Sequence[Hashable] | None = None,
    per_batch: int = AVS_VIDEOS_PER_BATCH,
) -> dict:
    """AVSBench mIoU and F: per batch of `per_batch` videos (`videos` names each frame's video; None: every
    frame is its own video), then the mean over batches.

    Returns {"mIoU", "F", "n" (frames), "n_batches", "n_empty_gt" (frames), "n_empty_gt_batches"}.
    """
    if len(pred_masks) != len(gt_masks):
        raise ValueError(f"{len(pred_masks)} predicted masks for {len(gt_masks)} ground-truth masks")
    keys = list(range(len(gt_masks))) if videos is None else list(videos)
    if len(keys) != len(gt_masks):
        raise ValueError(f"{len(keys)} video names for {len(gt_masks)} frames")
    batches = batches_of(keys, per_batch)
    scores = [batch_scores([pred_masks[i] for i in b], [gt_masks[i] for i in b]) for b in batches]
    empty = [not np.asarray(g).any() for g in gt_masks]
    return {
        "mIoU": float(np.mean([m for m, _ in scores])) if scores else 0.0,
        "F": float(np.mean([f for _, f in scores])) if scores else 0.0,
        "n": len(gt_masks),
        "n_batches": len(batches),
        "n_empty_gt": int(sum(empty)),
        "n_empty_gt_batches": sum(all(empty[i] for i in b) for b in batches),
    }


def null_s(pred_masks: Sequence[np.ndarray]) -> float:
    """Ref-AVS S of one batch of null-set frames: sqrt(predicted foreground pixels / all pixels), pooled over
    the frames (`metric_s_for_null`); lower is better."""
    masks = [np.asarray(p) > 0 for p in pred_masks]
    total = sum(m.size for m in masks)
    if not total:
        raise ValueError("S needs at least one predicted mask")
    return float(np.sqrt(sum(int(m.sum()) for m in masks) / total))


def ref_avs_scores(
    pred_masks: Sequence[np.ndarray],
    gt_masks: Sequence[np.ndarray | None],
    splits: Sequence[str],
    expressions: Sequence[Hashable] | None = None,
    per_batch: int = REFAVS_EXPRESSIONS_PER_BATCH,
) -> dict:
    """Ref-AVS: mIoU and F per test split with a referred object (test_s, test_u, ...), S on test_n.

    Takes per frame the predicted mask, the ground-truth mask (ignored on test_n), the split name and the
    expression it belongs to (None: every frame its own expression), in release order: each split is cut into
    batches of `per_batch` expressions. Returns {split: avs_scores(...), "test_n": {"S",
    "mean_area_fraction", "n", "n_batches"}}.
    """
    if not len(pred_masks) == len(gt_masks) == len(splits):
        raise ValueError("predicted masks, ground-truth masks and splits must have the same length")
    keys = list(range(len(splits))) if expressions is None else list(expressions)
    out: dict[str, dict] = {}
    for split in sorted(set(splits)):
        idx = [i for i, s in enumerate(splits) if s == split]
        if split != "test_n":
            picked = ([pred_masks[i] for i in idx], [gt_masks[i] for i in idx], [keys[i] for i in idx])
            out[split] = avs_scores(*picked, per_batch=per_batch)  # type: ignore[arg-type]
            continue
        batches = batches_of([keys[i] for i in idx], per_batch)
        s_values = [null_s([pred_masks[idx[j]] for j in b]) for b in batches]
        area = [float((np.asarray(pred_masks[i]) > 0).mean()) for i in idx]
        out[split] = {
            "S": float(np.mean(s_values)),
            "mean_area_fraction": float(np.mean(area)),
            "n": len(idx),
            "n_batches": len(batches),
        }
    return out


def box_iou(a: Sequence[int] | None, b: Sequence[int]) -> float:
    """IoU of two inclusive pixel boxes [x1, y1, x2, y2]; a missing box (None) scores 0."""
    if a is None:
        return 0.0
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    iw = max(0, min(ax2, bx2) - max(ax1, bx1) + 1)
    ih = max(0, min(ay2, by2) - max(ay1, by1) + 1)
    inter = iw * ih
    area = lambda x1, y1, x2, y2: max(0, x2 - x1 + 1) * max(0, y2 - y1 + 1)  # noqa: E731
    union = area(ax1, ay1, ax2, ay2) + area(bx1, by1, bx2, by2) - inter
    return inter / union if union > 0 else 0.0


def grounding_scores(
    pred_boxes: Sequence[Sequence[int] | None],
    gt_boxes: Sequence[Sequence[int]],
    thresholds: Sequence[float] = AUC_THRESHOLDS,
) -> dict:
    """ARIG box metrics: mean IoU, accuracy at IoU >= 0.5 and AUC of the success curve over `thresholds`.

    A None prediction (unparseable or no box) has IoU 0. Returns {"mean_iou", "acc@0.5", "auc", "n"}.
    """
    if len(pred_boxes) != len(gt_boxes):
        raise ValueError(f"{len(pred_boxes)} predicted boxes for {len(gt_boxes)} ground-truth boxes")
    ious = np.array([box_iou(p, g) for p, g in zip(pred_boxes, gt_boxes, strict=True)])
    if not len(ious):
        return {"mean_iou": 0.0, "acc@0.5": 0.0, "auc": 0.0, "n": 0}
    success = np.array([(ious >= t).mean() for t in thresholds])
    t = np.asarray(thresholds, dtype=float)
    auc = float(np.sum((t[1:] - t[:-1]) * (success[1:] + success[:-1]) / 2))
    return {
        "mean_iou": float(ious.mean()),
        "acc@0.5": float((ious >= 0.5).mean()),
        "auc": auc,
        "n": len(ious),
    }
