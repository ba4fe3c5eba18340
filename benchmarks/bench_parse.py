"""Answer parsing speed: avuie.schemas.parse_answer against the plain regex parser a user would write.

The baseline reads tags the usual way, `re.findall(r"<\\s*name\\s*>(.*?)<\\s*/\\s*name\\s*>", text, re.I | re.S)`
(what avuie's own parser did before): fast on ordinary replies, quadratic on a reply full of opening tags that
never close. Prints the median seconds of each over ordinary replies (every kind, both styles) and over tag spam
of growing size, and the ratio baseline / avuie (> 1: avuie is faster).

Run: `flock /work/locks/heavy.lock python benchmarks/bench_parse.py` (a minute or two).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable

from avuie.schemas import STYLES, AnswerParseError, parse_answer, render_answer
from avuie.schemas.tags import ANSWER_TAGS
from avuie.schemas.wordings import EXAMPLE_TARGETS, example_target

REPEAT = 5


def regex_tags(text: str, name: str) -> list[str]:
    """The baseline's tag reading: a lazy regex per tag name."""
    pattern = rf"<\s*{name}\s*>(.*?)<\s*/\s*{name}\s*>"
    return re.findall(pattern, text, flags=re.IGNORECASE | re.DOTALL)


def regex_parse(text: str) -> list[str]:
    """The baseline parser's work on one reply for every target kind: the kind's tags read with the lazy regex."""
    found: list[str] = []
    for kind in EXAMPLE_TARGETS:
        for name in ANSWER_TAGS.get(kind, ("answer",)):
            found += regex_tags(text, name)
    return found


def avuie_parse(text: str) -> None:
    """avuie's reading of the same reply for every target kind (answer or AnswerParseError)."""
    for kind in EXAMPLE_TARGETS:
        try:
            parse_answer(text, like=example_target(kind))
        except AnswerParseError:
            pass


def median_seconds(fn: Callable[[str], object], texts: list[str]) -> float:
    """The median over REPEAT runs of the seconds `fn` takes over all texts."""
    runs = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        for text in texts:
            fn(text)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    """Print the medians and ratios."""
    ordinary = [
        f"I look and listen; the evidence agrees. So the answer is {render_answer(example_target(k), s, 'meld')}"
        for k in EXAMPLE_TARGETS
        for s in STYLES
    ] * 20
    print(f"{'input':<34} {'regex s':>10} {'avuie s':>10} {'regex/avuie':>12}")
    rows = [("ordinary replies (22 x 20)", ordinary)]
    rows += [(f"tag spam, {n:,} open tags", ["<answer>" * n + "x"]) for n in (1_000, 2_000, 4_000, 8_000)]
    for label, texts in rows:
        base, ours = median_seconds(regex_parse, texts), median_seconds(avuie_parse, texts)
        print(f"{label:<34} {base:>10.4f} {ours:>10.4f} {base / ours:>12.2f}")
    print("(both read every reply for all 11 target kinds; avuie also validates and reads the Crab+ style)")


if __name__ == "__main__":
    main()
