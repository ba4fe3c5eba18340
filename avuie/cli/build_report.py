"""How `avuie build` reports while it runs: a rich bar on a terminal, JSON lines when stdout is not one (`--progress
json|bar|none`, default by TTY), and the summary, the notices and the resume command in every mode.

JSON lines (one object a line on stdout, flushed; docs/BUILD.md documents them): `{"event": "start", "source",
"total", "built"}`, `{"event": "progress", "source", "done", "total", "samples_per_s", "eta_s", "elapsed_s"}` (at
most one a second, and the last), `{"event": "notice", "source", "text"}`, `{"event": "done", "source", "in",
"written", "rejected", "shards", "shards_skipped", "reasoning": {...}}`, `{"event": "interrupted", "source",
"resume"}` and `{"event": "error", "source", "message"}`. Human text goes to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

MODES = ("auto", "json", "bar", "none")


def pick_mode(mode: str, stream: TextIO | None = None) -> str:
    """The mode `auto` stands for: `bar` when stdout is a terminal, else `json`."""
    if mode not in MODES:
        raise ValueError(f"takes json, bar or none (or auto: bar on a terminal, else json), not {mode!r}")
    if mode != "auto":
        return mode
    return "bar" if (stream or sys.stdout).isatty() else "json"


class Rate:
    """Samples per second and the time left, measured from the first report (which counts work done before)."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.done0 = 0

    def update(self, done: int, total: int) -> tuple[float, float | None, float]:
        """(samples/s, ETA in seconds or None, seconds since the first report)."""
        now = time.monotonic()
        if self.t0 is None:
            self.t0, self.done0 = now, done
        elapsed = now - self.t0
        rate = (done - self.done0) / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else (0.0 if done >= total else None)
        return rate, eta, elapsed


def reasoning_summary(stats: dict[str, Any]) -> dict[str, int]:
    """The reasoning counters a summary shows: model and fallback chains, cache hits, requests."""
    r = stats.get("reasoning") or {}
    chains = r.get("chains") or {}
    out = {"model": chains.get("model", 0), "fallback": chains.get("fallback", 0)}
    out.update({k: r.get(k, 0) for k in ("cache_hits", "requests") if k in r})
    if r.get("engine") == "template":
        out = {"template": r.get("samples", 0)}
    return out


class Reporter:
    """One build command's reporting in a mode (json, bar, none); human text on the stderr console."""

    def __init__(self, mode: str, console: Console, stream: TextIO | None = None, every: float = 1.0) -> None:
        self.mode, self.console, self.stream, self.every = mode, console, stream or sys.stdout, every
        self.bar = None
        self._rates: dict[str, Rate] = {}
        self._last: dict[str, float] = {}

    def __enter__(self) -> Reporter:
        if self.mode == "bar":
            from avuie.cli.progress import progress_bar

            self.bar = progress_bar(self.console)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def event(self, kind: str, **fields: Any) -> None:
        """Write one JSON line (json mode only)."""
        if self.mode == "json":
            self.stream.write(json.dumps({"event": kind, **fields}, default=str) + "\n")
            self.stream.flush()

    def callbacks(self, source: str) -> tuple[Any, Any]:
        """(progress(desc, done, total), notify(text)) for `build_one` of one source."""
        task = self.bar.add_task(f"build {source}", total=None) if self.bar is not None else None
        rate = self._rates.setdefault(source, Rate())

        def progress(desc: str, done: int, total: int) -> None:
            if task is not None:
                self.bar.update(task, completed=done, total=total, description=desc)
            first = rate.t0 is None
            speed, eta, elapsed = rate.update(done, total)
            if first:
                self.event("start", source=source, total=total, built=done)
            now = time.monotonic()
            if done >= total or now - self._last.get(source, 0.0) >= self.every:
                self._last[source] = now
                self.event(
                    "progress", source=source, done=done, total=total, samples_per_s=round(speed, 3),
                    eta_s=None if eta is None else round(eta, 1), elapsed_s=round(elapsed, 1),
                )  # fmt: skip

        def notify(text: str) -> None:
            self.event("notice", source=source, text=text)
            self.console.print(f"[dim]{text}[/dim]")

        return progress, notify

    def done(self, source: str, stats: dict[str, Any]) -> None:
        """The summary of one built source: the JSON `done` line, and the skipped shards and reasoning counters."""
        totals = stats.get("totals", {})
        shards = sum(s.get("shards", 0) for s in stats.get("splits", {}).values())
        counts = reasoning_summary(stats)
        self.event(
            "done", source=source, shards=shards, shards_skipped=stats.get("shards_skipped", 0),
            reasoning=counts, **{k: totals.get(k, 0) for k in ("in", "written", "rejected")},
        )  # fmt: skip
        said = ", ".join(f"{k} {v}" for k, v in counts.items())
        self.console.print(
            f"{source}: {totals.get('written', 0)} written, {totals.get('rejected', 0)} rejected in {shards} "
            f"shards; skipped {stats.get('shards_skipped', 0)} shards already built; reasoning: {said}"
        )

    def interrupted(self, source: str, resume: str) -> None:
        """A build stopped by a signal: say how to resume it."""
        self.event("interrupted", source=source, resume=resume)
        self.console.print(
            f"[yellow]interrupted:[/yellow] {source}; finished work is kept. Resume with:\n  {resume}"
        )

    def error(self, source: str, message: str) -> None:
        """A build that failed with a clear error."""
        self.event("error", source=source, message=message)
        self.console.print(f"[red]error:[/red] {message}")


def os_error_text(exc: OSError, out: Path | None = None) -> str:
    """A one-line message for an OSError (never a bare errno): what failed, where, and what to do."""
    import errno

    where = f": {exc.filename}" if exc.filename else ""
    text = f"{exc.strerror or type(exc).__name__}{where}"
    hints = {
        errno.ENOSPC: "the disk is full; free space and rerun the same command to resume",
        errno.EDQUOT: "the disk quota is used up; free space and rerun the same command to resume",
        errno.EROFS: f"{out or 'the output folder'} is on a read-only file system; choose a writable --out",
        errno.EACCES: "permission denied; choose a folder you can write, or fix its permissions",
        errno.ENOTDIR: "a file stands where avuie needs a folder; move it away or choose another --out",
        errno.EEXIST: "a file stands where avuie needs a folder; move it away or choose another --out",
    }
    hint = hints.get(exc.errno or 0)
    return f"{text} ({hint})" if hint else text
