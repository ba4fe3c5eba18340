"""The reasoning seam: the build pipeline hands drafts (samples without reasoning) to an engine in batches.

`TemplateEngine` (deterministic, offline) is the default; the OpenAI-compatible engine implements the same
interface. An engine returns one `ReasoningResult` per draft, in order, and never raises for one bad sample:
it falls back to the template and says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Draft:
    """A sample without its reasoning.

    `sample` holds the Sample fields as JSON-ready dict (id, source, family, split, media, instruction, target,
    answer, ...) but not reasoning/response/reasoning_info. `media_files` maps tar member names (e.g.
    "frame_00.jpg", "audio.wav") to bytes. `context` is the builder's free dict (question, options, expression...).
    """

    sample: dict[str, Any]
    media_files: dict[str, bytes] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReasoningResult:
    """The reasoning text (without the final answer) and how it was made (the ReasoningInfo fields)."""

    reasoning: str
    info: dict[str, Any]


class ReasoningEngine(Protocol):
    """What the pipeline needs from a reasoning generator."""

    def generate(self, drafts: list[Draft]) -> list[ReasoningResult]:
        """Return one result per draft, in the same order."""
        ...

    def stats(self) -> dict[str, Any]:
        """Totals so far (requests, tokens, fallbacks by reason...), merged into stats.json."""
        ...

    def close(self) -> None:
        """Release clients and caches."""
        ...


class TemplateEngine:
    """The deterministic offline engine: `avuie.reasoning.template.template_reasoning` for every draft."""

    def __init__(self) -> None:
        self._count = 0

    def generate(self, drafts: list[Draft]) -> list[ReasoningResult]:
        """Write the template chain of each draft."""
        from avuie.reasoning.template import TEMPLATE_VERSION, template_reasoning

        self._count += len(drafts)
        return [
            ReasoningResult(
                reasoning=template_reasoning(d.sample, d.context),
                info={"kind": "template", "prompt_version": TEMPLATE_VERSION, "checked": True, "attempts": 0},
            )
            for d in drafts
        ]

    def stats(self) -> dict[str, Any]:
        """Number of template chains written."""
        return {"engine": "template", "samples": self._count}

    def close(self) -> None:
        """Nothing to release."""
