"""Loader throughput: AVStream from local shards against a raw `tarfile` read (the I/O floor), and over HTTP
loopback (the shard server) against local. Prints samples/s and the ratios.

    python benchmarks/bench_loader.py [--samples 240] [--shards 6] [--frames 10] [--size 224] [--audio 10]

Shards are synthetic (tests/shardkit.py) with Crab+-sized media: 10 JPEG frames of 224x224 and 10 s of 16 kHz
audio per sample by default. The loader runs in one process (no DataLoader workers), the server (for HTTP) in
another, after a warm-up pass, so the files sit in the page cache and the figures compare code paths, not disks.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avuie.shards.loader import AVStream  # noqa: E402

from tests.shardkit import write_build  # noqa: E402

# The shard server runs in its own process, as deployed (in a thread it would share the GIL with the loader).
SERVER = "import sys; from avuie.shards.server import run_server; run_server(sys.argv[1], port=0, on_ready=lambda u: print(u, flush=True))"


def raw_tarfile(paths: list[Path]) -> int:
    """Read every member of every shard with tarfile (stream mode); return the number of samples."""
    keys = set()
    for path in paths:
        with tarfile.open(path, "r|") as tar:
            for member in tar:
                tar.extractfile(member).read()
                keys.add(member.name.split(".", 1)[0])
    return len(keys)


def loader_pass(source, decode: bool) -> int:
    """Iterate one epoch of AVStream(source); return the number of items."""
    return sum(1 for _ in AVStream(source, decode=decode, seed=1))


def timed(label: str, run, repeats: int) -> float:
    """Run `run` once to warm up, then `repeats` times; print and return the best samples/s."""
    run()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        count = run()
        best = max(best, count / (time.perf_counter() - start))
    print(f"{label:<44} {best:10.1f} samples/s")
    return best


def main() -> None:
    """Build synthetic shards, time each read path and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=240)
    parser.add_argument("--shards", type=int, default=6)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--audio", type=float, default=10.0, help="seconds of audio per sample")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    per_shard = [args.samples // args.shards] * args.shards
    with tempfile.TemporaryDirectory() as tmp:
        build = write_build(
            Path(tmp) / "out",
            {"ave": {"train": per_shard}},
            frames=args.frames,
            size=args.size,
            audio_seconds=args.audio,
        )
        megabytes = sum(p.stat().st_size for p in build.shards) / 1e6
        print(f"{len(build.keys)} samples in {len(build.shards)} shards, {megabytes:.1f} MB")
        raw = timed("raw tarfile read (I/O floor)", lambda: raw_tarfile(build.shards), args.repeats)
        local_bytes = timed(
            "AVStream local, decode=False", lambda: loader_pass(build.root, False), args.repeats
        )
        local = timed("AVStream local, decoded tensors", lambda: loader_pass(build.root, True), args.repeats)
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(build.root)], stdout=subprocess.PIPE, text=True
        )
        try:
            url = server.stdout.readline().strip()
            http_bytes = timed(
                "AVStream HTTP loopback, decode=False", lambda: loader_pass(url, False), args.repeats
            )
            http = timed(
                "AVStream HTTP loopback, decoded tensors", lambda: loader_pass(url, True), args.repeats
            )
        finally:
            server.terminate()
            server.wait(30)
    print()
    print(f"local loader (bytes) / raw tarfile    = {local_bytes / raw:.2f}")
    print(f"local loader (decoded) / raw tarfile  = {local / raw:.2f}")
    print(f"HTTP / local (bytes)                  = {http_bytes / local_bytes:.2f}")
    print(f"HTTP / local (decoded)                = {http / local:.2f}")


if __name__ == "__main__":
    main()
