"""Who builds the work units of a build: `local` (this process, a thread pool of `workers` media workers, one
unit after another) or `ray` (a Ray cluster, build/ray_executor.py). Both run the same plan (build/plan.py) and
write the same staged pieces (build/piece.py), which the driver then commits (build/commit.py), so the output
is the same bytes whichever executor built it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, TypeVar

from avuie.build.job import STOP, ExecutorError, UnitJob
from avuie.build.piece import build_piece
from avuie.build.plan import WorkUnit

__all__ = ["EXECUTORS", "ExecutorError", "UnitJob", "each_source", "run_units", "start"]

EXECUTORS = ("local", "ray")
T = TypeVar("T")


def run_units(units: list[WorkUnit], job: UnitJob) -> None:
    """Build every unit into a staged piece with the executor `job.config.executor` names."""
    if not units:
        return
    if job.config.executor == "ray":
        from avuie.build.ray_executor import run_on_ray

        run_on_ray(units, job)
        return
    with ThreadPoolExecutor(max_workers=max(1, job.config.workers)) as pool:
        for unit in units:
            build_piece(job.builder, unit, job.config, job.engine, pool, job.pieces_dir, job.tick)


def start(executor: str, workers: int, address: str | None) -> None:
    """Connect to the executor's cluster now, from this (the main) thread and before a build sets its signal
    handlers: a Ray instance started from another thread leaves its agent processes behind at exit, and one
    started later would replace the build's SIGTERM handler (which records the interruption) with its own."""
    if executor == "ray":
        from avuie.build.ray_executor import connect

        connect(workers, address)


def each_source(names: list[str], run: Callable[[str], T], concurrent: bool) -> Iterator[tuple[str, T]]:
    """Yield `(name, run(name))` for every name: one after another, or (`concurrent`) all started at once in
    threads and yielded as they finish. Ctrl-C or SIGTERM stops every build (each records its interruption and
    keeps its finished work), then raises KeyboardInterrupt here."""
    if not concurrent:
        for name in names:
            yield name, run(name)
        return
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    STOP.clear()
    pool = ThreadPoolExecutor(max_workers=max(1, len(names)))
    try:
        futures = {pool.submit(run, name): name for name in names}
        for future in as_completed(futures):
            yield futures[future], future.result()
    except BaseException:
        STOP.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        STOP.clear()
        if main:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")
