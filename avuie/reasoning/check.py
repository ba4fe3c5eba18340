"""Checking a reasoning reply against its sample: the rule every model (or human) chain must pass.

A reply passes when it ends in a tagged answer that parses to the sample's target, the reasoning before it uses no
answer tags, does not conclude with another class of the dataset, and its length is inside the bounds. A chain
that passes but mentions other classes of the dataset is `flagged` for human review.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from avuie.reasoning.prompts import GROUND_TRUTH_LINE
from avuie.schemas.tags import TAG_NAMES, AnswerParseError, parse_answer, render_answer
from avuie.schemas.targets import TARGET_TYPES, target_labels
from avuie.schemas.vocab import vocabulary

_TAGS = "|".join(TAG_NAMES)
_CLOSE_AT_END = re.compile(rf"<\s*/\s*({_TAGS})\s*>$", re.IGNORECASE)
_ANY_TAG = re.compile(rf"<\s*/?\s*({_TAGS})\s*>", re.IGNORECASE)
_TAGGED = re.compile(rf"<\s*({_TAGS})\s*>(.*?)<\s*/\s*\1\s*>", re.IGNORECASE | re.DOTALL)
_CONCLUSION = (
    r"(?:answer|correct option|the (?:event|events|emotion|action|class|sounding object|object|source|"
    r"instrument|matching video|matching audio|match))\s*(?:is|are|would be|:)\s*(?:a |an |the )?[\"']?"
)
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


def split_answer(text: str) -> tuple[str, str]:
    """Split a reply into (reasoning, tagged tail): the tail is the run of tagged elements it ends with."""
    rest = text.rstrip().rstrip(".").rstrip()
    cut = len(rest)
    while True:
        close = _CLOSE_AT_END.search(rest[:cut])
        if not close:
            break
        name = close.group(1)
        opens = list(re.finditer(rf"<\s*{name}\s*>", rest[: close.start()], re.IGNORECASE))
        if not opens:
            break
        cut = opens[-1].start()
        while cut > 0 and rest[cut - 1] in " \t\n,;":
            cut -= 1
    return rest[:cut].strip(), rest[cut:].strip()


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


def as_answered(target: Any, source: str | None) -> dict[str, Any]:
    """The target as its own rendered answer reads back (UnAV times at the answer's one decimal), as JSON."""
    try:
        return parse_answer(render_answer(target), like=target, source=source).model_dump(mode="json")
    except AnswerParseError:
        return target.model_dump(mode="json")


def check_reply(text: str, sample: dict[str, Any], settings: CheckSettings = CheckSettings()) -> CheckResult:
    """Check one reply against a sample dict (with `target`, `answer`, `source`); never raises for bad replies."""
    if not isinstance(text, str) or not text.strip():
        return CheckResult(False, reason="empty", detail="the reply is empty")
    target = target_of(sample)
    reasoning, tail = split_answer(text)
    if not tail:
        return CheckResult(False, reasoning, "no_answer_tag", "the reply does not end in a tagged answer")
    source = sample.get("source")
    try:
        parsed = parse_answer(tail, like=target, source=source)
    except AnswerParseError as exc:
        try:  # it reads, but breaks the target's constraints: a wrong answer, not an unreadable one
            parse_answer(tail, like=target, source=source, validate=False)
        except AnswerParseError:
            return CheckResult(
                False, reasoning, "unparsable_answer", f"the final answer cannot be read: {exc}"
            )
        parsed = None
    if parsed is None or parsed.model_dump(mode="json") != as_answered(target, source):
        return CheckResult(
            False, reasoning, "wrong_answer", f"the final answer {tail!r} is not the ground truth"
        )
    others = other_classes(sample, target)
    for _, inner in _TAGGED.findall(reasoning):
        named = [c for c in others if _mentions(inner, c)]
        if named:
            return CheckResult(
                False, reasoning, "names_other_class", f"a tag before the answer names {named[0]!r}"
            )
    if _ANY_TAG.search(reasoning):
        return CheckResult(
            False, reasoning, "tags_in_reasoning", "answer tags appear before the final answer"
        )
    for name in others:
        if _mentions(reasoning, name, prefix=_CONCLUSION):
            return CheckResult(
                False, reasoning, "names_other_class", f"the reasoning concludes with {name!r}"
            )
    if len(reasoning) < settings.min_chars:
        return CheckResult(False, reasoning, "too_short", f"the reasoning has {len(reasoning)} characters")
    if len(reasoning) > settings.max_chars:
        return CheckResult(False, reasoning, "too_long", f"the reasoning has {len(reasoning)} characters")
    flagged = sample.get("source") not in NO_FLAG_SOURCES and any(
        _mentions(reasoning, c) for c in others if len(c) > 3
    )
    return CheckResult(True, reasoning, flagged=flagged)


def check_human_chain(
    reasoning: str, sample: dict[str, Any], settings: CheckSettings = CheckSettings()
) -> CheckResult:
    """Check an edited reasoning (with or without the final answer at its end) as if the model had written it."""
    _, tail = split_answer(reasoning)
    return check_reply(reasoning if tail else f"{reasoning.rstrip()} {sample['answer']}", sample, settings)


def corrective_message(result: CheckResult, answer: str, settings: CheckSettings = CheckSettings()) -> str:
    """The user message sent after a failed check: what was wrong, the rules, and the answer to end with."""
    return (
        f"Your reply did not pass the check: {result.detail}. Write it again: {settings.min_chars} to "
        f"{settings.max_chars} characters of reasoning that tie what is seen to what is heard, no tags before "
        "the final answer, no other class named as the answer, and end with the ground-truth answer exactly "
        "as given, tags included, with nothing after it.\n" + GROUND_TRUTH_LINE.format(answer=answer)
    )
