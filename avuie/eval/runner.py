"""`avuie eval`: parse each response with the tag parser and score every task with its benchmark's metric.

Each response is parsed with `avuie.schemas.parse_answer(text, like=ground_truth_target)`. A response whose
answer reads but breaks a target constraint (a box past the frame, end before start) is still scored as written
and counted in `n_constraint_violations`. A response with no readable answer counts as wrong and is counted in
`n_unparseable`; "wrong" means the worst score each metric can give that sample: a wrong answer or label, every
AVE segment wrong, every AVVP F 0, no UnAV detection, an empty caption, no box, and for masks the inverse of the
ground truth (IoU 0, mask F 0, S 1 on Ref-AVS's null set; the F sweep's all-foreground point still counts for
its batch, as in the reference). Mask metrics are scored per batch as the references batch them: s4 and ms3 one
video (the sample's native id without `_f<frame>`), ref_avs four expressions in metadata-row order.

A prediction line that is not a JSON object with a string "id" and a string "response" (no "response" key, not
JSON, ...) is malformed: it is not scored (its sample, when the id is known, counts as unpredicted, not as
unparseable) and the report says so in "n_malformed_lines", "malformed_lines" (the first 20 line numbers) and
"malformed_reasons" ({reason: count}).

The report: {"predictions", "data", "mask_backend", "mask_backend_reason", "n_predictions", "n_malformed_lines",
"malformed_lines", "malformed_reasons", "n_duplicate_ids", "n_unknown_ids", "unknown_ids" (first 20),
"tasks": {source: {"n", "n_unparseable", "n_constraint_violations", "n_unpredicted", "n_malformed" (its
malformed lines that carry an id: not scored), "metrics": {...},
"primary": {"metric", "value", "higher_is_better"}}}}. The primary metric of each task is what `avuie transfer`
compares.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from avuie.eval import metrics_caption, metrics_cls, metrics_events, metrics_qa, metrics_seg
from avuie.eval.masks import make_masker
from avuie.eval.reading import GroundTruth, load_ground_truth, read_predictions, source_of

SEG_KINDS = ("segmentation", "referring_segmentation")
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


def parse_prediction(response: str, gt: GroundTruth) -> tuple[dict | None, str]:
    """Parse one response against its ground truth. Returns (plain target or None, "ok" | "constraint" |
    "unparseable")."""
    from avuie.schemas import AnswerParseError, parse_answer

    try:
        return plain(parse_answer(response, like=gt.target, source=gt.source)), "ok"
    except (AnswerParseError, ValueError):  # AnswerParseError is a ValueError; the parser raises nothing else
        pass
    try:
        return plain(parse_answer(response, like=gt.target, source=gt.source, validate=False)), "constraint"
    except (AnswerParseError, ValueError):
        return None, "unparseable"


# ---------------------------------------------------------------------------------------------- per kind


def _score_ave(preds: list, gts: list[dict], items: list[GroundTruth], masker) -> dict:
    segments = int(round(max(g["duration"] for g in gts)))
    as_tuple = lambda t: (t["label"], t["start"], t["end"])  # noqa: E731
    return metrics_events.ave_accuracy(
        [p and as_tuple(p) for p in preds], [as_tuple(g) for g in gts], segments
    )


def _score_avvp(preds: list, gts: list[dict], items: list[GroundTruth], masker) -> dict:
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


def _score_unav(preds: list, gts: list[dict], items: list[GroundTruth], masker) -> dict:
    events = lambda t: [(e["label"], e["start"], e["end"]) for e in t["events"]]  # noqa: E731
    return metrics_events.unav_map(
        {it.id: p and [(*e, 1.0) for e in events(p)] for it, p in zip(items, preds, strict=True)},
        {it.id: events(g) for it, g in zip(items, gts, strict=True)},
    )


def _score_open_qa(preds: list, gts: list[dict], items: list[GroundTruth], masker) -> dict:
    return metrics_qa.avqa_accuracy([p and p["answer"] for p in preds], [g["answer"] for g in gts],
                                    [g.get("question_type", "") for g in gts])  # fmt: skip


def _score_choice(preds: list, gts: list[dict], items: list[GroundTruth], masker) -> dict:
    return metrics_qa.choice_accuracy(
        [p and p["answer_index"] for p in preds], [g["answer_index"] for g in gts]
    )


def _score_classification(preds: list, gts: list[dict], items: list[GroundTruth], masker) -> dict:
    out = metrics_cls.classification_scores([p and p["label"] for p in preds], [g["label"] for g in gts])
    if items[0].family != "emotion_recognition":
        out = {"accuracy": out["accuracy"], "n": out["n"]}
    return out


def _score_caption(preds: list, gts: list[dict], items: list[GroundTruth], masker) -> dict:
    return metrics_caption.caption_scores([p and p["caption"] for p in preds], [[g["caption"]] for g in gts])


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


def _score_segmentation(preds: list, gts: list[dict], items: list[GroundTruth], masker) -> dict:
    truths = [_gt_mask(g, it) for g, it in zip(gts, items, strict=True)]
    masks = [_pred_mask(p, t, it, masker) for p, t, it in zip(preds, truths, items, strict=True)]
    return metrics_seg.avs_scores(masks, truths, [clip_of(it) for it in items])


def _score_referring(preds: list, gts: list[dict], items: list[GroundTruth], masker) -> dict:
    order = release_order(items)
    preds, gts, items = [preds[i] for i in order], [gts[i] for i in order], [items[i] for i in order]
    truths = [_gt_mask(g, it) for g, it in zip(gts, items, strict=True)]
    masks = [_pred_mask(p, t, it, masker) for p, t, it in zip(preds, truths, items, strict=True)]
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


def _score_grounding(preds: list, gts: list[dict], items: list[GroundTruth], masker) -> dict:
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


def metric_value(metrics: dict, path: str) -> float | None:
    """The value at a dotted path of a metrics dict ("segment.type_av"), or None where absent."""
    if path in metrics:  # keys may hold dots themselves ("acc@0.5")
        return metrics[path]
    value: Any = metrics
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def score_task(items: Sequence[GroundTruth], responses: Sequence[str], masker=None) -> dict:
    """Score one task: its ground-truth samples and their responses (same order, one target kind).

    Returns {"n", "n_unparseable", "n_constraint_violations", "metrics", "primary"}.
    """
    kinds = {it.target.kind for it in items}
    if len(kinds) != 1:
        raise ValueError(f"one task must hold one target kind, found {sorted(kinds)}")
    kind = kinds.pop()
    parsed = [parse_prediction(r, it) for r, it in zip(responses, items, strict=True)]
    preds = [p for p, _ in parsed]
    metrics = SCORERS[kind](preds, [plain(it.target) for it in items], list(items), masker)
    name, higher = PRIMARY[kind]
    return {
        "n": len(items),
        "n_unparseable": sum(s == "unparseable" for _, s in parsed),
        "n_constraint_violations": sum(s == "constraint" for _, s in parsed),
        "metrics": metrics,
        "primary": {"metric": name, "value": metric_value(metrics, name), "higher_is_better": higher},
    }


def evaluate(
    pred_path: str | Path,
    data_root: str | Path,
    tasks: Sequence[str] | None = None,
    mask_backend: str = "auto",
    sam2_checkpoint: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Score a predictions file against a build directory; `tasks` limits the sources (None: all predicted).

    `progress(stage, done, total)` is called while shards are read and tasks scored. Returns the report dict
    described in this module's docstring. Raises ValueError when no prediction matches the selection (naming
    the malformed lines, if any).
    """
    read = read_predictions(pred_path)
    preds, malformed = read.responses, read.malformed_summary()
    wanted = {i for i in preds if tasks is None or source_of(i) in set(tasks)}
    if not wanted:
        bad = ""
        if malformed["n_malformed_lines"]:
            lines = ", ".join(map(str, malformed["malformed_lines"][:5]))
            reasons = ", ".join(f"{reason}: {n}" for reason, n in malformed["malformed_reasons"].items())
            bad = f" ({malformed['n_malformed_lines']} malformed lines, e.g. line {lines}; {reasons})"
        raise ValueError(f"no prediction in {pred_path} belongs to the tasks {sorted(tasks or [])}{bad}")
    seg_sources = {"s4", "ms3", "ref_avs"}
    masker = None
    if any(source_of(i) in seg_sources for i in wanted):
        masker = make_masker(mask_backend, sam2_checkpoint)
    need_image = (
        (lambda source: source in seg_sources)
        if masker is not None and masker.name == "sam2"
        else (lambda s: False)
    )
    found, unpredicted = load_ground_truth(
        data_root,
        wanted,
        need_image,
        on_shard=(lambda d, t: progress("reading shards", d, t)) if progress else None,
    )
    by_task: dict[str, list[GroundTruth]] = {}
    for sample_id in sorted(found):
        by_task.setdefault(found[sample_id].source, []).append(found[sample_id])
    unknown = sorted(wanted - set(found))
    report: dict[str, Any] = {
        "predictions": str(pred_path),
        "data": str(data_root),
        "mask_backend": masker.name if masker else None,
        "mask_backend_reason": masker.reason if masker else None,
        "n_predictions": len(preds),
        **malformed,
        "n_duplicate_ids": read.duplicates,
        "n_unknown_ids": len(unknown),
        "unknown_ids": unknown[:20],
        "tasks": {},
    }
    for done, (task, items) in enumerate(sorted(by_task.items()), 1):
        result = score_task(items, [preds[it.id] for it in items], masker)
        result["n_unpredicted"] = sum(n for pair, n in unpredicted.items() if pair.startswith(f"{task}/"))
        result["n_malformed"] = sum(bool(i) and source_of(i) == task for _, _, i in read.malformed)
        if task in seg_sources:
            result["mask_backend"] = report["mask_backend"]
        report["tasks"][task] = result
        if progress:
            progress("scoring tasks", done, len(by_task))
    return report
