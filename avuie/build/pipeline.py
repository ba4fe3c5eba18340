"""The build pipeline: raw release -> records -> media cut -> reasoning -> validated samples -> shards.

`build(config)` runs the steps, each in its own module: read the records and plan the work (plan.py; records an
earlier build or a killed run already built are reused), build each work unit into a staged piece (piece.py,
which assembles samples with assemble.py), then commit (commit.py): pack the samples into full shards
(pack.py) and make tars, markers, manifest, rejects, stats and build.json visible together (shards/txn.py).

The output folder is owned while a build runs: one build per (source, out) holds the source's lock
(shards/owner.py; a second one exits naming the holder), everything is written inside `OUT/.avuie-tmp/` until
the commit, and the commit deletes only files this source's markers listed. A kill at any instant leaves the
old state (plus staged pieces that the rerun reuses) or the new one; an interrupted commit is finished by the
next command. Nothing is lost: every record ends as a written sample or a reject with a reason.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from avuie.build.commit import Built, commit_build, note_interrupted
from avuie.build.config import BuildConfig, ReportProgress
from avuie.build.executors import UnitJob, run_units
from avuie.build.ledger import committed, staged_pieces
from avuie.build.plan import check_splits, digest_records, plan_build, read_records
from avuie.builders import Builder, get_builder
from avuie.reasoning.engine import ReasoningEngine, TemplateEngine
from avuie.shards.layout import SHARDS_DIR, SOURCES_DIR, lock_path, split_dir, stage_dir, work_dir
from avuie.shards.owner import current_command, hold
from avuie.shards.txn import recover

Notify = Callable[[str], None]


def build(
    config: BuildConfig,
    engine: ReasoningEngine | None = None,
    progress: ReportProgress | None = None,
    builder: Builder | None = None,
    notify: Notify | None = None,
) -> dict[str, Any]:
    """Build one source into `config.out`; return its stats (stats.json holds them, per source when OUT holds
    several). `progress(done, total)` follows the records (its first call counts those already built);
    `notify(text)` gets notices such as a stale lock taken over. Raises `LockHeld` while another build of the
    source into the same folder runs."""
    builder = builder or get_builder(config.source, **config.params)
    engine = engine or TemplateEngine()
    config.check()
    out = Path(config.out)
    check_folders(out, [])
    out.mkdir(parents=True, exist_ok=True)
    with hold(out, builder.name) as lock:
        if lock.notice and notify:
            notify(lock.notice)
        recover(out)
        return _build(builder, config, engine, progress, notify)


def check_folders(out: Path, splits: list[str]) -> None:
    """Raise NotADirectoryError (naming the path) when a file stands where the build needs a folder, before any
    work is done."""
    paths = [out, work_dir(out), lock_path(out, "x").parent, out / SOURCES_DIR, out / SHARDS_DIR]
    for path in paths + [split_dir(out, s) for s in splits]:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "a file stands where the build needs a folder", str(path))


def _partial_files(folder: Path) -> None:
    """Drop the half-written files (`*.tmp`) a killed run left in its own stage folder."""
    if folder.is_dir():
        for path in folder.rglob("*.tmp"):
            if path.is_file():
                path.unlink()


def _build(
    builder: Builder,
    config: BuildConfig,
    engine: ReasoningEngine,
    progress: ReportProgress | None,
    notify: Notify | None,
) -> dict[str, Any]:
    by_split, entry_rejects, notices = read_records(builder, config)
    check_splits(builder, config, by_split, entry_rejects)
    absent = [
        s for s in config.splits or builder.splits if s not in by_split | {r.split: 0 for r in entry_rejects}
    ]
    if absent and notify:
        notify(
            f"{builder.name}: no entries for split(s) {', '.join(absent)} in {config.raw} (annotation file missing?)"
        )
    check_folders(Path(config.out), sorted(by_split))
    digests = digest_records(builder, config, by_split)
    stage = stage_dir(config.out, builder.name)
    pieces_dir = stage / "pieces"
    _partial_files(pieces_dir)
    done_before = committed(Path(config.out), builder.name)
    resumed = staged_pieces(pieces_dir)
    plan = plan_build(by_split, digests, set(done_before.outcomes) | set(resumed.outcomes), config.shard_size)
    total = sum(len(v) for v in by_split.values())
    count = [total - plan.todo_records()]
    if progress:
        progress(count[0], total)

    def tick(n: int) -> None:
        count[0] += n
        if progress:
            progress(count[0], total)

    def note(why: dict[str, str]) -> None:
        pieces = staged_pieces(pieces_dir)
        note_interrupted(builder, config, pieces, why["interrupted"], current_command())

    with stats_when_interrupted(note):
        todo = [unit for unit in plan.units if not unit.skipped]
        run_units(todo, UnitJob(builder, config, engine, pieces_dir, tick))
    built = Built(plan, done_before, staged_pieces(pieces_dir), pieces_dir, by_split, entry_rejects, notices)
    skipped = sum(u.skipped for u in plan.units)
    stats = commit_build(builder, config, built, engine.stats(), skipped)
    shutil.rmtree(stage, ignore_errors=True)
    return stats


@contextlib.contextmanager
def stats_when_interrupted(write: Callable[[dict[str, str]], Any]) -> Iterator[None]:
    """Around the work loop: SIGTERM raises KeyboardInterrupt (as Ctrl-C does), and when the loop stops early for
    any reason, `write({"interrupted": why})` records it (stats.json says what was staged and how to resume)
    before the exception goes on."""
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
