"""Running `avuie build` for one source, every source (`--all`) or a build file (`--config`): the reporter of the
chosen `--progress` mode, the summary, and clear errors with their exit codes.

Exit codes: 0 built; 1 the machine refused (disk full, read-only or missing folder, a file where a folder must
go: the message says which and what to do) or no source could be built; 2 a bad request or input (unknown
source, bad raw tree, bad option or build file) or the folder is in use by another build (the message names it);
130 / 143 stopped by Ctrl-C / SIGTERM (the message gives the command that resumes).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from avuie.cli.build_report import Reporter, os_error_text, pick_mode

console = Console(stderr=True)


def print_stats(source: str, stats: dict[str, Any]) -> None:
    """The table of one built source: in, written, rejected and the reasons per split."""
    table = Table(title=f"{source}: in = written + rejected")
    for col in ("split", "in", "written", "rejected", "reasons"):
        table.add_column(col)
    for split, s in sorted(stats["splits"].items()):
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(s["reasons"].items()))
        table.add_row(split, str(s["in"]), str(s["written"]), str(s["rejected"]), reasons)
    console.print(table)


def print_scan(source: str, report: dict[str, Any]) -> None:
    """The scan report as a table (stdout), with missing media examples and the splits without entries."""
    out = Console()
    table = Table(title=f"scan {source} ({report['raw']})")
    columns = ("records", "samples", "buildable", "media_missing", "rejected")
    for col in ("split", *columns):
        table.add_column(col)
    for split, s in sorted(report["splits"].items()):
        table.add_row(split, *(str(s[c]) for c in columns))
    out.print(table)
    for split, s in sorted(report["splits"].items()):
        for path in s["missing_examples"]:
            out.print(f"{split}: missing {path}")
    for split in report["missing_splits"]:
        out.print(f"[yellow]no entries for split {split}[/yellow] (is its annotation file missing?)")
    for reason, n in sorted(report["reject_reasons"].items()):
        out.print(f"rejected {n}: {reason}")


def _mode(mode: str) -> str:
    try:
        return pick_mode(mode)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--progress") from exc


def _message(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else str(exc)


def guarded(rep: Reporter, source: str, out: Path, run: Callable[[], Any]) -> Any:
    """Run one build step; turn its failures into the reporter's error line and the exit codes above."""
    from avuie.build.engines import BuildRequestError, endpoint_error
    from avuie.build.executors import ExecutorError
    from avuie.builders import BuilderError
    from avuie.shards.owner import LockHeld, current_command

    try:
        return run()
    except BuildRequestError as exc:
        raise typer.BadParameter(str(exc), param_hint=getattr(exc, "param_hint", None)) from exc
    except LockHeld as exc:
        rep.error(source, str(exc))
        raise typer.Exit(2) from exc
    except ExecutorError as exc:
        rep.error(source, str(exc))
        raise typer.Exit(1) from exc
    except KeyboardInterrupt as exc:
        rep.interrupted(source, current_command())
        raise typer.Exit(143 if "SIGTERM" in str(exc) else 130) from exc
    except OSError as exc:
        rep.error(source, os_error_text(exc, out))
        raise typer.Exit(1) from exc
    except (BuilderError, KeyError, ValueError, endpoint_error()) as exc:
        rep.error(source, _message(exc))
        raise typer.Exit(2) from exc


def run_single(source: str, raw: Path | None, out: Path, kw: dict[str, Any], mode: str) -> None:
    """`avuie build --source NAME`."""
    from avuie.build.sources import build_one

    with Reporter(_mode(mode), console) as rep:
        progress, notify = rep.callbacks(source)
        stats = guarded(
            rep, source, out, lambda: build_one(source, raw, out, progress=progress, notify=notify, **kw)
        )
        rep.done(source, stats)
    print_stats(source, stats)
    console.print(f"shards and manifest in {out}")


def run_every(root: Path, raw_root: Path | None, layout: Path | None, kw: dict[str, Any], mode: str) -> None:
    """`avuie build --all`."""
    from avuie.build.sources import build_all, build_one
    from avuie.builders import load_all

    with Reporter(_mode(mode), console) as rep:

        def run_one(name: str, raw: Path | None, out: Path, **options: Any) -> dict[str, Any]:
            progress, notify = rep.callbacks(name)
            return build_one(name, raw, out, progress=progress, notify=notify, **options)

        def built(name: str, stats: dict[str, Any]) -> None:
            rep.done(name, stats)
            print_stats(name, stats)

        skipped = guarded(rep, "all", root, lambda: build_all(root, raw_root, layout, kw, run_one, built))
    for name, why in skipped.items():
        console.print(f"[yellow]skipped {name}:[/yellow] {why}")
    count = len(load_all()) - len(skipped)
    console.print(f"built {count} sources into {root}; skipped {len(skipped)}")
    if count == 0:
        console.print("[red]error:[/red] no source was built")
        raise typer.Exit(1)


def run_config(path: Path, mode: str | None) -> None:
    """`avuie build --config build.yaml`: every source of the file, in its order (all at once with the Ray
    executor)."""
    from avuie.build.buildfile import check_executor, load_build_file, source_options
    from avuie.build.engines import BuildRequestError
    from avuie.build.executors import each_source, start
    from avuie.build.sources import build_one

    try:
        spec = load_build_file(path)
        check_executor(spec)
    except BuildRequestError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from exc
    with Reporter(_mode(mode or spec.progress), console) as rep:

        def one(name: str) -> dict[str, Any]:
            raw, out, options = source_options(spec, name)
            progress, notify = rep.callbacks(name)
            job = functools.partial(build_one, name, raw, out, progress=progress, notify=notify, **options)
            return guarded(rep, name, Path(str(out)), job)

        guarded(rep, "all", Path(str(spec.out)), lambda: start(spec.executor, spec.workers, spec.address))
        for name, stats in each_source(list(spec.sources), one, concurrent=spec.executor == "ray"):
            rep.done(name, stats)
            print_stats(name, stats)
    console.print(f"built {len(spec.sources)} sources from {path}")


def run_repair(out: Path) -> None:
    """`avuie repair OUT`: finish an interrupted commit, recompute the derived files, report what still differs."""
    from avuie.build.consistency import repair

    if not out.is_dir():
        console.print(f"[red]error:[/red] {out} is not a folder")
        raise typer.Exit(2)
    with Reporter("none", console) as rep:
        report = guarded(rep, "repair", out, lambda: repair(out))
    for fail in report["failures"][:50]:
        console.print(f"[red]still wrong[/red] {fail['shard'] or fail['id']}: {fail['error']}")
    console.print(
        f"finished {report['journals']} interrupted update(s); manifest, rejects and stats recomputed; "
        f"{len(report['failures'])} problem(s) left"
        + (" (rebuild the sources named)" if report["failures"] else "")
    )
    if report["failures"]:
        raise typer.Exit(1)
