"""Benchmark: reasoning throughput of the OpenAI-compatible engine against a local server with fixed latency.

The server (tests/openai_server.py, real HTTP on 127.0.0.1) answers every request after a fixed delay (200 ms by
default), like a remote model with a steady response time. For each concurrency the engine reasons over the same
drafts (two 224x224 frames and one second of audio each, with no cache) and the table shows samples per second,
the speed-up over concurrency 1, and the most requests the server saw in flight.

Run: ``python benchmarks/bench_reasoning.py [--samples 128] [--latency 0.2] [--concurrency 1 8 32 64]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avuie.reasoning.openai_engine import make_openai_engine  # noqa: E402
from tests.openai_server import FakeOpenAIServer  # noqa: E402
from tests.reasoning_kit import ave_drafts  # noqa: E402


def run_once(base_url: str, drafts: list, concurrency: int) -> tuple[float, dict]:
    """Reason over the drafts at one concurrency (no cache); return (seconds, engine stats)."""
    engine = make_openai_engine(model="bench", base_url=base_url, api_key="k", concurrency=concurrency)
    start = time.perf_counter()
    results = engine.generate(drafts)
    seconds = time.perf_counter() - start
    stats = engine.stats()
    engine.close()
    assert all(r.info["kind"] == "model" for r in results), "every chain should pass against the local server"
    return seconds, stats


def main() -> None:
    """Parse the options, run each concurrency and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--latency", type=float, default=0.2, help="server delay per request, seconds")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    args = parser.parse_args()

    drafts = ave_drafts(args.samples)
    rows = []
    with FakeOpenAIServer(latency=args.latency) as server:
        run_once(server.base_url, drafts[:4], 4)  # warm up imports and the connection pool
        for concurrency in args.concurrency:
            server.reset_counts()
            seconds, stats = run_once(server.base_url, drafts, concurrency)
            rows.append((concurrency, seconds, stats["requests"], server.max_in_flight))

    base = rows[0][1]
    ideal = args.latency * args.samples
    print(f"{args.samples} samples, server latency {args.latency * 1000:.0f} ms (serial floor {ideal:.1f} s)")
    print(
        f"| {'concurrency':>11} | {'seconds':>8} | {'samples/s':>9} | {'speed-up':>8} | {'max in flight':>13} |"
    )
    print(f"|{'-' * 13}|{'-' * 10}|{'-' * 11}|{'-' * 10}|{'-' * 15}|")
    for concurrency, seconds, _requests, in_flight in rows:
        rate = args.samples / seconds
        print(
            f"| {concurrency:>11} | {seconds:>8.2f} | {rate:>9.1f} | {base / seconds:>7.1f}x | {in_flight:>13} |"
        )


if __name__ == "__main__":
    main()
