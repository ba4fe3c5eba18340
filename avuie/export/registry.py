"""Exports: hand the shards of one or more builds to other trainers (`avuie export OUT --format F --to DEST`).

| format | writes | module |
|---|---|---|
| `crab-plus` | `DEST/AVUIE_2/<task>/{train,test,val}.json` + media where the official Crab+ loader looks | crab.py |
| `hf` | a Hugging Face `datasets.DatasetDict` (one split per build split), `load_from_disk(DEST)` | hf.py |
| `sharegpt` | LLaMA-Factory sharegpt JSON per split + `dataset_info.json` + media under `DEST/media/` | sharegpt.py |

This module holds the format table (`EXPORTERS`) and the dispatcher; each format module imports only
common.py (options, reading, media files), so there is no import circle. Adding a format: its module and one
line in `EXPORTERS`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from avuie.export.common import (
    VIDEO_MODES,
    ExportError,
    ExportOptions,
    ReportProgress,
    prepare_dest,
    split_counts,
)

# format -> (module, function) of its exporter, imported only when that format runs (hf needs `datasets`).
# An exporter takes (build folders, dest, ExportOptions, tick(n)) and returns its summary dict.
EXPORTERS: dict[str, tuple[str, str]] = {
    "crab-plus": ("avuie.export.crab", "export_crab_plus"),
    "hf": ("avuie.export.hf", "export_hf"),
    "sharegpt": ("avuie.export.sharegpt", "export_sharegpt"),
}
FORMATS = tuple(EXPORTERS)


def export(
    roots: list[Path],
    fmt: str,
    dest: Path,
    opts: ExportOptions | None = None,
    progress: ReportProgress | None = None,
) -> dict[str, Any]:
    """Export every build under `roots` to `dest` in format `fmt`; return a summary (counts per split/task).

    `progress(done, total)` is called as samples finish (the CLI draws a rich bar with it).
    """
    from avuie.catalog.db import open_catalog

    opts = opts or ExportOptions()
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if opts.val_to not in ("auto", "val", "train", "test", "drop"):
        raise ExportError(f"--val-to must be auto, val, train, test or drop, got {opts.val_to!r}")
    if opts.video not in VIDEO_MODES:
        raise ExportError(f"--video must be one of {', '.join(VIDEO_MODES)}, got {opts.video!r}")
    catalog = open_catalog(roots)
    total = sum(split_counts(catalog, opts.splits, opts.sources).values())
    if total == 0:
        raise ExportError("nothing to export: no sample matches the given roots, --split and --source")
    dest = prepare_dest(Path(dest), opts.force)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], total)

    module, function = EXPORTERS[fmt]
    exporter = getattr(importlib.import_module(module), function)
    return exporter(catalog.builds, dest, opts, tick)
