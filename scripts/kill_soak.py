"""SIGKILL soak: random kills during `avuie review apply` and during rebuilds with changed shard settings.

Each trial copies a finished build, starts the command in its own process group, kills it (SIGKILL) after a random
delay between the end of avuie's start-up and the command's measured run time (a fresh build's, for a rebuild), runs the next command (`avuie repair` after a review apply, the
same rebuild after a rebuild) and checks the folder: tars, markers and manifest agree exactly (tests/buildkit.py
`build_state`), `avuie validate` is clean, no sample key appears twice, and the build equals the old or the new
state (review apply) or a fresh build with the new settings (rebuild).

    python scripts/kill_soak.py [--trials 20] [--seed 0]     # 20 kills of each kind (a trial that finished
                                                              # before its kill is run again with a new delay)

Prints one line per trial and a summary; exits 1 if any trial ended inconsistent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avuie.curate.review import review_row, write_rows  # noqa: E402
from avuie.curate.rewrite import iter_samples  # noqa: E402
from avuie.samples import ensure_sample  # noqa: E402
from tests.buildkit import build_state, read_back  # noqa: E402

HUMAN = (
    "Checked by a person: the source is seen and heard in exactly these seconds of the clip. So the answer is"
)
SETTINGS = [("1", "1073741824"), ("2", "100000"), ("3", "1073741824"), ("8", "150000"), ("4", "250000")]


def avuie(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avuie", *args], cwd=ROOT, capture_output=True, text=True)


def timed(args: list[str]) -> float:
    start = time.monotonic()
    proc = avuie(*args)
    assert proc.returncode == 0, proc.stderr
    return time.monotonic() - start


def startup() -> float:
    """Seconds avuie takes to start and exit doing nothing much (kills before that only hit the imports)."""
    return timed(["sources", "--json"])


def kill_after(args: list[str], delay: float) -> bool:
    """Run avuie ARGS and SIGKILL it after `delay` s; True when it was killed before it finished."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "avuie", *args], cwd=ROOT, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return True


def check(out: Path) -> dict[str, str]:
    """The consistency checks every trial ends with; returns the chains."""
    state = build_state(out)
    proc = avuie("validate", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    keys = [it["key"] for it in read_back(out)]
    assert len(keys) == len(set(keys)), "duplicate keys"
    return state


def raw_tree(work: Path) -> Path:
    """The bundled AVE sample with one clip missing (a reject in the middle of train)."""
    raw = work / "raw"
    shutil.copytree(ensure_sample("ave"), raw)
    (raw / "AVE" / "RUhOCu3LNXM.mp4").unlink()
    return raw


def review_trials(work: Path, raw: Path, rng: random.Random, trials: int) -> list[str]:
    base = work / "review-base"
    assert (
        avuie(
            "build", "--source", "ave", "--raw", str(raw), "--out", str(base), "--shard-size", "2"
        ).returncode
        == 0
    )
    edits = [review_row(s, str(t.relative_to(base))) | {"reasoning": HUMAN} for t, s, _ in iter_samples(base)]
    review = work / "review.jsonl"
    write_rows(review, edits[:4])
    old = check(base)
    done = work / "review-done"
    shutil.copytree(base, done)
    span = timed(["review", "apply", str(done), str(review)])
    new = check(done)
    lines, start, attempt = [], 0.8 * startup(), 0
    while sum("killed=True" in x for x in lines) < trials and attempt < 3 * trials:
        out = work / f"review-{attempt}"
        shutil.copytree(base, out)
        delay = rng.uniform(start, span)
        killed = kill_after(["review", "apply", str(out), str(review)], delay)
        assert avuie("repair", str(out)).returncode == 0
        state = check(out)
        assert state in (old, new), "neither old nor new"
        lines.append(
            f"review apply {attempt:2d}: kill at {delay:5.2f}s killed={killed} -> {'new' if state == new else 'old'}"
        )
        shutil.rmtree(out)
        attempt += 1
    return lines


def _build_args(raw: Path, out: Path, setting: tuple[str, str], *extra: str) -> list[str]:
    return ["build", "--source", "ave", "--raw", str(raw), "--out", str(out), "--shard-size", setting[0],
            "--shard-bytes", setting[1], "--progress", "none", *extra]  # fmt: skip


def rebuild_trials(work: Path, raw: Path, rng: random.Random, trials: int) -> list[str]:
    """Each trial starts from a build of 3 records per split with one shard setting and rebuilds every record
    with another: the rebuild repacks the 3 and cuts the rest, so kills land while cutting, packing or committing."""
    fresh, start = {}, 0.8 * startup()
    for setting in SETTINGS:
        ref, partial = work / f"fresh-{setting[0]}-{setting[1]}", work / f"part-{setting[0]}-{setting[1]}"
        timed(_build_args(raw, ref, setting))
        timed(_build_args(raw, partial, setting, "--limit", "3"))
        fresh[setting] = (check(ref), sorted(read_keys(ref)))
    lines, attempt = [], 0
    while sum("killed=True" in x for x in lines) < trials and attempt < 3 * trials:
        first, second = rng.sample(SETTINGS, 2)
        scratch, out = work / "scratch", work / f"rebuild-{attempt}"
        for folder in (scratch, out):
            shutil.copytree(work / f"part-{first[0]}-{first[1]}", folder)
        span = timed(_build_args(raw, scratch, second))  # this very transition, uninterrupted
        shutil.rmtree(scratch)
        delay = rng.uniform(start, span)
        killed = kill_after(_build_args(raw, out, second), delay)
        proc = avuie(*_build_args(raw, out, second))
        assert proc.returncode == 0, proc.stderr
        chains, keys = fresh[second]
        assert check(out) == chains and sorted(read_keys(out)) == keys, "differs from a fresh build"
        stats = json.loads((out / "stats.json").read_text())
        lines.append(
            f"rebuild {attempt:2d}: {first} -> {second}, kill at {delay:5.2f}s of {span:4.2f}s killed={killed} -> "
            f"consistent, {stats['totals']['written']} written, skipped {stats['shards_skipped']} shards"
        )
        shutil.rmtree(out)
        attempt += 1
    return lines


def read_keys(out: Path) -> list[tuple[str, str]]:
    """(tar name, key) of every sample, in tar order: equal for equal shard layouts."""
    return [(Path(it["sample"]["id"]).name, it["key"]) for it in read_back(out)]


def main() -> None:
    """Run the trials and print what happened."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="avuie-soak-") as tmp:
        work = Path(tmp)
        raw = raw_tree(work)
        lines = review_trials(work, raw, rng, args.trials) + rebuild_trials(work, raw, rng, args.trials)
    for line in lines:
        print(line)
    killed = sum("killed=True" in line for line in lines)
    print(f"{len(lines)} trials, {killed} SIGKILLed before they finished: every one ended consistent")


if __name__ == "__main__":
    main()
