"""AVSBench and Ref-AVS mask metrics against a test-side transcription of the benchmarks' own rules.

The `ref_*` functions below are written from the definitions in OpenNLPLab/AVSBench
`avs_scripts/avs_s4/utils/utility.py` (`mask_iou`, `_eval_pr`, `Eval_Fmeasure`; commit 4d4c9010) with the batch
loop of `avs_scripts/avs_s4/test.py` (one video per batch, `AverageMeter` over batches), and GeWu-Lab/Ref-AVS
`utils/metric/utility.py` (`mask_iou` at sigmoid > 0.4, `metric_s_for_null`; commit f0fbef3c) with the loop of
`scripts/train.py` `test()` (batches of four expressions, `run_refavs.py`). They run the full 255-threshold
sweep in float32 on logits, step for step, where ours takes the closed form; a binary mask enters as logits
+-10 (and, for AVSBench, as 0/1 logits too: the same figures).
"""

from __future__ import annotations

import numpy as np
import pytest

from avuie.eval.metrics_seg import (
    avs_scores,
    batch_scores,
    batches_of,
    full_fscore,
    mask_fscore,
    mask_iou,
    null_s,
    ref_avs_scores,
)

# ------------------------------------------------------------------ the reference, transcribed


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32)


def logits(mask: np.ndarray, zero_one: bool = False) -> np.ndarray:
    m = np.asarray(mask) > 0
    return m.astype(np.float32) if zero_one else np.where(m, 10.0, -10.0).astype(np.float32)


def ref_mask_iou(pred_logits: np.ndarray, target: np.ndarray, cut: float = 0.5, eps: float = 1e-7) -> float:
    """utility.py mask_iou: [N, H, W] logits and 0/1 targets; sum of inter / (union + eps) over N, over N."""
    n, num_pixels = pred_logits.shape[0], pred_logits.shape[-1] * pred_logits.shape[-2]
    target = target.astype(np.float32)
    no_obj = target.sum(2).sum(1) == 0
    pred = (sigmoid(pred_logits) > cut).astype(np.float32)
    inter = (pred * target).sum(2).sum(1)
    union = np.maximum(pred, target).sum(2).sum(1)
    inter_no_obj = ((1 - target) * (1 - pred)).sum(2).sum(1)
    inter[no_obj] = inter_no_obj[no_obj]
    union[no_obj] = num_pixels
    return float(np.sum(inter / (union + eps)) / n)


def ref_eval_pr(y_pred: np.ndarray, y: np.ndarray, num: int) -> tuple[np.ndarray, np.ndarray]:
    prec, recall = np.zeros(num, np.float32), np.zeros(num, np.float32)
    thlist = np.linspace(0, 1 - 1e-10, num, dtype=np.float32)
    for i in range(num):
        y_temp = (y_pred >= thlist[i]).astype(np.float32)
        tp = (y_temp * y).sum()
        prec[i], recall[i] = tp / (y_temp.sum() + 1e-20), tp / (y.sum() + 1e-20)
    return prec, recall


def ref_eval_fmeasure(pred_logits: np.ndarray, gt: np.ndarray, pr_num: int = 255) -> float:
    """utility.py Eval_Fmeasure: the best threshold of the batch-mean F; frames with an all-black GT skipped."""
    pred = sigmoid(pred_logits)
    gt = gt.astype(np.float32)
    beta2 = 0.3
    avg_f, img_num = 0.0, 0
    score = np.zeros(pr_num, np.float32)
    for img_id in range(pred.shape[0]):
        if np.mean(gt[img_id]) == 0.0:
            continue
        prec, recall = ref_eval_pr(pred[img_id], gt[img_id], pr_num)
        with np.errstate(invalid="ignore", divide="ignore"):
            f_score = (1 + beta2) * prec * recall / (beta2 * prec + recall)
        f_score[f_score != f_score] = 0
        avg_f = avg_f + f_score
        img_num += 1
        score = avg_f / img_num
    return float(score.max())


def ref_avsbench_test(videos: list[tuple[list[np.ndarray], list[np.ndarray]]], zero_one: bool = False):
    """test.py: one batch per video (test_batch_size 1), AverageMeter means of the batch mIoU and F."""
    mious, fs = [], []
    for preds, gts in videos:
        out = np.stack([logits(p, zero_one) for p in preds])
        mask = np.stack([np.asarray(g) > 0 for g in gts]).astype(np.float32)
        mious.append(ref_mask_iou(out, mask))
        fs.append(ref_eval_fmeasure(out, mask))
    return sum(mious) / len(mious), sum(fs) / len(fs)


def ref_refavs_test(batches: list[tuple[list[np.ndarray], list[np.ndarray]]], null: bool):
    """Ref-AVS scripts/train.py test(): per batch mask_iou (sigmoid > 0.4) and Eval_Fmeasure, or S for null."""
    if null:
        s_list = []
        for preds, _ in batches:
            pred = (sigmoid(np.stack([logits(p) for p in preds])) > 0.5).astype(np.int64)
            s_list.append(np.sqrt(pred.sum() / pred.size))  # metric_s_for_null: pooled over the batch
        return float(np.mean(np.array(s_list)))
    mious, fs = [], []
    for preds, gts in batches:
        out = np.stack([logits(p) for p in preds])
        mask = np.stack([np.asarray(g) > 0 for g in gts]).astype(np.float32)
        mious.append(ref_mask_iou(out, mask, cut=0.4))
        fs.append(ref_eval_fmeasure(out, mask))
    return sum(mious) / len(mious), sum(fs) / len(fs)


# ------------------------------------------------------------------ inputs


def rectangle(rng: np.random.Generator, h: int, w: int, p_empty: float = 0.0) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    if rng.random() < p_empty:
        return m
    y1, x1 = rng.integers(0, h), rng.integers(0, w)
    y2, x2 = rng.integers(y1, h) + 1, rng.integers(x1, w) + 1
    m[y1:y2, x1:x2] = True
    return m


def random_videos(seed: int, n_videos: int, p_empty_pred: float = 0.0, p_empty_gt: float = 0.0):
    rng = np.random.default_rng(seed)
    h, w = 24, 32
    videos = []
    for _ in range(n_videos):
        frames = int(rng.integers(1, 6))
        preds = [rectangle(rng, h, w, p_empty_pred) for _ in range(frames)]
        gts = [rectangle(rng, h, w, p_empty_gt) for _ in range(frames)]
        videos.append((preds, gts))
    return videos


def ours(videos) -> dict:
    preds = [p for ps, _ in videos for p in ps]
    gts = [g for _, gs in videos for g in gs]
    names = [f"v{i}" for i, (ps, _) in enumerate(videos) for _ in ps]
    return avs_scores(preds, gts, names)


# ------------------------------------------------------------------ AVSBench


@pytest.mark.parametrize(
    ("seed", "p_empty_pred", "p_empty_gt"),
    [(0, 0.0, 0.0), (1, 0.0, 0.0), (2, 0.3, 0.0), (3, 0.0, 0.3), (4, 0.3, 0.3), (5, 1.0, 0.0), (6, 0.0, 0.9)],
)
def test_avsbench_equals_the_reference_on_random_rectangles(seed, p_empty_pred, p_empty_gt):
    videos = random_videos(seed, 30, p_empty_pred, p_empty_gt)
    ref_miou, ref_f = ref_avsbench_test(videos)
    got = ours(videos)
    assert got["mIoU"] == pytest.approx(ref_miou, abs=1e-6)
    assert got["F"] == pytest.approx(ref_f, abs=1e-6)
    if seed == 0:  # 0/1 logits (sigmoid 0.5 / 0.73) give the same figures
        zo_miou, zo_f = ref_avsbench_test(videos, zero_one=True)
        assert (zo_miou, zo_f) == pytest.approx((ref_miou, ref_f), abs=1e-6)


def test_random_rectangles_earn_the_all_foreground_point():
    """The issue's case: on random rectangles the sweep's threshold 0 beats the masks themselves."""
    videos = random_videos(11, 60)
    got = ours(videos)
    mask_only = np.mean(
        [np.mean([mask_fscore(p, g) for p, g in zip(ps, gs, strict=True)]) for ps, gs in videos]
    )
    assert got["F"] == pytest.approx(ref_avsbench_test(videos)[1], abs=1e-6)
    assert got["F"] > mask_only + 0.05


def test_empty_predictions_score_the_all_foreground_f():
    videos = random_videos(12, 25, p_empty_pred=1.0)
    got = ours(videos)
    expected = np.mean([np.mean([full_fscore(g) for g in gs]) for _, gs in videos])
    assert got["F"] == pytest.approx(expected, abs=1e-9) and got["F"] > 0
    assert got["F"] == pytest.approx(ref_avsbench_test(videos)[1], abs=1e-6)
    assert got["mIoU"] == pytest.approx(0.0, abs=1e-9)


def test_empty_ground_truth_batches_score_f_zero_and_count():
    empty, full = np.zeros((4, 4), bool), np.ones((4, 4), bool)
    left = np.zeros((4, 4), bool)
    left[:, :2] = True
    # video a: all GT empty -> F 0 whatever is predicted; IoU = empty share of the prediction
    # video b: one empty GT frame (left out of F) and one perfect frame -> F 1
    out = avs_scores([empty, full, left, left], [empty, empty, empty, left], ["a", "a", "b", "b"])
    assert out["n_batches"] == 2 and out["n_empty_gt"] == 3 and out["n_empty_gt_batches"] == 1
    assert out["F"] == pytest.approx((0.0 + 1.0) / 2)
    iou_a, iou_b = (16 / (16 + 1e-7) + 0.0) / 2, (0.5 * 16 / (16 + 1e-7) + 8 / (8 + 1e-7)) / 2
    assert out["mIoU"] == pytest.approx((iou_a + iou_b) / 2, abs=1e-12)
    videos = [([empty, full], [empty, empty]), ([left, left], [empty, left])]
    assert (out["mIoU"], out["F"]) == pytest.approx(ref_avsbench_test(videos), abs=1e-6)


def test_hand_computed_frames_and_batches():
    left = np.zeros((8, 8), bool)
    left[:, :4] = True
    top = np.zeros((8, 8), bool)
    top[:4] = True
    quarter = left & top
    assert mask_iou(top, left) == pytest.approx(16 / 48, abs=1e-8)
    assert mask_fscore(quarter, left) == pytest.approx(1.3 * 0.5 / (0.3 + 0.5))  # precision 1, recall 1/2
    assert full_fscore(left) == pytest.approx(1.3 * 0.5 / (0.3 * 0.5 + 1))  # precision 1/2, recall 1
    assert mask_fscore(np.zeros((8, 8)), left) == 0.0 and mask_fscore(left, np.zeros((8, 8))) is None
    # one batch: the masks' mean F is (1 + 0) / 2 = 0.5, the all-foreground mean F 0.65 / 1.15 = 0.565 wins
    miou, f = batch_scores([left, np.zeros((8, 8))], [left, left])
    assert f == pytest.approx(full_fscore(left)) and miou == pytest.approx(0.5, abs=1e-8)
    miou, f = batch_scores([left, left], [left, left])
    assert f == pytest.approx(1.0) and miou == pytest.approx(1.0, abs=1e-8)
    assert batch_scores([left], [np.zeros((8, 8))])[1] == 0.0
    with pytest.raises(ValueError):
        mask_iou(np.zeros((4, 4)), np.zeros((8, 8)))


def test_batches_keep_videos_together_in_first_seen_order():
    assert batches_of(["a", "b", "a", "c"], 1) == [[0, 2], [1], [3]]
    assert batches_of(["a", "b", "a", "c", "d"], 2) == [[0, 2, 1], [3, 4]]
    with pytest.raises(ValueError):
        batches_of(["a"], 0)


# ------------------------------------------------------------------ Ref-AVS


def test_refavs_null_s_pools_the_batch():
    """The issue's case: frame shares [0, 0.5] in one batch give S = sqrt(0.25) = 0.5 (not mean of roots)."""
    empty, half = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    half[:2] = True
    assert null_s([empty, half]) == pytest.approx(0.5)
    out = ref_avs_scores([empty, half], [None, None], ["test_n", "test_n"], ["e1", "e2"])
    assert out["test_n"]["S"] == pytest.approx(0.5) and out["test_n"]["n_batches"] == 1
    assert out["test_n"]["mean_area_fraction"] == pytest.approx(0.25)
    assert ref_refavs_test([([empty, half], [])], null=True) == pytest.approx(0.5)
    # five expressions -> batches of four and one: S = (sqrt(pooled first four) + sqrt(last)) / 2
    full = np.ones((4, 4), bool)
    five = ref_avs_scores([empty, half, empty, empty, full], [None] * 5, ["test_n"] * 5, list("abcde"))
    assert five["test_n"]["S"] == pytest.approx((np.sqrt(8 / 64) + 1.0) / 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_refavs_equals_the_reference_on_random_batches(seed):
    rng = np.random.default_rng(seed)
    h, w = 20, 24
    preds, gts, splits, exprs, frames_of = [], [], [], [], {}
    for split in ("test_s", "test_u", "test_n"):
        for e in range(int(rng.integers(5, 11))):
            name = f"{split}/e{e}"
            for _ in range(int(rng.integers(1, 4))):  # frames of this expression
                preds.append(rectangle(rng, h, w, p_empty=0.3))
                gts.append(None if split == "test_n" else rectangle(rng, h, w, p_empty=0.1))
                splits.append(split)
                exprs.append(name)
                frames_of.setdefault(name, []).append(len(preds) - 1)
    got = ref_avs_scores(preds, gts, splits, exprs)
    for split in ("test_s", "test_u", "test_n"):
        names = [n for n in frames_of if n.startswith(split + "/")]
        batches = []
        for k in range(0, len(names), 4):
            idx = [i for n in names[k : k + 4] for i in frames_of[n]]
            batches.append(([preds[i] for i in idx], [gts[i] for i in idx]))
        if split == "test_n":
            assert got[split]["S"] == pytest.approx(ref_refavs_test(batches, null=True), abs=1e-6)
        else:
            ref_miou, ref_f = ref_refavs_test(batches, null=False)
            assert got[split]["mIoU"] == pytest.approx(ref_miou, abs=1e-6)
            assert got[split]["F"] == pytest.approx(ref_f, abs=1e-6)


# ------------------------------------------------------------------ batching through `score_task`


def _group(x1: int, y1: int, x2: int, y2: int):
    from avuie.schemas import ObjectGroup

    return ObjectGroup(label="dog", box=(x1, y1, x2, y2), points=[(x1, y1)] * 3, mask="mask_0.png")


def test_score_task_batches_s4_frames_by_video():
    """Frames `<video>_f<i>` form one batch per video: a video whose frames are all right scores F 1, one whose
    frames are all wrong scores its all-foreground F, whatever the sample order."""
    from avuie.schemas import SegmentationTarget, render_answer

    from avuie.eval.masks import make_masker
    from avuie.eval.reading import GroundTruth
    from avuie.eval.runner import score_task

    truth = SegmentationTarget(groups=[_group(0, 0, 9, 9)], frame_size=(40, 20))
    wrong = SegmentationTarget(groups=[_group(20, 5, 29, 14)], frame_size=(40, 20))
    gt_mask = np.zeros((20, 40), bool)
    gt_mask[:10, :10] = True
    items, responses = [], []
    for video, answer in (("a", truth), ("b", wrong)):
        for i in range(3):
            items.append(GroundTruth(id=f"s4/test/{video}_f{i}", source="s4", family="segmentation", split="test",
                                     target=truth, masks={"mask_0.png": gt_mask}, native_id=f"{video}_f{i}"))  # fmt: skip
            responses.append(render_answer(answer))
    order = [0, 3, 1, 4, 2, 5]  # interleaved: batching must follow the video, not the order
    result = score_task([items[i] for i in order], [responses[i] for i in order], make_masker("box"))
    metrics = result["metrics"]
    assert metrics["n_batches"] == 2 and metrics["n"] == 6
    assert metrics["F"] == pytest.approx((1.0 + full_fscore(gt_mask)) / 2)
    assert metrics["mIoU"] == pytest.approx(0.5, abs=1e-6)


def test_score_task_batches_ref_avs_expressions_in_release_order():
    """Ref-AVS batches four expressions in metadata-row order: the row, not the id, decides the batches."""
    from avuie.schemas import ReferringSegmentationTarget, render_answer

    from avuie.eval.masks import make_masker
    from avuie.eval.reading import GroundTruth
    from avuie.eval.runner import score_task

    absent = ReferringSegmentationTarget(expression="the dog", present=False, frame_size=(40, 20))
    found = ReferringSegmentationTarget(expression="the dog", present=True, groups=[_group(0, 0, 9, 9)],
                                        frame_size=(40, 20))  # fmt: skip
    rows = [5, 1, 4, 2, 3]  # e0 is the last expression of the release
    items = [GroundTruth(id=f"ref_avs/test_n/e{k}_f0", source="ref_avs", family="segmentation", split="test_n",
                         target=absent, native_id=f"e{k}_f0", row=row) for k, row in enumerate(rows)]  # fmt: skip
    responses = [render_answer(found if k == 0 else absent) for k in range(5)]
    result = score_task(items, responses, make_masker("box"))
    share = 100 / 800
    s = result["metrics"]["test_n"]["S"]
    assert result["metrics"]["test_n"]["n_batches"] == 2
    assert s == pytest.approx((0.0 + np.sqrt(share)) / 2)  # e0 alone in the second batch
    assert s != pytest.approx((np.sqrt(share / 4) + 0.0) / 2)  # what id order would give


def test_nothing_found_mask_answer_is_an_empty_prediction():
    """`<answer>none</answer>` on s4 is an empty mask: IoU 0, and the batch still earns the all-foreground F,
    as the reference scores an empty prediction."""
    from avuie.schemas import NOTHING_ANSWER, SegmentationTarget

    from avuie.eval.reading import GroundTruth
    from avuie.eval.runner import score_task

    truth = SegmentationTarget(groups=[_group(0, 0, 9, 9)], frame_size=(40, 20))
    gt_mask = np.zeros((20, 40), bool)
    gt_mask[:10, :10] = True
    items = [GroundTruth(id=f"s4/test/v_f{i}", source="s4", family="segmentation", split="test", target=truth,
                         masks={"mask_0.png": gt_mask}, native_id=f"v_f{i}") for i in range(2)]  # fmt: skip
    result = score_task(items, [NOTHING_ANSWER] * 2)
    assert result["n_unparseable"] == 0 and result["metrics"]["mIoU"] == 0.0
    videos = [([np.zeros_like(gt_mask)] * 2, [gt_mask] * 2)]
    assert result["metrics"]["F"] == pytest.approx(ref_avsbench_test(videos)[1], abs=1e-6)
    assert result["metrics"]["F"] == pytest.approx(full_fscore(gt_mask))
