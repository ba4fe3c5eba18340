"""Event metrics: AVE accuracy, AVVP F1 (against a transcription of the LLP benchmark), UnAV mAP."""

from __future__ import annotations

import random

import numpy as np
import pytest
from avuie.schemas.classes import LLP_CLASSES

from avuie.eval.metrics_events import (
    ave_accuracy,
    average_precision_detection,
    avvp_from_matrices,
    avvp_scores,
    event_level,
    events_to_matrix,
    extract_events,
    segment_level,
    unav_map,
)
from tests.conftest import REAL

# ------------------------------------------------------------------ reference: the LLP benchmark, as published
# A direct transcription of YapengTian/AVVP-ECCV20 utils/eval_metrics.py (segment_level, event_level,
# extract_event, event_wise_metric) and the averaging of main_avvp.py, loop for loop.


def ref_f_list(tp, fp, fn):
    f = []
    for ii in range(len(tp)):
        if (tp + fp)[ii] != 0 or (tp + fn)[ii] != 0:
            f.append(2 * tp[ii] / (2 * tp[ii] + (fn + fp)[ii]))
    return 1.0 if len(f) == 0 else sum(f) / len(f)


def ref_segment_level(so_a, so_v, so_av, gt_a, gt_v, gt_av):
    tp_a, fn_a, fp_a = np.sum(so_a * gt_a, 1), np.sum((1 - so_a) * gt_a, 1), np.sum(so_a * (1 - gt_a), 1)
    tp_v, fn_v, fp_v = np.sum(so_v * gt_v, 1), np.sum((1 - so_v) * gt_v, 1), np.sum(so_v * (1 - gt_v), 1)
    tp_av, fn_av = np.sum(so_av * gt_av, 1), np.sum((1 - so_av) * gt_av, 1)
    fp_av = np.sum(so_av * (1 - gt_av), 1)
    return (
        ref_f_list(tp_a, fp_a, fn_a),
        ref_f_list(tp_v, fp_v, fn_v),
        ref_f_list(tp_a + tp_v, fp_a + fp_v, fn_a + fn_v),
        ref_f_list(tp_av, fp_av, fn_av),
    )


def ref_to_vec(start, end):
    x = np.zeros(10)
    for i in range(start, end):
        x[i] = 1
    return x


def ref_extract_event(seq):
    x = []
    i = 0
    while i < 10:
        if seq[i] == 1:
            start = i
            if i + 1 == 10:
                x.append(ref_to_vec(start, i + 1))
                break
            for j in range(i + 1, 10):
                if seq[j] != 1:
                    i = j + 1
                    x.append(ref_to_vec(start, j))
                    break
                i = j + 1
                if i == 10:
                    x.append(ref_to_vec(start, i))
                    break
        else:
            i += 1
    return x


def ref_event_wise_metric(event_p, event_gt):
    tp = fp = fn = 0
    if event_p is not None:
        for x1 in event_p:
            if event_gt is None:
                fp += 1
                continue
            hit = any(np.sum(x1 * x2) >= 0.5 * np.sum(x1 + x2 - x1 * x2) for x2 in event_gt)
            tp, fp = (tp + 1, fp) if hit else (tp, fp + 1)
    if event_gt is not None:
        for x1 in event_gt:
            if event_p is None or not any(
                np.sum(x1 * x2) >= 0.5 * np.sum(x1 + x2 - x1 * x2) for x2 in event_p
            ):
                fn += 1
    return tp, fp, fn


def ref_event_level(so_a, so_v, so_av, gt_a, gt_v, gt_av):
    counts = {m: np.zeros((3, 25)) for m in ("a", "v", "av")}
    for n in range(25):
        for m, so, gt in (("a", so_a, gt_a), ("v", so_v, gt_v), ("av", so_av, gt_av)):
            p = ref_extract_event(so[n]) if np.sum(so[n]) != 0 else None
            g = ref_extract_event(gt[n]) if np.sum(gt[n]) != 0 else None
            counts[m][:, n] += ref_event_wise_metric(p, g)
    (tp_a, fp_a, fn_a), (tp_v, fp_v, fn_v), (tp_av, fp_av, fn_av) = counts["a"], counts["v"], counts["av"]
    return (
        ref_f_list(tp_a, fp_a, fn_a),
        ref_f_list(tp_v, fp_v, fn_v),
        ref_f_list(tp_a + tp_v, fp_a + fp_v, fn_a + fn_v),
        ref_f_list(tp_av, fp_av, fn_av),
    )


def ref_eval(pairs):
    """main_avvp.py eval(): per-video scores, then means; Type@AV and Event@AV."""
    seg, ev = [], []
    for (so_a, so_v), (gt_a, gt_v) in pairs:
        args = (so_a, so_v, so_a * so_v, gt_a, gt_v, gt_a * gt_v)
        seg.append(ref_segment_level(*args))
        ev.append(ref_event_level(*args))
    out = {}
    for name, rows in (("segment", seg), ("event", ev)):
        f_a, f_v, f, f_av = (np.mean([r[k] for r in rows]) for k in range(4))
        out[name] = {"audio": f_a, "visual": f_v, "audio_visual": f_av, "type_av": (f_a + f_v + f_av) / 3,
                     "event_av": f}  # fmt: skip
    return out


def random_matrix(rng, density):
    return (rng.random((25, 10)) < density).astype(float)


# ------------------------------------------------------------------ AVVP


def test_avvp_agrees_with_published_definition_on_random_matrices():
    rng = np.random.default_rng(7)
    pairs = []
    for i in range(120):
        d_gt, d_pred = [0.0, 0.02, 0.1, 0.3, 0.6][i % 5], [0.0, 0.05, 0.2, 0.5][i % 4]
        gt = (random_matrix(rng, d_gt), random_matrix(rng, d_gt))
        pred = (random_matrix(rng, d_pred), random_matrix(rng, d_pred))
        pairs.append((pred, gt))
    for pred, gt in pairs[:40]:  # per video, both levels
        args = (pred[0], pred[1], pred[0] * pred[1], gt[0], gt[1], gt[0] * gt[1])
        np.testing.assert_allclose(segment_level(*args), ref_segment_level(*args), atol=1e-6)
        np.testing.assert_allclose(event_level(*args), ref_event_level(*args), atol=1e-6)
    ours = avvp_from_matrices([p for p, _ in pairs], [g for _, g in pairs])
    ref = ref_eval(pairs)
    for level in ("segment", "event"):
        for key, value in ref[level].items():
            assert ours[level][key] == pytest.approx(value, abs=1e-6), (level, key)


REAL_LLP = REAL / "llp" / "data"


def real_llp_ground_truth(limit: int = 150) -> list[tuple[dict, dict]]:
    """Dense audio and visual events of the first test videos of the real LLP eval CSVs."""
    events: dict[str, tuple[dict, dict]] = {}
    test = [line.split("\t")[0] for line in (REAL_LLP / "AVVP_test_pd.csv").read_text().splitlines()[1:]][
        :limit
    ]
    for video in test:
        events[video] = ({}, {})
    for k, name in enumerate(("AVVP_eval_audio.csv", "AVVP_eval_visual.csv")):
        for line in (REAL_LLP / name).read_text().splitlines()[1:]:
            video, onset, offset, label = line.split("\t")
            if video in events:
                events[video][k].setdefault(label, []).append([int(onset), int(offset)])
    return list(events.values())


@pytest.mark.skipif(not REAL_LLP.is_dir(), reason="real LLP annotations not present")
def test_avvp_on_real_llp_ground_truth_agrees_with_published_definition():
    rng = np.random.default_rng(11)
    pairs = []
    for gt in real_llp_ground_truth():
        gt_m = tuple(events_to_matrix(ev, LLP_CLASSES) for ev in gt)
        flip = [(rng.random((25, 10)) < 0.03) for _ in range(2)]  # a model that is mostly right
        pred_m = tuple(np.abs(m - f) for m, f in zip(gt_m, flip, strict=True))
        pairs.append((pred_m, gt_m))
    ours = avvp_from_matrices([p for p, _ in pairs], [g for _, g in pairs])
    ref = ref_eval(pairs)
    for level in ("segment", "event"):
        for key, value in ref[level].items():
            assert ours[level][key] == pytest.approx(value, abs=1e-6), (level, key)
    assert 0.3 < ours["segment"]["type_av"] < 0.95


def test_extract_events_matches_reference_runs():
    rng = np.random.default_rng(3)
    for _ in range(300):
        seq = (rng.random(10) < rng.random()).astype(float)
        ref = [(int(np.argmax(v)), int(np.argmax(v) + v.sum())) for v in ref_extract_event(seq)]
        assert extract_events(seq) == ref
    assert extract_events([1] * 10) == [(0, 10)]
    assert extract_events([0] * 9 + [1]) == [(9, 10)]


def test_avvp_hand_computed_case():
    classes = ["Speech", "Dog", "Cat"]
    gt = ({"Speech": [[0, 10]], "Dog": [[2, 4]]}, {"Dog": [[2, 6]]})
    pred = ({"speech": [[0, 10]], "Dog": [[6, 8]]}, {"Dog": [[3, 6]]})
    out = avvp_scores([pred], [gt], classes)
    # audio segments: Speech F=1, Dog F=0 -> 0.5; visual: Dog tp3 fn1 -> 6/7
    assert out["segment"]["audio"] == pytest.approx(0.5)
    assert out["segment"]["visual"] == pytest.approx(6 / 7)
    # av: gt Dog [2,4), pred Dog empty (audio [6,8) x visual [3,6)) -> tp0 fn2 -> 0
    assert out["segment"]["audio_visual"] == 0.0
    # pooled per class: Speech 1.0; Dog tp 0+3, fp 2+0, fn 2+1 -> 6/11
    assert out["segment"]["event_av"] == pytest.approx((1 + 6 / 11) / 2)
    # events: audio Speech TP, Dog FP+FN -> 0.5; visual Dog [3,6) vs [2,6): IoU 3/4 -> 1.0
    assert out["event"]["audio"] == pytest.approx(0.5)
    assert out["event"]["visual"] == 1.0
    assert out["event"]["type_av"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)


def test_avvp_edge_cases_perfect_empty_and_unparseable():
    classes = ["Speech", "Dog"]
    gt = ({"Speech": [[0, 5]]}, {"Speech": [[3, 8]]})
    perfect = avvp_scores([gt], [gt], classes)
    assert all(v == 1.0 for level in ("segment", "event") for v in perfect[level].values())
    nothing = avvp_scores([({}, {})], [gt], classes)
    assert nothing["segment"]["audio"] == 0.0 and nothing["event"]["visual"] == 0.0
    # a modality with no positive on either side counts as all true negatives (1.0), as published
    audio_only = ({"Dog": [[0, 10]]}, {})
    assert avvp_scores([audio_only], [audio_only], classes)["segment"]["visual"] == 1.0
    # an unparseable response scores 0 everywhere, even on the true-negative modality
    assert avvp_scores([None], [audio_only], classes)["segment"]["visual"] == 0.0
    # a predicted label outside the class list is a false positive, not an error
    extra = avvp_scores([({"Speech": [[0, 5]], "Unicorn": [[0, 1]]}, gt[1])], [gt], classes)
    assert extra["segment"]["audio"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        avvp_from_matrices(
            [(np.full((2, 10), 0.5), np.zeros((2, 10)))], [(np.zeros((2, 10)), np.zeros((2, 10)))]
        )


def test_avvp_shuffled_predictions_score_near_chance():
    rng = random.Random(0)
    classes = [f"c{i}" for i in range(25)]
    gts = []
    for _ in range(80):
        label, s = rng.choice(classes), rng.randint(0, 8)
        gts.append(({label: [[s, rng.randint(s + 1, 10)]]}, {label: [[0, 10]]}))
    perfect = avvp_scores(gts, gts, classes)["segment"]["type_av"]
    # chance = expected score of another video's answer: the mean over ordered pairs
    pairs = [
        avvp_scores([gts[j]], [gts[i]], classes)["segment"]["type_av"]
        for i in range(0, 80, 9)
        for j in range(80)
        if j != i
    ]
    chance = float(np.mean(pairs))
    shuffled = avvp_scores(gts[3:] + gts[:3], gts, classes)["segment"]["type_av"]
    assert perfect == 1.0 and chance < 0.2 and abs(shuffled - chance) < 0.05


# ------------------------------------------------------------------ AVE


def test_ave_hand_computed_and_edges():
    gt = [("Bark", 2, 6)]
    assert ave_accuracy([("bark", 3, 6)], gt)["accuracy"] == pytest.approx(0.9)
    assert ave_accuracy([("Cat", 2, 6)], gt)["accuracy"] == pytest.approx(0.6)
    assert ave_accuracy([None], gt)["accuracy"] == 0.0
    assert ave_accuracy(gt, gt)["accuracy"] == 1.0
    assert (
        ave_accuracy([("Bark", 0, 10), ("Bark", 0, 10)], [("Bark", 0, 10), ("Cat", 0, 10)])["accuracy"] == 0.5
    )
    with pytest.raises(ValueError):
        ave_accuracy([], gt)


def test_ave_shuffled_near_chance():
    rng = random.Random(1)
    labels = [f"class {i}" for i in range(28)]
    gts = []
    for _ in range(300):
        s = rng.randint(0, 9)
        gts.append((rng.choice(labels), s, rng.randint(s + 1, 10)))
    # chance = expected accuracy of another video's answer: the mean over all ordered pairs
    pairs = [
        ave_accuracy([gts[j]], [gts[i]])["accuracy"] for i in range(0, 300, 7) for j in range(300) if j != i
    ]
    chance = float(np.mean(pairs))
    shuffled = ave_accuracy(gts[5:] + gts[:5], gts)["accuracy"]
    assert abs(shuffled - chance) < 0.06 and shuffled < 0.5


# ------------------------------------------------------------------ UnAV


def ref_activitynet_ap(gts, preds, thresholds):
    """ActivityNet compute_average_precision_detection (distinct scores), loop for loop."""
    ap = np.zeros(len(thresholds))
    if not preds:
        return ap
    order = np.argsort([-p[3] for p in preds], kind="stable")
    lock = -np.ones((len(thresholds), len(gts)))
    tp = np.zeros((len(thresholds), len(preds)))
    fp = np.zeros((len(thresholds), len(preds)))
    for idx, i in enumerate(order):
        vid, s, e, _ = preds[i]
        gidx = [j for j, g in enumerate(gts) if g[0] == vid]
        if not gidx:
            fp[:, idx] = 1
            continue
        tiou = []
        for j in gidx:
            inter = max(0.0, min(e, gts[j][2]) - max(s, gts[j][1]))
            tiou.append(inter / ((e - s) + (gts[j][2] - gts[j][1]) - inter))
        tiou = np.array(tiou)
        for t, thr in enumerate(thresholds):
            for k in tiou.argsort()[::-1]:
                if tiou[k] < thr:
                    fp[t, idx] = 1
                    break
                if lock[t, gidx[k]] >= 0:
                    continue
                tp[t, idx] = 1
                lock[t, gidx[k]] = idx
                break
            if fp[t, idx] == 0 and tp[t, idx] == 0:
                fp[t, idx] = 1
    tpc, fpc = np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)
    rec, prec = tpc / len(gts), tpc / (tpc + fpc)
    for t in range(len(thresholds)):
        mprec, mrec = np.hstack([[0], prec[t], [0]]), np.hstack([[0], rec[t], [1]])
        for i in range(len(mprec) - 1)[::-1]:
            mprec[i] = max(mprec[i], mprec[i + 1])
        i = np.where(mrec[1::] != mrec[0:-1])[0] + 1
        ap[t] = np.sum((mrec[i] - mrec[i - 1]) * mprec[i])
    return ap


def test_unav_ap_agrees_with_activitynet_for_distinct_scores():
    rng = np.random.default_rng(5)
    thr = (0.5, 0.6, 0.7, 0.8, 0.9)
    for _ in range(30):
        gts, preds = [], []
        for v in range(4):
            for _ in range(rng.integers(1, 4)):
                s = float(rng.uniform(0, 50))
                gts.append((f"v{v}", s, s + float(rng.uniform(1, 20))))
            for _ in range(rng.integers(0, 5)):
                s = float(rng.uniform(0, 50))
                preds.append((f"v{v}", s, s + float(rng.uniform(1, 20)), float(rng.random())))
        for g in gts[:3]:  # some near-perfect detections so that APs are not all zero
            preds.append((g[0], g[1] + 0.3, g[2], float(rng.random())))
        np.testing.assert_allclose(
            average_precision_detection(gts, preds, thr), ref_activitynet_ap(gts, preds, thr), atol=1e-9
        )


def test_unav_hand_computed_cases():
    gts = {"a": [("dog", 0.0, 10.0), ("cat", 5.0, 15.0)]}
    assert unav_map({"a": [("dog", 0.0, 10.0, 1.0)]}, gts)["mAP_avg"] == pytest.approx(0.5)
    perfect = unav_map({"a": [(lab, s, e, 1.0) for lab, s, e in gts["a"]]}, gts)
    assert perfect["mAP_avg"] == 1.0 and perfect["mAP@0.9"] == 1.0
    # tIoU 0.8: a hit at 0.5..0.8, a miss at 0.9
    short = unav_map({"a": [("dog", 0.0, 8.0, 1.0)]}, {"a": [("dog", 0.0, 10.0)]})
    assert [short[f"mAP@{t}"] for t in ("0.5", "0.6", "0.7", "0.8", "0.9")] == [1, 1, 1, 1, 0]
    assert short["mAP_avg"] == pytest.approx(0.8)
    # no prediction and unparseable responses: AP 0
    assert unav_map({"a": None}, gts)["mAP_avg"] == 0.0
    assert unav_map({}, gts)["mAP_avg"] == 0.0


def test_unav_ties_are_one_block_and_order_free():
    gt = [("v", 0.0, 10.0)]
    dup_tied = [("v", 0.0, 10.0, 1.0), ("v", 0.0, 10.0, 1.0)]
    assert average_precision_detection(gt, dup_tied)[0] == pytest.approx(0.5)  # P=0.5 at R=1
    ranked = [("v", 0.0, 10.0, 0.9), ("v", 0.0, 10.0, 0.8)]
    assert average_precision_detection(gt, ranked)[0] == pytest.approx(1.0)  # the hit ranks first
    gts = [("v", 0.0, 10.0), ("w", 0.0, 10.0)]
    preds = [("v", 20.0, 30.0, 1.0), ("v", 0.0, 10.0, 1.0), ("w", 0.0, 9.0, 1.0), ("w", 40.0, 50.0, 1.0)]
    a = average_precision_detection(gts, preds)
    b = average_precision_detection(gts, preds[::-1])
    np.testing.assert_allclose(a, b)
    assert a[0] == pytest.approx(0.5)  # 2 hits of 4 at full recall


def test_unav_shuffled_predictions_near_chance():
    rng = random.Random(2)
    gts = {}
    for v in range(40):
        events = []
        for _ in range(rng.randint(1, 3)):
            s = rng.uniform(0, 40)
            events.append((f"class{rng.randint(0, 9)}", s, s + rng.uniform(2, 20)))
        gts[f"v{v}"] = events
    keys = list(gts)
    perfect = unav_map({k: [(*e, 1.0) for e in gts[k]] for k in keys}, gts)["mAP_avg"]
    shuffled = unav_map({k: [(*e, 1.0) for e in gts[keys[i - 1]]] for i, k in enumerate(keys)}, gts)[
        "mAP_avg"
    ]
    assert perfect == 1.0 and shuffled < 0.1


def test_avvp_empty_modalities_score_as_the_reference_through_the_scorer():
    """A prediction that rightly finds nothing in a modality scores that modality as the reference does (1.0
    when the truth is empty there too), both when the answer names events in the other modality only and when
    it names none at all (the parsed "nothing found" answer: two empty dicts, scored as written)."""
    from avuie.schemas import AVParsingTarget, render_answer

    from avuie.eval.reading import GroundTruth
    from avuie.eval.runner import score_task
    from avuie.eval.scorers import SCORERS, ScoreOptions, plain

    truths = [AVParsingTarget(audio={"Speech": [(0, 4)]}), AVParsingTarget(audio={"Dog": [(2, 6)]})]
    items = [GroundTruth(id=f"avvp/test/{i}", source="avvp", family="event_localization", split="test", target=t)
             for i, t in enumerate(truths)]  # fmt: skip
    preds = [{"audio": {"Speech": [(0, 4)]}, "visual": {}}, {"audio": {}, "visual": {}}]
    ours = SCORERS["av_parsing"](preds, [plain(t) for t in truths], items, ScoreOptions())
    mats = lambda ev: tuple(events_to_matrix(m, LLP_CLASSES) for m in ev)  # noqa: E731
    ref = ref_eval([(mats((p["audio"], p["visual"])), mats((t.audio, t.visual))) for p, t in zip(preds, truths, strict=True)])  # fmt: skip
    for level in ("segment", "event"):
        for key, value in ref[level].items():
            assert ours[level][key] == pytest.approx(value, abs=1e-6), (level, key)
    assert ours["segment"]["visual"] == 1.0 and ours["segment"]["audio"] == 0.5
    # through the parser: an audio-only answer leaves the visual modality empty, scored 1.0 there
    result = score_task(items[:1], [render_answer(truths[0])])
    assert result["n_unparseable"] == 0 and result["metrics"]["segment"]["visual"] == 1.0
    assert result["primary"]["value"] == 1.0


def test_nothing_found_answers_score_as_the_reference_scores_an_empty_prediction():
    """`<answer>none</answer>` reads as an empty prediction for AVVP and UnAV: AVVP scores each modality as the
    reference scores empty matrices (1.0 where the truth is empty too), UnAV counts no detection."""
    from avuie.schemas import NOTHING_ANSWER, AVParsingTarget, DenseEventsTarget

    from avuie.eval.reading import GroundTruth
    from avuie.eval.runner import score_task

    truth = AVParsingTarget(audio={"Speech": [(0, 4)]})
    item = GroundTruth(
        id="avvp/test/0", source="avvp", family="event_localization", split="test", target=truth
    )
    result = score_task([item], [f"I hear nothing I can name. {NOTHING_ANSWER}"])
    assert result["n_unparseable"] == 0
    empty = np.zeros((25, 10))
    ref = ref_eval(
        [((empty, empty), tuple(events_to_matrix(m, LLP_CLASSES) for m in (truth.audio, truth.visual)))]
    )
    for level in ("segment", "event"):
        for key, value in ref[level].items():
            assert result["metrics"][level][key] == pytest.approx(value, abs=1e-6), (level, key)
    assert result["metrics"]["segment"]["audio"] == 0.0 and result["metrics"]["segment"]["visual"] == 1.0
    unav = DenseEventsTarget(events=[{"label": "dog barking", "start": 1.0, "end": 4.0}], duration=10)
    item = GroundTruth(
        id="unav/test/0", source="unav", family="event_localization", split="test", target=unav
    )
    result = score_task([item], [NOTHING_ANSWER])
    assert result["n_unparseable"] == 0 and result["primary"]["value"] == 0.0
