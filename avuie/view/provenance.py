"""Where samples and rejects come from: a build's build.json facts, and the raw annotation lines of a reject."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from avuie.shards.layout import per_source

RAW_CONTEXT = 1  # lines shown on each side of a reject's row
MAX_SCAN_LINES = 5_000_000


def build_facts(folder: Path, source: str = "") -> dict[str, Any]:
    """The build.json facts a sample page shows: sha256 of the file, fingerprint, records digest, raw tree (of
    `source` when the build folder holds several sources)."""
    path = Path(folder) / "build.json"
    try:
        stat = path.stat()
    except OSError:
        return {}
    sha, parts = _facts(str(path), stat.st_size, stat.st_mtime_ns)
    info = parts.get(source) or (next(iter(parts.values())) if len(parts) == 1 else {})
    return {
        "sha256": sha,
        "fingerprint": info.get("fingerprint"),
        "records": (info.get("hashes") or {}).get("records"),
        "raw": info.get("raw"),
    }


@lru_cache(maxsize=256)
def _facts(path: str, size: int, mtime: int) -> tuple[str, dict[str, dict[str, Any]]]:
    data = Path(path).read_bytes()
    try:
        info = json.loads(data)
    except ValueError:
        info = {}
    return hashlib.sha256(data).hexdigest(), per_source(info) if isinstance(info, dict) else {}


def raw_lines(
    folder: Path, annotation_file: str, row: str | int | None, source: str = ""
) -> tuple[str, list[tuple[int, str]]]:
    """The raw annotation lines around a reject's row: (a note, [(line number, text), ...]).

    The raw tree is build.json's "raw". Builders count rows their own way (a CSV data row, a line, a list
    index), so the file's first line and lines row-1..row+1 are shown with their line numbers; a file outside
    the raw tree, missing, or not text gives a note and no lines.
    """
    raw = build_facts(folder, source).get("raw")
    if not raw or not annotation_file:
        return "this build does not record its raw tree", []
    base = Path(raw).resolve()
    path = (base / annotation_file).resolve()
    if not path.is_relative_to(base):
        return "the annotation file is outside the raw tree", []
    if not path.is_file():
        return f"{annotation_file} is not on this machine (raw tree {base.name})", []
    try:
        number = int(str(row))
    except (TypeError, ValueError):
        return f"row {row!r} is not a line number; open {annotation_file} and look for it", []
    wanted = {1} | set(range(max(1, number - RAW_CONTEXT), number + RAW_CONTEXT + 2))
    lines = []
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for n, line in enumerate(handle, 1):
                if n in wanted:
                    lines.append((n, line.rstrip("\n")[:2000]))
                if n > max(wanted) or n > MAX_SCAN_LINES:
                    break
    except OSError as error:
        return f"cannot read {annotation_file}: {error.strerror}", []
    return f"{annotation_file}, row {number} as the builder counts rows (line numbers on the left)", lines
