"""The run's log: RUN/log.jsonl (one JSON line per logged step or validation), and TensorBoard events beside it.

TensorBoard is optional (`train.tensorboard: true`): the events go to RUN/tensorboard/ when the `tensorboard`
package is importable; otherwise the run stops before training with a message saying how to install it.
"""

from __future__ import annotations

import json
from pathlib import Path

LOG_FILE = "log.jsonl"
TB_DIR = "tensorboard"
TB_MISSING = (
    "train.tensorboard is true but the tensorboard package is not installed: `pip install tensorboard` "
    "(or set --set train.tensorboard=false; log.jsonl is written either way)"
)


def summary_writer_class():
    """torch's SummaryWriter; raises ValueError (TB_MISSING) when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ValueError(TB_MISSING) from error
    return SummaryWriter


class RunLog:
    """Appends lines to RUN/log.jsonl and, when a writer is given, scalars to TensorBoard."""

    def __init__(self, run: Path, tensorboard: bool = False):
        self.path = Path(run) / LOG_FILE
        self.writer = summary_writer_class()(log_dir=str(Path(run) / TB_DIR)) if tensorboard else None

    def write(self, line: dict) -> None:
        """Append one line; its numbers (loss, lr, ..., router gates per source) go to TensorBoard too."""
        with open(self.path, "a") as fh:
            fh.write(json.dumps(line) + "\n")
        if self.writer is None:
            return
        step = int(line["step"])
        for key, value in line.items():
            if isinstance(value, (int, float)) and key != "step":
                self.writer.add_scalar(
                    f"train/{key}" if not key.startswith("val_") else f"val/{key}", value, step
                )
        for field, groups in (line.get("router") or {}).items():
            for name, stats in groups.items():
                for head, gate in enumerate(stats["gate"]):
                    self.writer.add_scalar(f"router/{field}/{name}/gate{head}", gate, step)
                self.writer.add_scalar(f"router/{field}/{name}/entropy", stats["entropy"], step)
        self.writer.flush()

    def close(self) -> None:
        """Close the TensorBoard writer, if any."""
        if self.writer is not None:
            self.writer.close()


def read_log(run: str | Path) -> list[dict]:
    """The JSONL log lines of a run."""
    path = Path(run) / LOG_FILE
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )


class Bar:
    """One rich progress bar on stderr (description, bar, done/total, a text field, ETA) for train and predict."""

    def __init__(self, description: str, total: int | None, disable: bool = False):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn(f"[bold]{description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=disable,
        )
        self.task = self.progress.add_task(description, total=total, info="")

    def __enter__(self) -> Bar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, completed: int, info: str | None = None) -> None:
        """Set the count done (and the text field)."""
        kw = {"info": info} if info is not None else {}
        self.progress.update(self.task, completed=completed, **kw)

    def info(self, text: str) -> None:
        """Set the text field."""
        self.progress.update(self.task, info=text)
