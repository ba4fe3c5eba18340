"""Checking a reasoning reply against its sample: the rule every model (or human) chain must pass.

A reply passes when its final answer (in any answer style, `schemas/answers.py`) says what the sample's
ground-truth answer says, the reasoning before it holds no answer tags and no answer syntax (times, boxes,
points that Crab+'s readers would take for the answer), does not conclude with another class of the dataset,
and its length is inside the bounds. A chain that passes but mentions other classes of the dataset is `flagged`
for human review. Every step is linear in the reply's length (tags are scanned in one pass, the class-name scans
run only on a reasoning within the length bound).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from avuie.reasoning.prompts import GROUND_TRUTH_LINE
from avuie.schemas import DEFAULT_STYLE, AnswerParseError, answer_style, same_answer, split_reply
from avuie.schemas.scan import TAG_NAMES, elements, tags
from avuie.schemas.targets import TARGET_TYPES, target_labels
from avuie.schemas.vocab import vocabulary

_CONCLUSION = (
    r"(?:answer|correct option|the (?:event|events|emotion|action|class|sounding object|object|source|"
    r"instrument|matching video|matching audio|match))\s*(?:is|are|would be|:)\s*(?:a |an |the )?[\"']?"
)
# Answer syntax of the Crab+ style that may not appear in the reasoning, per target kind: it would be read as
# the answer (Crab+'s SAM2 step takes the first box anywhere in the text).
_CRAB_SYNTAX = {
    "single_event": re.compile(r"start[_ ]time\s{0,20}:", re.IGNORECASE),
    "dense_events": re.compile(r"start[_ ]time\s{0,20}:", re.IGNORECASE),
    "segmentation": re.compile(r"\[\d+,\d+(?:,\d+,\d+)?\]"),  # inference_3.py's own pattern
    "referring_segmentation": re.compile(r"\[\d+,\d+(?:,\d+,\d+)?\]"),
    "grounding": re.compile(r"\(\s*\d+\s*,\s*\d+\s*\)\s*(?:,\s*)?\(\s*\d+\s*,\s*\d+\s*\)"),
}
# Sources whose class names are everyday words ("one", "left", "yes"): mentions are not flagged.
NO_FLAG_SOURCES = {"avqa"}


@dataclass(frozen=True)
class CheckSettings:
    """Length bounds of the reasoning part (characters, without the final answer)."""

    min_chars: int = 40
    max_chars: int = 2000


@dataclass
class CheckResult:
    """The outcome: `ok`, a short `reason` code and `detail` when not ok, the reasoning part, and `flagged`."""

    ok: bool
    reasoning: str = ""
    reason: str | None = None
    detail: str = ""
    flagged: bool = False


def target_of(sample: dict[str, Any]) -> Any:
    """The typed target of a sample dict."""
    target = sample["target"]
    return TARGET_TYPES[target["kind"]].model_validate(target)


def other_classes(sample: dict[str, Any], target: Any) -> list[str]:
    """Class names of the sample's dataset (or options/candidates) that are not the right answer."""
    kind = target.kind
    if kind == "multiple_choice":
        return [o for i, o in enumerate(target.options) if i != target.answer_index]
    if kind == "matching":
        noun = "video" if target.direction == "a2v" else "audio"
        return [f"{noun} {2 - target.answer_index}"]
    if kind == "referring_segmentation":
        right = {g.label for g in target.groups}
        others = [c for c in vocabulary(sample.get("source", "")) or () if c not in right]
        return others + (["false"] if target.present else ["true"])
    right = [label.lower() for label in target_labels(target)]
    vocab = vocabulary(sample.get("source", "")) or ()
    return [c for c in vocab if c.lower() not in right and not any(c.lower() in r for r in right)]


def _mentions(text: str, name: str, prefix: str = "") -> bool:
    words = r"[\s_]+".join(re.escape(w) for w in re.split(r"[\s_]+", name.strip()))
    return re.search(rf"{prefix}\b{words}\b", text, re.IGNORECASE) is not None


def _answer_result(text: str, sample: dict[str, Any], target: Any) -> CheckResult:
    """Split off the final answer and compare it with the ground truth (ok=True: the answer is right)."""
    source = sample.get("source")
    style = answer_style(sample.get("answer", ""), target, source) or DEFAULT_STYLE
    reasoning, tail = split_reply(text.rstrip(), target.kind)
    if not tail:
        return CheckResult(False, reasoning, "no_answer_tag", "the reply does not end in a final answer")
    try:
        right = same_answer(tail, target, source, style)
    except AnswerParseError as exc:
        return CheckResult(False, reasoning, "unparsable_answer", f"the final answer cannot be read: {exc}")
    if not right:
        shown = tail if len(tail) <= 200 else tail[:200] + "..."
        return CheckResult(
            False, reasoning, "wrong_answer", f"the final answer {shown!r} is not the ground truth"
        )
    return CheckResult(True, reasoning)


def _syntax_result(reasoning: str, others: list[str], kind: str) -> CheckResult | None:
    """A failure when the reasoning holds answer tags (naming another class, or any) or answer syntax."""
    for el in elements(reasoning, TAG_NAMES):
        inner = el.content(reasoning)
        named = [c for c in others if _mentions(inner, c)]
        if named:
            return CheckResult(
                False, reasoning, "names_other_class", f"a tag before the answer names {named[0]!r}"
            )
    if next(tags(reasoning), None) is not None:
        return CheckResult(
            False, reasoning, "tags_in_reasoning", "answer tags appear before the final answer"
        )
    syntax = _CRAB_SYNTAX.get(kind)
    if syntax is not None and syntax.search(reasoning):
        return CheckResult(
            False,
            reasoning,
            "tags_in_reasoning",
            "answer syntax (times, boxes, points) appears before the answer",
        )
    return None


def check_reply(text: str, sample: dict[str, Any], settings: CheckSettings = CheckSettings()) -> CheckResult:
    """Check one reply against a sample dict (with `target`, `answer`, `source`); never raises for bad replies.

    Every step is linear in the reply's length; the class-name scans run only on a reasoning within the length
    bound.
    """
    if not isinstance(text, str) or not text.strip():
        return CheckResult(False, reason="empty", detail="the reply is empty")
    target = target_of(sample)
    result = _answer_result(text, sample, target)
    if not result.ok:
        return result
    reasoning = result.reasoning
    if len(reasoning) > settings.max_chars:
        return CheckResult(False, reasoning, "too_long", f"the reasoning has {len(reasoning)} characters")
    others = other_classes(sample, target)
    failed = _syntax_result(reasoning, others, target.kind)
    if failed is not None:
        return failed
    for name in others:
        if _mentions(reasoning, name, prefix=_CONCLUSION):
            return CheckResult(
                False, reasoning, "names_other_class", f"the reasoning concludes with {name!r}"
            )
    if len(reasoning) < settings.min_chars:
        return CheckResult(False, reasoning, "too_short", f"the reasoning has {len(reasoning)} characters")
    flagged = sample.get("source") not in NO_FLAG_SOURCES and any(
        _mentions(reasoning, c) for c in others if len(c) > 3
    )
    return CheckResult(True, reasoning, flagged=flagged)


def check_human_chain(
    reasoning: str, sample: dict[str, Any], settings: CheckSettings = CheckSettings()
) -> CheckResult:
    """Check an edited reasoning (with or without the final answer at its end) as if the model had written it."""
    target = target_of(sample)
    _, tail = split_reply(reasoning, target.kind)
    return check_reply(reasoning if tail else f"{reasoning.rstrip()} {sample['answer']}", sample, settings)


def corrective_message(result: CheckResult, answer: str, settings: CheckSettings = CheckSettings()) -> str:
    """The user message sent after a failed check: what was wrong, the rules, and the answer to end with."""
    return (
        f"Your reply did not pass the check: {result.detail}. Write it again: {settings.min_chars} to "
        f"{settings.max_chars} characters of reasoning that tie what is seen to what is heard, no tags before "
        "the final answer, no other class named as the answer, and end with the ground-truth answer exactly "
        "as given, tags and punctuation included, with nothing after it.\n"
        + GROUND_TRUTH_LINE.format(answer=answer)
    )
