"""Fuzz: a time-boxed run of hostile inputs at every parser, reporting what it found.

Three parts share the time (60 / 15 / 25 %):

- `parse_answer` for every target kind: hypothesis-built responses (tag fragments, labels, huge and odd numbers,
  random Unicode) and random mutations of each kind's rendered answer (tag spam, digit floods, cuts, repeats),
  each read with and without the target's constraints;
- `read_predictions` on random prediction files (random bytes, random JSON, BOMs, deep nesting, long lines);
- `avuie eval` end to end (`evaluate`) on a small build of every target kind with hostile prediction files.

A finding is an exception other than the parser's own `AnswerParseError` (for `read_predictions`: any exception;
for `evaluate`: any exception, a task that reports an "error", or a response the parser failed on), and a
`parse_answer` call slower than `--slow` seconds. Findings are grouped by (part, kind, exception) with one
example input each.

Run: ``flock /work/locks/heavy.lock python benchmarks/fuzz_parsers.py --minutes 10 [--seed 0] [--slow 1.0]``.
Exits 1 when something was found, else 0.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avuie.schemas import AnswerParseError, parse_answer, render_answer  # noqa: E402
from avuie.schemas.tags import TAG_NAMES  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hyp_seed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from avuie.eval.reading import read_predictions  # noqa: E402
from avuie.eval.runner import evaluate  # noqa: E402
from tests.evalkit import FAMILY, target, write_build  # noqa: E402

try:  # every answer style the parser reads (a single, unnamed style before answer styles existed)
    from avuie.schemas import STYLES  # noqa: E402
except ImportError:
    STYLES = (None,)

NUMBERS = ["0", "-1", "1e400", "-1e400", "nan", "inf", "1" * 5000, "9" * 50, "0.0000001", "1.5", "-0", "1_000",
           "٣", "١٢", "0x10", "1e-400", "00007", "3.", ".5"]  # fmt: skip
LABELS = ["dog", "Speech", "dog barking", "true", "false", "video 1", "audio 2", "", " ", "a" * 300, "<", "&lt;",
          "none", "nothing", "event:", "start_time:", "end_time:", "(", ")", ":"]  # fmt: skip


class Findings:
    """Unique findings (part, kind, exception) with a count and one example, and per-part case counts."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str, str], dict] = {}
        self.cases: Counter = Counter()
        self.slowest: dict[str, float] = {}

    def case(self, part: str, kind: str, seconds: float) -> None:
        """Count one case of `part`/`kind` and keep its slowest time."""
        self.cases[(part, kind)] += 1
        self.slowest[part] = max(self.slowest.get(part, 0.0), seconds)

    def add(self, part: str, kind: str, what: str, example: object) -> None:
        """Record one finding (the first example of each (part, kind, what) is kept)."""
        entry = self.seen.setdefault((part, kind, what), {"count": 0, "example": repr(example)[:300]})
        entry["count"] += 1


def like_targets() -> dict[str, tuple[str, object, str]]:
    """Per target kind and answer style, "kind/style": (source, ground-truth target, its rendered answer)."""
    out: dict[str, tuple[str, object, str]] = {}
    for source in FAMILY:
        t = target(source, 1)
        for style in STYLES:
            answer = render_answer(t) if style is None else render_answer(t, style, source)
            out.setdefault(t.kind if style is None else f"{t.kind}/{style}", (source, t, answer))
    return out


def check_parse(found: Findings, kind: str, source: str, like: object, text: str, slow: float) -> None:
    """Parse `text` as an answer to `like` (with and without constraints) and record what went wrong."""
    for validate in (True, False):
        start = time.perf_counter()
        try:
            parse_answer(text, like=like, source=source, validate=validate)
        except AnswerParseError:
            pass
        except Exception as exc:  # noqa: BLE001 - a finding, not a crash of the fuzzer
            found.add("parse_answer", kind, f"{type(exc).__name__}: {str(exc)[:80]}", text)
        seconds = time.perf_counter() - start
        found.case("parse_answer", kind, seconds)
        if seconds > slow:
            found.add("parse_answer", kind, f"slower than {slow} s ({len(text)} chars)", text[:200])


def fragments() -> st.SearchStrategy[str]:
    """Pieces of answers: tags (any case, spaced), numbers, labels, punctuation and random text."""
    tags = st.sampled_from(TAG_NAMES).flatmap(
        lambda n: st.sampled_from([f"<{n}>", f"</{n}>", f"< {n.upper()} >", f"</ {n}>", f"<{n}", f"{n}>"])
    )
    return st.one_of(tags, st.sampled_from(NUMBERS), st.sampled_from(LABELS),
                     st.sampled_from(list("[](),; \n\t")), st.text(max_size=8))  # fmt: skip


def mutate(rng: random.Random, text: str) -> str:
    """A random hostile change of a rendered answer (repeat, flood, cut, insert)."""
    for _ in range(rng.randint(1, 4)):
        op, i = rng.randrange(6), rng.randint(0, len(text))
        if op == 0:  # repeat a slice many times
            j = rng.randint(i, min(len(text), i + 40))
            text = text[:i] + text[i:j] * rng.choice([2, 100, 3000]) + text[j:]
        elif op == 1:  # a digit flood or odd number
            text = text[:i] + rng.choice(NUMBERS + ["9" * rng.choice([400, 4400, 20000])]) + text[i:]
        elif op == 2:  # cut
            text = text[:i] + text[rng.randint(i, len(text)) :]
        elif op == 3:  # a tag or tag spam
            tag = rng.choice([f"<{n}>" for n in TAG_NAMES] + [f"</{n}>" for n in TAG_NAMES])
            text = text[:i] + tag * rng.choice([1, 50, 8000]) + text[i:]
        elif op == 4:  # random code points, surrogates and controls included
            text = (
                text[:i] + "".join(chr(rng.randrange(0x110000)) for _ in range(rng.randint(1, 20))) + text[i:]
            )
        else:  # case and space noise
            text = "".join(c.upper() if rng.random() < 0.3 else c for c in text).replace(",", " , ")
    return text


def hypothesis_round(
    found: Findings, kind: str, case: tuple[str, object, str], seed: int, slow: float
) -> None:
    """One hypothesis round (40 generated responses, with and without the right answer around them)."""
    source, like, answer = case

    @settings(max_examples=40, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @hyp_seed(seed)
    @given(st.lists(fragments(), max_size=40).map("".join), st.booleans())
    def run(text: str, around: bool) -> None:
        check_parse(found, kind, source, like, f"I think so. {answer} {text}" if around else text, slow)

    run()


def fuzz_answers(found: Findings, deadline: float, seed: int, slow: float) -> None:
    """Alternate hypothesis rounds and random mutations over every target kind until the deadline."""
    rng = random.Random(seed)
    likes = like_targets()
    round_no = 0
    while time.time() < deadline:
        round_no += 1
        for kind, case in likes.items():
            if time.time() >= deadline:
                return
            hypothesis_round(found, kind, case, seed * 100003 + round_no, slow)
            source, like, answer = case
            for _ in range(40):
                check_parse(found, kind, source, like, mutate(rng, answer), slow)


def hostile_lines(rng: random.Random, samples: list, n: int) -> list[bytes]:
    """Random prediction lines: good ids with mutated answers, random bytes, random JSON, deep nests, BOMs."""
    out = []
    for _ in range(n):
        roll, sample = rng.random(), rng.choice(samples)
        if roll < 0.45:
            record = {"id": sample.id, "response": mutate(rng, sample.response)}
            out.append(json.dumps(record, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass"))
        elif roll < 0.6:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 300))).replace(b"\n", b" "))
        elif roll < 0.7:
            depth = rng.choice([10, 2000, 200_000])
            out.append(b"[" * depth + b"]" * depth)
        elif roll < 0.8:
            out.append(b'{"id": "' + sample.id.encode() + b'", "response": "x", "n": ' + b"7" * 50_000 + b"}")
        elif roll < 0.9:
            out.append(b"\xef\xbb\xbf" + json.dumps({"id": sample.id, "response": sample.response}).encode())
        else:
            out.append(json.dumps({"id": sample.id, "response": "x" * rng.choice([10, 2_000_000])}).encode())
    return out


def fuzz_files(
    found: Findings, deadline: float, seed: int, root: Path, samples: list, end_to_end: bool
) -> None:
    """Write hostile prediction files; read them (`read_predictions`) or score them (`evaluate`)."""
    rng = random.Random(seed + (7 if end_to_end else 3))
    part = "evaluate" if end_to_end else "read_predictions"
    path = root / f"{part}.jsonl"
    first = True
    while first or time.time() < deadline:  # at least one case, even when an earlier part overran
        first = False
        lines = hostile_lines(rng, samples, rng.randint(1, 40))
        if end_to_end:  # one good line, so that there is something to score
            lines.append(json.dumps({"id": samples[0].id, "response": samples[0].response}).encode())
        path.write_bytes(b"\n".join(lines) + rng.choice([b"\n", b"", b"\r\n"]))
        start = time.perf_counter()
        try:
            if end_to_end:
                report = evaluate(path, root, mask_backend="box", meteor="off")
                for task, result in report["tasks"].items():
                    if "error" in result:
                        found.add(part, task, f"task error: {result['error'][:80]}", lines)
                    for err in result.get("parser_errors", []):
                        found.add(part, task, f"parser error: {err.split(': ', 1)[-1][:80]}", err)
            else:
                read_predictions(path)
        except Exception as exc:  # noqa: BLE001 - a finding
            found.add(part, "-", f"{type(exc).__name__}: {str(exc)[:80]}", lines[:3])
        found.case(part, "-", time.perf_counter() - start)


def report(found: Findings, minutes: float) -> int:
    """Print the cases tried and the findings; return the exit code (1 when anything was found)."""
    print(f"fuzz_parsers: {minutes:g} minutes")
    print(f"{'part':<18}{'kind':<26}{'cases':>10}")
    for (part, kind), n in sorted(found.cases.items()):
        print(f"{part:<18}{kind:<26}{n:>10}")
    for part, seconds in sorted(found.slowest.items()):
        print(f"slowest {part} call: {seconds:.3f} s")
    if not found.seen:
        print("findings: none")
        return 0
    print(f"findings: {len(found.seen)}")
    for (part, kind, what), entry in sorted(found.seen.items()):
        print(f"- {part} / {kind}: {what} (x{entry['count']}); e.g. {entry['example']}")
    return 1


def main() -> None:
    """Parse the options, run the three parts in turn within the time box and print the findings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--slow", type=float, default=1.0, help="a parse_answer call slower than this is a finding"
    )
    args = parser.parse_args()
    found, start, total = Findings(), time.time(), args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="avuie-fuzz-") as tmp:
        root = Path(tmp)
        samples = write_build(root)
        fuzz_answers(found, start + 0.60 * total, args.seed, args.slow)
        fuzz_files(found, start + 0.75 * total, args.seed, root, samples, end_to_end=False)
        fuzz_files(found, start + total, args.seed, root, samples, end_to_end=True)
    sys.exit(report(found, args.minutes))


if __name__ == "__main__":
    main()
