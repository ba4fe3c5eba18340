"""`avuie demo`: the whole product on the bundled samples, end to end, with nothing downloaded.

1. build every source's bundled sample (original layouts, media synthesized by ffmpeg) into OUT/<source>/;
2. re-validate every shard;
3. serve OUT over HTTP on 127.0.0.1 and stream the train split through the loader, mixed per source;
4. take a few I-LoRA training steps of the tiny Crab+ (Qwen2.5-Omni thinker) model on that HTTP stream.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

console = Console()


def build_all(
    out: Path, workers: int = 2, run_one: Callable[..., dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Build every registered source's bundled sample into out/<source>; return the stats per source.

    `run_one` builds one source as `avuie.build.sources.build_one` does (the CLI passes one with a progress bar).
    """
    from avuie.build.sources import build_one
    from avuie.builders import load_all

    run_one = run_one or build_one
    results = {}
    for name in load_all():
        results[name] = run_one(
            name,
            None,
            out / name,
            splits=None,
            limit=None,
            workers=workers,
            shard_size=256,
            shard_bytes=1 << 30,
            params={},
            reasoning="template",
            reasoning_opts={},
        )
        t = results[name]["totals"]
        console.print(
            f"built {name:9s} in={t['in']:3d} written={t['written']:3d} rejected={t['rejected']:3d}"
        )
    return results


def stream_counts(url: str, n: int, seed: int = 0) -> Counter:
    """Stream n train samples from a shard server, mixed uniformly over sources; count them per source."""
    from avuie.shards.loader import AVStream

    stream = AVStream(url, split="train", temperature=1e6, mix_by="source", seed=seed, samples_per_epoch=n)
    counts: Counter = Counter()
    for item in stream:
        counts[item["sample"]["source"]] += 1
    return counts


def run_demo(
    out: Path,
    steps: int = 3,
    stream_samples: int = 64,
    run_one: Callable[..., dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the four stages; return a summary (sources built, samples validated, streamed, training losses).

    `run_one` builds one source (default `avuie.build.sources.build_one`; the CLI passes one with a progress bar).
    """
    from avuie.build.validate import validate_build
    from avuie.shards.server import serve_in_thread

    out = Path(out)
    console.rule("1. build every source from its bundled raw sample")
    built = build_all(out, run_one=run_one)
    console.rule("2. validate every shard")
    report = validate_build(out)
    console.print(
        f"{report['samples']} samples in {report['shards']} shards, {len(report['failures'])} failures"
    )
    if report["failures"]:
        raise SystemExit(f"validation failed: {report['failures'][:3]}")
    console.rule("3. serve over HTTP and stream, mixed per source")
    with serve_in_thread(out, "127.0.0.1", port=0) as server:
        counts = stream_counts(server.url, stream_samples)
        console.print(
            f"streamed {sum(counts.values())} samples from {server.url}: {dict(sorted(counts.items()))}"
        )
        console.rule(f"4. {steps} I-LoRA training steps (tiny Crab+ omni model, CPU) on the HTTP stream")
        from avuie.trainer.config import load_config
        from avuie.trainer.recipe import train

        cfg = load_config("tiny", [f"train.max_steps={steps}", f"train.save_every={steps}"])
        logs = train(cfg, server.url, out / "_runs" / "tiny")
    losses = [round(r["loss"], 4) for r in logs if "loss" in r]
    console.print(f"losses: {losses}")
    return {"sources": len(built), "samples": report["samples"], "streamed": dict(counts), "losses": losses}
