"""The build pipeline: raw release -> records -> media cut -> reasoning -> validated samples -> shards.

`build(config)` runs the steps, each in its own module: read and plan the shards (plan.py), build each shard
(shard.py, which assembles samples with assemble.py), then gather the markers and write build.json
(finalise.py). A finished shard leaves `<name>.done.json`; a rerun skips every shard whose marker matches the
build config, and redoes the others from scratch (their `.tmp` files are dropped), so an interrupted build
resumes without duplicates or truncated tars and ends with the same manifest. Nothing is lost: every record ends
as a written sample or a reject with a reason (in = written + rejected).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from avuie.build.config import BuildConfig, ReportProgress
from avuie.build.finalise import finalise
from avuie.build.plan import check_splits, chunk_digest, drop_orphans, is_done, plan_shards, read_records
from avuie.build.shard import build_shard
from avuie.builders import Builder, get_builder
from avuie.reasoning.engine import ReasoningEngine, TemplateEngine
from avuie.shards.writer import remove_stale_temp


def build(
    config: BuildConfig,
    engine: ReasoningEngine | None = None,
    progress: ReportProgress | None = None,
    builder: Builder | None = None,
) -> dict[str, Any]:
    """Build one source into `config.out`; return stats (also written to stats.json).

    `progress(done, total)` is called as records finish (the CLI draws a rich bar with it).
    """
    builder = builder or get_builder(config.source, **config.params)
    engine = engine or TemplateEngine()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temp(out)
    if config.shard_size < 1 or config.shard_bytes < 1 or (config.limit is not None and config.limit < 1):
        raise ValueError("shard_size, shard_bytes and limit must be at least 1")
    records = read_records(builder, config)
    by_split, entry_rejects, _notices = records
    check_splits(builder, config, by_split, entry_rejects)
    total = sum(len(v) for v in by_split.values())
    done_count = [0]

    def tick(n: int) -> None:
        done_count[0] += n
        if progress:
            progress(done_count[0], total)

    fingerprint = config.fingerprint()
    jobs = plan_shards(builder.name, by_split, config)
    skipped = 0

    def summary() -> dict[str, Any]:
        return {"shards_skipped": skipped, "reasoning": engine.stats()}

    interrupted = stats_when_interrupted(
        lambda why: finalise(builder, config, records, {**summary(), **why}, False)
    )
    with interrupted, ThreadPoolExecutor(max_workers=max(1, config.workers)) as pool:
        for job in jobs:
            job.folder.mkdir(parents=True, exist_ok=True)
            if is_done(job.marker, fingerprint, chunk_digest(job.records)):
                skipped += 1
                tick(len(job.records))
                continue
            build_shard(builder, job, config, engine, pool, tick)
        drop_orphans(out, jobs)
    return finalise(builder, config, records, summary())


@contextlib.contextmanager
def stats_when_interrupted(write: Callable[[dict[str, str]], Any]) -> Iterator[None]:
    """Around the shard loop: SIGTERM raises KeyboardInterrupt (as Ctrl-C does), and when the loop stops early for
    any reason, `write({"interrupted": why})` writes manifest, rejects and stats.json of the shards finished so
    far before the exception goes on (a rerun resumes from those shards)."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt) if main else None
    try:
        yield
    except BaseException as exc:
        with contextlib.suppress(Exception):  # the original error is the one to report
            write({"interrupted": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        if main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
