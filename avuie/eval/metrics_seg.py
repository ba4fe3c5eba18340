"""Segmentation and grounding metrics: AVSBench mIoU and F (s4, ms3), Ref-AVS (ref_avs), box IoU/AUC (arig).

Masks are 2-D arrays (any non-zero pixel is foreground); the predicted masks come from text through the
prompt-to-mask step (`avuie.eval.masks`), so they are binary. Conventions, from the benchmarks' own code
(OpenNLPLab/AVSBench `utils/utility.py`, GeWu-Lab/Ref-AVS `utils/metric/utility.py`):

- IoU per frame; a frame with an empty ground-truth mask scores the share of pixels the prediction leaves empty
  (true negatives / all pixels): an empty prediction there scores 1, a full-frame one 0. mIoU = mean over frames.
- F-score with beta^2 = 0.3 per frame, averaged over frames; frames with an empty ground truth are left out of F
  ("examples with totally black GTs are out of consideration") and their number is reported. Precision or
  recall of 0 gives F = 0. The benchmarks sweep 255 thresholds over soft scores and keep the best mean F; a
  binary mask gives the same precision/recall at every threshold in (0, 1], so F is the binary mask's F (the
  sweep's threshold 0, "every pixel foreground", is not a prediction and is not used).
- The benchmarks average per batch of a video's frames, then over batches; one sample here is one frame, so
  averages are over frames.
- Ref-AVS null set (test_n): S = sqrt(predicted foreground pixels / all pixels) per sample, averaged; lower is
  better (0 = nothing segmented). Ref-AVS takes the square root of the area fraction (not the plain fraction);
  the plain mean area fraction is reported next to it.
- arig: box IoU on inclusive integer pixel boxes [x1, y1, x2, y2] (a box covers (x2-x1+1)*(y2-y1+1) pixels,
  matching boxes taken from masks); accuracy at IoU >= 0.5; AUC = area under the success rate (share of
  samples with IoU >= t) over t = 0, 0.05, ..., 1 (trapezoids), the sound-source-localisation convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

F_BETA2 = 0.3
AUC_THRESHOLDS = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))


def _masks(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred) > 0, np.asarray(gt) > 0
    if pred.shape != gt.shape:
        raise ValueError(f"predicted mask {pred.shape} and ground-truth mask {gt.shape} differ in size")
    return pred, gt


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of one frame's binary masks; an empty ground truth scores the empty-pixel share of the prediction."""
    pred, gt = _masks(pred, gt)
    if not gt.any():
        return float((~pred).sum() / pred.size)
    return float((pred & gt).sum() / (pred | gt).sum())


def mask_fscore(pred: np.ndarray, gt: np.ndarray, beta2: float = F_BETA2) -> float | None:
    """F-beta of one frame's binary masks (beta^2 = 0.3); None for an empty ground truth (left out of F)."""
    pred, gt = _masks(pred, gt)
    if not gt.any():
        return None
    tp = float((pred & gt).sum())
    precision, recall = tp / max(pred.sum(), 1), tp / gt.sum()
    if precision == 0 or recall == 0:
        return 0.0
    return (1 + beta2) * precision * recall / (beta2 * precision + recall)


def avs_scores(pred_masks: Sequence[np.ndarray], gt_masks: Sequence[np.ndarray]) -> dict:
    """AVSBench mIoU and F over frames. Returns {"mIoU", "F", "n", "n_empty_gt"} (F is None if every GT is
    empty)."""
    if len(pred_masks) != len(gt_masks):
        raise ValueError(f"{len(pred_masks)} predicted masks for {len(gt_masks)} ground-truth masks")
    ious = [mask_iou(p, g) for p, g in zip(pred_masks, gt_masks, strict=True)]
    fs = [mask_fscore(p, g) for p, g in zip(pred_masks, gt_masks, strict=True)]
    kept = [f for f in fs if f is not None]
    return {
        "mIoU": float(np.mean(ious)) if ious else 0.0,
        "F": float(np.mean(kept)) if kept else None,
        "n": len(ious),
        "n_empty_gt": len(fs) - len(kept),
    }


def null_s(pred: np.ndarray) -> float:
    """Ref-AVS S of one frame of the null set: sqrt(predicted foreground share); lower is better."""
    pred = np.asarray(pred) > 0
    return float(np.sqrt(pred.sum() / pred.size))


def ref_avs_scores(
    pred_masks: Sequence[np.ndarray], gt_masks: Sequence[np.ndarray | None], splits: Sequence[str]
) -> dict:
    """Ref-AVS: mIoU and F per test split with a referred object (test_s, test_u, ...), S on test_n.

    Takes per sample the predicted mask, the ground-truth mask (ignored on test_n) and the split name.
    Returns {split: {"mIoU", "F", "n", "n_empty_gt"}, "test_n": {"S", "mean_area_fraction", "n"}}.
    """
    if not len(pred_masks) == len(gt_masks) == len(splits):
        raise ValueError("predicted masks, ground-truth masks and splits must have the same length")
    out: dict[str, dict] = {}
    for split in sorted(set(splits)):
        idx = [i for i, s in enumerate(splits) if s == split]
        if split == "test_n":
            s_values = [null_s(pred_masks[i]) for i in idx]
            area = [float((np.asarray(pred_masks[i]) > 0).mean()) for i in idx]
            out[split] = {
                "S": float(np.mean(s_values)),
                "mean_area_fraction": float(np.mean(area)),
                "n": len(idx),
            }
        else:
            out[split] = avs_scores([pred_masks[i] for i in idx], [gt_masks[i] for i in idx])
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
