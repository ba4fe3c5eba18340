"""Benchmark: the Ray executor against the local executor at the same worker count, on one machine.

Builds the same AVE-layout tree (N records over synthetic 10 s 640x360 clips with audio, the cut of issue 13's
media figures: 10 frames at 224x224 + 16 kHz mono) into a fresh folder each time:

- ``local, 1 worker``  : `avuie build` as a user runs it with `--workers 1`
- ``local, W workers`` : `--workers W` (the baseline of the Ray row)
- ``ray, W CPUs``      : `--executor ray` on a local Ray instance with W CPUs, started once before the runs (as a
                         cluster is, before builds are sent to it); its start-up time is printed apart

A first, unmeasured round warms the page cache and Ray's worker processes. Every build's tars are checked to be byte-identical to the first local build's. Prints the median seconds of
each row over the repeats, the local scaling (1 -> W workers) and the Ray/local ratio (target: within 10 %).
On a machine with fewer cores than W + 1 the figures are printed, not asserted.

Run: ``python benchmarks/bench_ray.py [--records 32] [--workers 2] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from avuie.build.config import BuildConfig
from avuie.build.pipeline import build
from avuie.media import synth

HEADER = "Category&VideoID&Quality&StartTime&EndTime\n"


def make_tree(root: Path, records: int, clips: int = 8) -> Path:
    """An AVE_Dataset tree with `records` training rows over `clips` distinct videos (hard links beyond them)."""
    raw = root / "AVE_Dataset"
    (raw / "AVE").mkdir(parents=True)
    made = [
        synth.make_video(root / f"clip{k}.mp4", duration=10.0, size=(640, 360), fps=25, freq=300 + 40 * k)
        for k in range(clips)
    ]
    rows = []
    for i in range(records):
        vid = f"v{i:05d}xxxxx"[:11]
        os.link(made[i % clips], raw / "AVE" / f"{vid}.mp4")
        rows.append(f"Church bell&{vid}&good&{i % 5}&{5 + i % 5}\n")
    for name, lines in (
        ("Annotations.txt", rows),
        ("trainSet.txt", rows),
        ("valSet.txt", []),
        ("testSet.txt", []),
    ):
        (raw / name).write_text(HEADER + "".join(lines))
    return raw


def tars(out: Path) -> dict[str, str]:
    """sha256 of every tar of a build, by relative path."""
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*.tar")
    }


def timed(raw: Path, out: Path, **settings) -> float:
    """Seconds one build of `raw` into a fresh `out` takes."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    stats = build(BuildConfig(source="ave", raw=raw, out=out, **settings))
    seconds = time.perf_counter() - start
    assert stats["totals"]["rejected"] == 0, stats["totals"]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        raw = make_tree(root / "raw", args.records)
        w = args.workers
        rows = {"local, 1 worker": dict(workers=1), f"local, {w} workers": dict(workers=w)}
        rows[f"ray, {w} CPUs"] = dict(workers=w, executor="ray")
        t0 = time.perf_counter()
        ray.init(num_cpus=w, include_dashboard=False, log_to_driver=False)
        startup = time.perf_counter() - t0
        times: dict[str, list[float]] = {name: [] for name in rows}
        reference = None
        for run in range(
            args.repeats + 1
        ):  # interleaved, so drift in the machine's load hits every row alike
            for name, settings in rows.items():
                out = root / "out" / name.replace(" ", "_").replace(",", "")
                seconds = timed(raw, out, **settings)
                if run:  # round 0 warms the page cache and Ray's worker processes
                    times[name].append(seconds)
                reference = reference or tars(out)
                assert tars(out) == reference, f"{name}: the tars differ from the local build"
        ray.shutdown()
    med = {name: statistics.median(v) for name, v in times.items()}
    print(
        f"{args.records} records (10 s 640x360 clips), median of {args.repeats}; {os.cpu_count()} cores here"
    )
    for name, seconds in med.items():
        print(f"  {name:<18} {seconds:7.2f} s   {seconds / args.records * 1000:6.0f} ms/record")
    local1, localw, rayw = med["local, 1 worker"], med[f"local, {w} workers"], med[f"ray, {w} CPUs"]
    print(f"  local scaling 1 -> {w} workers: {local1 / localw:.2f}x (target >= {0.9 * w:.1f}x)")
    print(
        f"  ray / local at {w} workers: {rayw / localw:.3f} (target <= 1.10); ray start-up {startup:.1f} s apart"
    )
    print("  every build's tars are byte-identical")
    if (os.cpu_count() or 1) <= w:
        print(f"  (only {os.cpu_count()} cores: figures printed, not asserted)")


if __name__ == "__main__":
    main()
