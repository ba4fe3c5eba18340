"""Responses shuffled across samples score near chance through the whole scoring path (parse, then metric).

Each test renders every sample's correct answer, checks that those score perfectly, then gives sample i the
answer of sample perm(i) (a seeded permutation). Perfect scores here would mean the metric compares a
prediction with itself or with its own sample's response; the bands are a few standard deviations wide (400
samples), and the seeds are fixed, so the outcome is deterministic.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from avuie.schemas import MatchingTarget, MultipleChoiceTarget, ObjectGroup, SegmentationTarget, render_answer
from avuie.schemas.vocab import AVS_CLASSES

from avuie.eval.masks import make_masker
from avuie.eval.reading import GroundTruth
from avuie.eval.runner import score_task

N = 400
OPTIONS = ["cat", "dog", "car", "bird"]


def ground_truth(source: str, i: int, target, masks: dict | None = None) -> GroundTruth:
    family = {"avqa_thu": "question_answering", "s4": "segmentation", "ms3": "segmentation"}
    return GroundTruth(id=f"{source}/test/{i}", source=source, family=family.get(source, "cross_modal_matching"),
                       split="test", target=target, masks=masks or {})  # fmt: skip


def shuffled(responses: list[str], seed: int) -> list[str]:
    """The responses in a seeded random order that moves (almost) every one to another sample."""
    order = list(range(len(responses)))
    random.Random(seed).shuffle(order)
    assert sum(i == j for i, j in enumerate(order)) < len(order) // 50
    return [responses[j] for j in order]


def score(items: list[GroundTruth], responses: list[str], masker=None) -> dict:
    result = score_task(items, responses, masker)
    assert result["n"] == len(items) and result["n_unparseable"] == 0
    return result


def test_avqa_thu_shuffled_choices_score_near_a_quarter():
    rng = random.Random(11)
    items = [
        ground_truth(
            "avqa_thu",
            i,
            MultipleChoiceTarget(question=f"Which one, {i}?", options=OPTIONS, answer_index=rng.randrange(4)),
        )  # fmt: skip
        for i in range(N)
    ]
    responses = [render_answer(it.target) for it in items]
    assert score(items, responses)["primary"]["value"] == 1.0
    result = score(items, shuffled(responses, seed=12))
    assert result["primary"]["metric"] == "accuracy"
    assert 0.18 <= result["primary"]["value"] <= 0.32, result["metrics"]


@pytest.mark.parametrize("direction", ["a2v", "v2a"])
def test_matching_shuffled_candidates_score_near_a_half(direction):
    rng = random.Random(21)
    items = []
    for i in range(N):
        query, other = rng.sample(["dog", "cat", "piano", "car", "baby"], 2)
        answer = rng.randrange(2)
        labels = (query, other) if answer == 0 else (other, query)
        target = MatchingTarget(
            direction=direction, answer_index=answer, query_label=query, candidate_labels=labels
        )
        items.append(ground_truth(direction, i, target))
    responses = [render_answer(it.target) for it in items]
    assert score(items, responses)["primary"]["value"] == 1.0
    result = score(items, shuffled(responses, seed=22))
    assert 0.42 <= result["primary"]["value"] <= 0.58, result["metrics"]


def random_group(rng: random.Random, number: int) -> tuple[ObjectGroup, np.ndarray]:
    """A sounding object at a random place of a 224x224 frame, and its ground-truth mask (its box, filled)."""
    w, h = rng.randint(30, 90), rng.randint(30, 90)
    x1, y1 = rng.randint(0, 223 - w), rng.randint(0, 223 - h)
    x2, y2 = x1 + w, y1 + h
    mask = np.zeros((224, 224), dtype=bool)
    mask[y1 : y2 + 1, x1 : x2 + 1] = True
    points = [(x1 + 1, y1 + 1), ((x1 + x2) // 2, (y1 + y2) // 2), (x2 - 1, y2 - 1)]
    group = ObjectGroup(
        label=rng.choice(AVS_CLASSES), box=(x1, y1, x2, y2), points=points, mask=f"mask_{number}.png"
    )
    return group, mask


@pytest.mark.parametrize(("source", "objects"), [("s4", 1), ("ms3", 2)])
def test_segmentation_shuffled_masks_score_far_below_perfect(source, objects):
    rng = random.Random(31 + objects)
    items = []
    for i in range(N):
        drawn = [random_group(rng, j) for j in range(objects)]
        target = SegmentationTarget(groups=[group for group, _ in drawn])
        items.append(ground_truth(source, i, target, {group.mask: mask for group, mask in drawn}))
    responses = [render_answer(it.target, "tags") for it in items]  # one box per object: box fill is exact
    masker = make_masker("box")
    perfect = score(items, responses, masker)["metrics"]
    assert perfect["mIoU"] == pytest.approx(1.0) and perfect["F"] == pytest.approx(1.0)
    metrics = score(items, shuffled(responses, seed=32), masker)["metrics"]
    # Random boxes of another object overlap the truth a little: mIoU far from 1 but above the empty mask's 0.
    assert 0.005 < metrics["mIoU"] < 0.2, metrics
    assert metrics["F"] < 0.3 and metrics["n"] == N and metrics["n_empty_gt"] == 0
