"""What an executor (build/executors.py) gets to build the work units of one source, and what it may raise."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from avuie.build.config import BuildConfig, Tick
from avuie.builders import Builder
from avuie.reasoning.engine import ReasoningEngine

STOP = threading.Event()  # set: every build running in this process stops (raises KeyboardInterrupt) soon


class ExecutorError(RuntimeError):
    """An executor cannot run (Ray missing, cluster unreachable) or a task failed on every retry."""


@dataclass
class UnitJob:
    """What every unit of one source's build shares: builder, settings, reasoning engine, the folder its pieces
    are staged in, and the progress tick (records finished)."""

    builder: Builder
    config: BuildConfig
    engine: ReasoningEngine
    pieces_dir: Path
    tick: Tick | None = None
