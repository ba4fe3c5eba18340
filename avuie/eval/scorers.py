"""Per target kind, how a task's parsed predictions meet its benchmark metric (the glue of `avuie eval`).

Each scorer takes the parsed predictions (plain dicts, None where unreadable), the ground-truth targets (plain
dicts), the ground-truth samples and the `ScoreOptions`, and returns the task's metrics dict. `PRIMARY` names
each kind's headline metric (what `avuie transfer` compares).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from avuie.eval import metrics_caption, metrics_cls, metrics_events, metrics_qa, metrics_seg
from avuie.eval.reading import GroundTruth


@dataclass
class ScoreOptions:
    """How tasks are scored beyond the metric itself: the prompt-to-mask step (None: box fill is made when
    needed), the caption tokenisation ("simple" or "ptb") and METEOR ("auto", "on" or "off")."""

    masker: Any = None
    caption_tokenizer: str = "simple"
    meteor: str = "auto"


PRIMARY = {  # target kind -> (metric path in the task's metrics, higher is better)
    "single_event": ("accuracy", True),
    "av_parsing": ("segment.type_av", True),
    "dense_events": ("mAP_avg", True),
    "open_qa": ("accuracy", True),
    "multiple_choice": ("accuracy", True),
    "matching": ("accuracy", True),
    "classification": ("accuracy", True),
    "caption": ("CIDEr", True),
    "segmentation": ("mIoU", True),
    "referring_segmentation": ("mIoU", True),
    "grounding": ("acc@0.5", True),
}


def plain(obj: Any) -> Any:
    """A target (validated or built without validation) as plain dicts, lists and scalars."""
    if isinstance(obj, BaseModel):
        return {k: plain(v) for k, v in obj.__dict__.items()}
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------------------------- per kind


def _score_ave(preds: list, gts: list[dict], items: list[GroundTruth], opts: ScoreOptions) -> dict:
    segments = int(round(max(g["duration"] for g in gts)))
    as_tuple = lambda t: (t["label"], t["start"], t["end"])  # noqa: E731
    return metrics_events.ave_accuracy(
        [p and as_tuple(p) for p in preds], [as_tuple(g) for g in gts], segments
    )


def _score_avvp(preds: list, gts: list[dict], items: list[GroundTruth], opts: ScoreOptions) -> dict:
    from avuie.schemas import vocabulary

    classes = vocabulary(items[0].source) or sorted({k for g in gts for k in (*g["audio"], *g["visual"])})
    out = metrics_events.avvp_scores(
        [p and (p["audio"], p["visual"]) for p in preds],
        [(g["audio"], g["visual"]) for g in gts],
        classes,
        int(round(max(g["duration"] for g in gts))),
    )
    out["n_weak_ground_truth"] = sum(bool(g.get("weak")) for g in gts)
    return out


def _score_unav(preds: list, gts: list[dict], items: list[GroundTruth], opts: ScoreOptions) -> dict:
    events = lambda t: [(e["label"], e["start"], e["end"]) for e in t["events"]]  # noqa: E731
    return metrics_events.unav_map(
        {it.id: p and [(*e, 1.0) for e in events(p)] for it, p in zip(items, preds, strict=True)},
        {it.id: events(g) for it, g in zip(items, gts, strict=True)},
    )


def _score_open_qa(preds: list, gts: list[dict], items: list[GroundTruth], opts: ScoreOptions) -> dict:
    return metrics_qa.avqa_accuracy([p and p["answer"] for p in preds], [g["answer"] for g in gts],
                                    [g.get("question_type", "") for g in gts])  # fmt: skip


def _score_choice(preds: list, gts: list[dict], items: list[GroundTruth], opts: ScoreOptions) -> dict:
    return metrics_qa.choice_accuracy(
        [p and p["answer_index"] for p in preds], [g["answer_index"] for g in gts]
    )


def _score_classification(preds: list, gts: list[dict], items: list[GroundTruth], opts: ScoreOptions) -> dict:
    out = metrics_cls.classification_scores([p and p["label"] for p in preds], [g["label"] for g in gts])
    if items[0].family != "emotion_recognition":
        out = {"accuracy": out["accuracy"], "n": out["n"]}
    return out


def _score_caption(preds: list, gts: list[dict], items: list[GroundTruth], opts: ScoreOptions) -> dict:
    hyps, refs = [p and p["caption"] for p in preds], [[g["caption"]] for g in gts]
    return metrics_caption.caption_scores(hyps, refs, opts.caption_tokenizer, opts.meteor)


def _masker(opts: ScoreOptions):
    if opts.masker is None:
        from avuie.eval.masks import make_masker

        opts.masker = make_masker("box")
    return opts.masker


def _gt_mask(gt: dict, item: GroundTruth) -> np.ndarray:
    masks = [item.masks[group["mask"]] for group in gt.get("groups") or []]
    if not masks:  # Ref-AVS null set: nothing to segment
        w, h = gt.get("frame_size") or (224, 224)
        return np.zeros((h, w), dtype=bool)
    if len({m.shape for m in masks}) != 1:
        raise ValueError(f"{item.id}: its ground-truth masks differ in size")
    return np.logical_or.reduce(masks)


def _pred_mask(pred: dict | None, truth: np.ndarray, item: GroundTruth, masker) -> np.ndarray:
    if pred is None:
        return ~truth  # unparseable: the worst mask
    if pred.get("present") is False:
        return np.zeros_like(truth)
    size = (truth.shape[1], truth.shape[0])
    return np.asarray(masker(item.image, pred.get("groups") or [], size), dtype=bool)


def clip_of(item: GroundTruth) -> str:
    """The video (s4, ms3) or expression (ref_avs) a frame sample belongs to: its native id without `_f<i>`."""
    return re.sub(r"_f\d+$", "", item.native_id or item.id)


def release_order(items: Sequence[GroundTruth]) -> list[int]:
    """Sample indices in the release's order: by annotation row (numbers before text), then by id."""
    return sorted(
        range(len(items)),
        key=lambda i: (0, items[i].row, "") if isinstance(items[i].row, int) else (1, 0, str(items[i].row)),
    )


def _score_segmentation(preds: list, gts: list[dict], items: list[GroundTruth], opts: ScoreOptions) -> dict:
    truths = [_gt_mask(g, it) for g, it in zip(gts, items, strict=True)]
    masks = [_pred_mask(p, t, it, _masker(opts)) for p, t, it in zip(preds, truths, items, strict=True)]
    return metrics_seg.avs_scores(masks, truths, [clip_of(it) for it in items])


def _score_referring(preds: list, gts: list[dict], items: list[GroundTruth], opts: ScoreOptions) -> dict:
    order = release_order(items)
    preds, gts, items = [preds[i] for i in order], [gts[i] for i in order], [items[i] for i in order]
    truths = [_gt_mask(g, it) for g, it in zip(gts, items, strict=True)]
    masks = [_pred_mask(p, t, it, _masker(opts)) for p, t, it in zip(preds, truths, items, strict=True)]
    splits, clips = [it.split for it in items], [clip_of(it) for it in items]
    out: dict[str, Any] = metrics_seg.ref_avs_scores(masks, truths, splits, clips)
    with_object = [v for split, v in out.items() if split != "test_n"]
    if with_object:  # the pooled figure over the splits with a referred object (test_s, test_u, ...)
        out["mIoU"] = float(np.mean([v["mIoU"] for v in with_object]))
        fs = [v["F"] for v in with_object if v["F"] is not None]
        out["F"] = float(np.mean(fs)) if fs else None
    out["presence_accuracy"] = metrics_qa.accuracy(
        [p and p["present"] for p in preds], [g["present"] for g in gts]
    )
    return out


def _score_grounding(preds: list, gts: list[dict], items: list[GroundTruth], opts: ScoreOptions) -> dict:
    out = metrics_seg.grounding_scores([p and p["box"] for p in preds], [g["box"] for g in gts])
    labels = [metrics_qa.normalize_answer(p and p["label"]) for p in preds]
    out["class_accuracy"] = metrics_qa.accuracy(
        labels, [metrics_qa.normalize_answer(g["label"]) for g in gts]
    )
    return out


SCORERS: dict[str, Callable] = {
    "single_event": _score_ave,
    "av_parsing": _score_avvp,
    "dense_events": _score_unav,
    "open_qa": _score_open_qa,
    "multiple_choice": _score_choice,
    "matching": _score_choice,
    "classification": _score_classification,
    "caption": _score_caption,
    "segmentation": _score_segmentation,
    "referring_segmentation": _score_referring,
    "grounding": _score_grounding,
}
