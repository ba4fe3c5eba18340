"""Reply checks and prompt files: what passes, what fails and why, and the worked examples of every family."""

from __future__ import annotations

import re

import pytest
from avuie.schemas import STYLES, TARGET_TYPES, TaskFamily, render_answer

from avuie.reasoning.check import (
    CheckSettings,
    check_human_chain,
    check_reply,
    corrective_message,
)
from avuie.reasoning.prompts import PROMPT_DIR, MediaSettings, build_messages, load_prompt, parse_prompt
from tests.reasoning_kit import ave_draft

WHY = "The frames show the source in view while its sound is heard in the same seconds, so the two agree."


def sample(source: str, target: dict) -> dict:
    return {
        "source": source,
        "target": target,
        "answer": render_answer(TARGET_TYPES[target["kind"]](**target), source=source),
    }


MELD = sample("meld", {"kind": "classification", "label": "joy", "original_label": "joy"})
A2V = sample(
    "a2v",
    {
        "kind": "matching",
        "direction": "a2v",
        "answer_index": 1,
        "query_label": "Bark",
        "candidate_labels": ["Cat", "Bark"],
    },
)
CHOICE = sample(
    "avqa_thu",
    {
        "kind": "multiple_choice",
        "question": "What sounds?",
        "options": ["a dog", "a cat", "a car", "a bell"],
        "answer_index": 2,
    },
)
GROUP = {
    "label": "dog",
    "box": [20, 96, 118, 210],
    "points": [[60, 150], [80, 130], [45, 190]],
    "mask": "mask_0.png",
}
S4 = sample("s4", {"kind": "segmentation", "groups": [GROUP]})


@pytest.mark.parametrize(
    ("s", "reply", "reason"),
    [
        (MELD, f"{WHY} So the answer is <answer>joy</answer>", None),
        (
            MELD,
            f"{WHY} So the answer is < Answer > Joy </answer>.",
            None,
        ),  # tolerant of spaces, case, a final dot
        (MELD, f"{WHY} So the answer is <answer>anger</answer>", "wrong_answer"),
        (MELD, f"{WHY} So the answer is joy.", "no_answer_tag"),
        (MELD, f"{WHY} The emotion is anger. So the answer is <answer>joy</answer>", "names_other_class"),
        (
            MELD,
            f"{WHY} First guess <answer>anger</answer>. So the answer is <answer>joy</answer>",
            "names_other_class",
        ),
        (MELD, f"{WHY} She smiles <answer>. So the answer is <answer>joy</answer>", "tags_in_reasoning"),
        (MELD, "Joyful. So the answer is <answer>joy</answer>", "too_short"),
        (MELD, "", "empty"),
        (A2V, f"{WHY} So the answer is <answer>video 2</answer>", None),
        (
            A2V,
            f"{WHY} The matching video is video 1. So the answer is <answer>video 2</answer>",
            "names_other_class",
        ),
        (A2V, f"{WHY} So the answer is <answer>video 1</answer>", "wrong_answer"),
        (CHOICE, f"{WHY} So the answer is <answer>a car</answer>", None),
        (
            CHOICE,
            f"{WHY} The correct option is a dog. So the answer is <answer>a car</answer>",
            "names_other_class",
        ),
        (CHOICE, f"{WHY} So the answer is <answer>a bell</answer>", "wrong_answer"),
        (S4, f"{WHY} So the answer is {S4['answer']}", None),
        (S4, f"{WHY} So the answer is {S4['answer'].replace('118', '119')}", "wrong_answer"),
        (S4, f"{WHY} So the answer is <obj>dog</obj>", "unparsable_answer"),
    ],
)
def test_check_reply(s, reply, reason):
    result = check_reply(reply, s)
    assert result.ok is (reason is None)
    assert result.reason == reason
    if result.ok:
        assert result.reasoning.endswith("So the answer is") and "<" not in result.reasoning


def test_length_bounds_and_flags():
    long = f"{WHY} " * 5 + "So the answer is <answer>joy</answer>"
    assert check_reply(long, MELD, CheckSettings(max_chars=100)).reason == "too_long"
    assert check_reply(long, MELD, CheckSettings(max_chars=1000)).ok
    mentions = f"{WHY} She is not showing anger or fear at all. So the answer is <answer>joy</answer>"
    result = check_reply(mentions, MELD)
    assert result.ok and result.flagged
    assert not check_reply(f"{WHY} So the answer is <answer>joy</answer>", MELD).flagged


def test_human_chains_are_checked_with_or_without_the_answer():
    assert check_human_chain(f"{WHY} So she is joyful.", MELD).ok
    assert check_human_chain(f"{WHY} So the answer is <answer>joy</answer>", MELD).ok
    assert check_human_chain(f"{WHY} So the answer is <answer>fear</answer>", MELD).reason == "wrong_answer"
    assert check_human_chain("Joy.", MELD).reason == "too_short"


def test_corrective_message_repeats_the_answer_and_the_reason():
    result = check_reply(f"{WHY} So the answer is <answer>anger</answer>", MELD)
    message = corrective_message(result, MELD["answer"])
    assert "not the ground truth" in message
    assert message.rstrip().endswith(
        "Ground-truth answer (end your reply with exactly this): <answer>joy</answer>."
    )


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("family", [f.value for f in TaskFamily])
def test_every_family_has_a_versioned_prompt_with_three_checked_examples(family, style):
    prompt = load_prompt(family, style)
    assert prompt.prompt_version == f"{family}/v2" and len(prompt.examples) == 3
    for request, reply in prompt.examples:
        truth = re.findall(r"^Ground-truth answer[^:]*: (.+)$", request, re.MULTILINE)[-1].strip()
        assert reply.endswith(truth), f"{family}: the worked reply must end in its ground truth"
        reasoning = reply[: -len(truth)].strip()
        assert "<" not in reasoning and "[" not in reasoning and 40 <= len(reasoning) <= 2000
        assert "annotation" not in reasoning.lower()
    assert "{answer}" in prompt.request and "{facts}" in prompt.request
    assert load_prompt(family, "tags").sha != load_prompt(family, "crab").sha


def test_prompt_files_are_validated(tmp_path):
    text = (PROMPT_DIR / "captioning.md").read_text()
    with pytest.raises(ValueError, match="version"):
        parse_prompt("captioning", text.replace("version: 2", "v2"))
    with pytest.raises(ValueError, match="three Examples"):
        parse_prompt("captioning", text.replace("# Example 3", "# Sample 3"))
    with pytest.raises(ValueError, match="Target"):
        parse_prompt("captioning", text.replace("## Target", "## Goal", 1))
    with pytest.raises(ValueError, match="final"):
        parse_prompt("captioning", text.replace("{final}", "So the answer is <answer>x</answer>", 1))
    with pytest.raises(ValueError, match="no prompt"):
        load_prompt("no_such_family")


def test_the_request_is_label_conditioned():
    draft = ave_draft(3)
    prompt, messages = build_messages(draft, MediaSettings())
    text = messages[-1]["content"][-1]["text"]
    assert text.endswith(f"Ground-truth answer (end your reply with exactly this): {draft.sample['answer']}")
    target = draft.sample["target"]
    assert (
        f"{target['label']}, both audible and visible from {target['start']} s to {target['end']} s" in text
    )
    assert "video: 2 frame(s) at 0.5, 1.5 s" in text and draft.sample["instruction"] in text


AVE = sample("ave", {"kind": "single_event", "label": "Bark", "start": 2, "end": 7})


@pytest.mark.parametrize(
    ("s", "reply", "reason"),
    [
        (AVE, f"{WHY} So the answer is event:Bark start_time:2 end_time:7", None),
        (AVE, f"{WHY} So the answer is event: bark  start_time: 2 end_time: 7.", None),
        (AVE, f"{WHY} So the answer is <event>Bark</event> <range>2,7</range>", None),  # the other style
        (AVE, f"{WHY} So the answer is event:Bark start_time:2 end_time:8", "wrong_answer"),
        (
            AVE,
            f"{WHY} Maybe start_time: 1. So the answer is event:Bark start_time:2 end_time:7",
            "tags_in_reasoning",
        ),
        (S4, f"{WHY} It is at [20,96,118,210]. {S4['answer']}", "tags_in_reasoning"),
        (S4, f"{WHY} It spans x 20 to 118. {S4['answer']}", None),
    ],
)
def test_check_reply_in_crab_style(s, reply, reason):
    result = check_reply(reply, s)
    assert result.reason == reason and result.ok is (reason is None)


def test_the_check_is_linear_in_a_hostile_reply():
    """A 140 KB tag-spam reply (quadratic before: 200 s on the event loop) is judged, in a generous bound."""
    import threading

    spam = "<event>" * 20_000 + "Bark" + "</range>" * 20_000
    results: list = []
    worker = threading.Thread(target=lambda: results.append(check_reply(spam + AVE["answer"], AVE)))
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive() and results[0].reason == "too_long"


def test_worked_examples_follow_the_style_of_the_drafts_answer():
    from avuie.schemas import SingleEventTarget

    draft = ave_draft(3)
    crab_prompt, crab_messages = build_messages(draft, MediaSettings())
    target = SingleEventTarget.model_validate(draft.sample["target"])
    draft.sample["answer"] = render_answer(target, "tags", "ave")
    tags_prompt, tags_messages = build_messages(draft, MediaSettings())
    assert "start_time:" in crab_messages[2]["content"] and "<range>" in tags_messages[2]["content"]
    assert crab_prompt.sha != tags_prompt.sha
