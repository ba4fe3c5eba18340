"""QA, classification, segmentation/grounding and caption metrics on hand-computed cases and edge cases."""

from __future__ import annotations

import math
import random

import pytest

from avuie.eval.masks import BoxFillMasker, fill_boxes, make_masker
from avuie.eval.metrics_caption import bleu, caption_scores, cider, rouge_l, tokenize
from avuie.eval.metrics_cls import classification_scores
from avuie.eval.metrics_qa import avqa_accuracy, choice_accuracy, normalize_answer
from avuie.eval.metrics_seg import box_iou, grounding_scores

# ------------------------------------------------------------------ QA, choices, classification


def test_avqa_accuracy_per_modality_and_type():
    gts = ["two", "acoustic_guitar", "yes", "left"]
    preds = ["Two.", "acoustic guitar", "no", None]
    types = ["Audio/Counting", "Visual/Location", "Audio-Visual/Existential", "Audio-Visual/Location"]
    out = avqa_accuracy(preds, gts, types)
    assert out["accuracy"] == 0.5
    assert out["by_modality"] == {"Audio": 1.0, "Audio-Visual": 0.0, "Visual": 1.0}
    assert out["by_type"]["Visual/Location"] == 1.0 and out["counts"]["Audio-Visual/Location"] == 1
    assert normalize_answer("  More_than  TEN ") == "more than ten"
    with pytest.raises(ValueError):
        avqa_accuracy(preds[:2], gts, types)


def test_choice_accuracy_and_unparseable():
    assert choice_accuracy([0, 1, None, 3], [0, 1, 2, 2])["accuracy"] == 0.5
    assert choice_accuracy([], [])["accuracy"] == 0.0


def test_classification_accuracy_uar_war():
    out = classification_scores(["happy", "happy", "happy", "happy"], ["happy", "happy", "happy", "sad"])
    assert out["accuracy"] == 0.75 and out["war"] == pytest.approx(0.75)
    assert out["uar"] == pytest.approx(0.5)  # recall 1.0 (happy) and 0.0 (sad)
    tie = classification_scores(["a", None, "B"], ["a", "b", "b"])
    assert tie["accuracy"] == pytest.approx(2 / 3) and tie["per_class_recall"] == {"a": 1.0, "b": 0.5}
    assert classification_scores(["x", "y"], ["x", "y"])["uar"] == 1.0


def test_classification_shuffled_near_chance():
    rng = random.Random(4)
    gts = [f"class {rng.randint(0, 9)}" for _ in range(2000)]
    shuffled = gts[:]
    rng.shuffle(shuffled)
    out = classification_scores(shuffled, gts)
    assert classification_scores(gts, gts)["accuracy"] == 1.0
    assert abs(out["accuracy"] - 0.1) < 0.03 and abs(out["uar"] - 0.1) < 0.03


# ------------------------------------------------------------------ masks (AVSBench, Ref-AVS): test_eval_seg_reference.py


def test_box_fill_and_masker_choice(monkeypatch):
    mask = fill_boxes([{"box": [0, 0, 0, 0]}, {"box": [2, 1, 3, 5]}, {"label": "no box"}], (8, 6))
    assert mask.shape == (6, 8) and mask.sum() == 1 + 2 * 5 and mask[0, 0] and mask[5, 3]
    assert fill_boxes([{"box": [5, 5, 50, 50]}], (8, 8)).sum() == 9  # clipped to the frame
    monkeypatch.delenv("AVUIE_SAM2_CHECKPOINT", raising=False)
    masker = make_masker("auto")
    assert isinstance(masker, BoxFillMasker) and masker.name == "box_fill" and "sam2" in masker.reason.lower()
    with pytest.raises(ValueError, match="SAM2"):
        make_masker("sam2")
    with pytest.raises(ValueError, match="unknown"):
        make_masker("magic")


# ------------------------------------------------------------------ boxes (arig)


def test_box_iou_and_grounding_hand_computed():
    assert box_iou([0, 0, 9, 9], [0, 0, 9, 9]) == 1.0
    assert box_iou([0, 0, 9, 9], [5, 0, 14, 9]) == pytest.approx(50 / 150)  # inclusive pixels
    assert box_iou([0, 0, 9, 9], [20, 20, 30, 30]) == 0.0 and box_iou(None, [0, 0, 1, 1]) == 0.0
    assert box_iou([3, 3, 3, 3], [3, 3, 3, 3]) == 1.0  # a one-pixel box
    out = grounding_scores([[0, 0, 9, 9], [0, 0, 9, 9]], [[0, 0, 9, 9], [0, 0, 9, 19]])
    assert out["mean_iou"] == pytest.approx(0.75) and out["acc@0.5"] == 1.0
    assert out["auc"] == pytest.approx(0.5 + 0.0375 + 0.225)  # success 1 up to 0.5, 0.5 after
    assert grounding_scores([[0, 0, 5, 5]], [[0, 0, 5, 5]])["auc"] == pytest.approx(1.0)
    miss = grounding_scores([None, None], [[0, 0, 5, 5], [1, 1, 2, 2]])
    assert miss["acc@0.5"] == 0.0 and miss["auc"] == pytest.approx(0.025)  # IoU >= 0 always holds


def test_grounding_shuffled_boxes_score_low():
    rng = random.Random(9)
    boxes = []
    for _ in range(200):
        x, y = rng.randint(0, 150), rng.randint(0, 150)
        boxes.append([x, y, x + rng.randint(10, 70), y + rng.randint(10, 70)])
    assert grounding_scores(boxes, boxes)["acc@0.5"] == 1.0
    assert grounding_scores(boxes[1:] + boxes[:1], boxes)["acc@0.5"] < 0.1


# ------------------------------------------------------------------ captions


def test_bleu_hand_computed():
    hyp, ref = "The cat sat on the mat.", "the cat is on the mat"
    scores = bleu([hyp], [[ref]])
    assert scores[0] == pytest.approx(5 / 6) and scores[1] == pytest.approx(math.sqrt(5 / 6 * 3 / 5))
    assert scores[2] == pytest.approx(0.5)  # (5/6 * 3/5 * 1/4) ** (1/3)
    assert scores[3] < 1e-3  # no 4-gram matches
    short = bleu(["the cat"], [["the cat sat on the mat"]])
    assert short[0] == pytest.approx(math.exp(1 - 6 / 2))  # brevity penalty
    closest = bleu(["a b c"], [["a b c d e f g", "a b c"]])  # the closest reference length is used
    assert closest[0] == pytest.approx(1.0)
    assert bleu(["a dog barks loudly here"], [["a dog barks loudly here"]])[3] == pytest.approx(1.0)
    assert bleu([None], [["a dog barks"]])[0] < 1e-6


def test_rouge_l_and_cider_hand_computed():
    assert rouge_l(["the cat sat on the mat"], [["the cat is on the mat"]]) == pytest.approx(5 / 6)
    assert rouge_l([""], [["a b"]]) == 0.0
    assert rouge_l(["a b"], [["x y", "a b"]]) == 1.0  # best over references
    # two documents: every n-gram has idf ln 2; unigrams and bigrams match exactly, no 3/4-grams -> 10 * 2/4
    assert cider(["a b", "c d"], [["a b"], ["c d"]]) == pytest.approx(5.0)
    assert cider(["a b"], [["a b"]]) == 0.0  # one document: idf 0
    assert tokenize("A man, singing!") == ["a", "man", "singing"]
    with pytest.raises(ValueError):
        bleu(["a"], [[]])


def test_caption_perfect_and_shuffled():
    rng = random.Random(3)
    words = (
        "dog cat man woman guitar piano sings plays barks runs street stage loudly softly while a the".split()
    )
    refs = [[" ".join(rng.choice(words) for _ in range(rng.randint(6, 12)))] for _ in range(60)]
    hyps = [r[0] for r in refs]
    perfect = caption_scores(
        hyps, refs, meteor_mode="off"
    )  # METEOR (Java): tests/test_eval_caption_reference.py
    assert perfect["BLEU-4"] == pytest.approx(1.0) and perfect["ROUGE-L"] == 1.0
    assert perfect["CIDEr"] == pytest.approx(10.0, abs=0.01)
    shuffled = caption_scores(hyps[1:] + hyps[:1], refs, meteor_mode="off")
    assert shuffled["BLEU-4"] < 0.1 and shuffled["CIDEr"] < 1.0 and shuffled["ROUGE-L"] < 0.5
    assert caption_scores([None] * 60, refs, meteor_mode="off")["CIDEr"] == 0.0
