"""One rich progress bar for every long command: description, bar, done/total, elapsed, ETA.

Drawn on a terminal (or whenever AVUIE_PROGRESS=1); silent in pipes and CI logs.
"""

from __future__ import annotations

import os

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def progress_bar(console: Console | None = None, *, transient: bool = False) -> Progress:
    """A Progress with counts, elapsed time and ETA; pass the task's text as its description."""
    console = console or Console(stderr=True)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=not console.is_terminal and os.environ.get("AVUIE_PROGRESS") != "1",
    )
