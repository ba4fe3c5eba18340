"""All-or-nothing updates of a build folder: stage every new file, then commit them together with a journal.

A `Transaction` collects staged files (written under `OUT/.avuie-tmp/`, which no reader looks at) and the paths
to delete. `commit(derive)` takes the folder's commit lock, finishes any earlier interrupted commit, lets `derive`
stage the files computed from the new state (manifest, rejects, stats: shards/derived.py), then writes the
journal `OUT/.avuie-tmp/journal-<txn>.json` (fsynced, renamed into place: the commit point) and applies it:
staged files are renamed to their final paths in the order they were added (tars, then markers, then the files
derived from them), then the deletions run, then the journal goes.

A kill before the journal exists leaves the old state (the staged files are avuie's own leftovers, cleared by the
next writer); a kill after it leaves a journal that `replay(out)` (run first by every writing command) finishes,
so the next command sees the new state. Renames and deletions are idempotent, so a replay may itself be killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avuie.shards.layout import (
    COMMIT_LOCK,
    DONE_SUFFIX,
    JOURNAL_PREFIX,
    SOURCES_DIR,
    TMP_SUFFIX,
    journal_path,
    list_done,
    list_journals,
    list_source_records,
    staged,
    tmp_path,
    work_dir,
)
from avuie.shards.owner import hold


def write_synced(path: Path, data: bytes) -> None:
    """Write `data` to `path` (parents made) and fsync it, so a commit never points at an unwritten file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def json_bytes(obj: Any) -> bytes:
    """The JSON text avuie writes for markers, records and stats (indented, sorted keys)."""
    return json.dumps(obj, indent=1, sort_keys=True, default=str).encode()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class Transaction:
    """Files staged for one commit: `moves` (staged path -> final path relative to OUT) and `deletes`."""

    out: Path
    folder: Path  # where this transaction stages its files (inside OUT/.avuie-tmp)
    moves: list[tuple[Path, str]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    def stage(self, rel: str) -> Path:
        """The staged path of final path `rel` in this transaction's folder (parents made); `move` it after."""
        path = staged(self.folder, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def move(self, src: Path, rel: str) -> None:
        """Commit will rename the staged file `src` (inside OUT/.avuie-tmp) to `OUT/rel`."""
        self.moves = [(s, r) for s, r in self.moves if r != rel] + [(Path(src), rel)]

    def write(self, rel: str, data: bytes) -> None:
        """Stage `data` as the new content of `OUT/rel`."""
        path = self.stage(rel)
        write_synced(path, data)
        self.move(path, rel)

    def write_json(self, rel: str, obj: Any) -> None:
        """Stage `obj` as JSON for `OUT/rel`."""
        self.write(rel, json_bytes(obj))

    def delete(self, rel: str) -> None:
        """Commit will delete `OUT/rel` (a file avuie wrote: callers only name files their markers list)."""
        if rel not in self.deletes:
            self.deletes.append(rel)

    def view(self, rel: str) -> Path | None:
        """Where the content `OUT/rel` will have after the commit is now: staged file, current file, or None."""
        for src, dst in reversed(self.moves):
            if dst == rel:
                return src
        if rel in self.deletes:
            return None
        path = self.out / rel
        return path if path.exists() else None

    def view_markers(self) -> list[tuple[str, Path]]:
        """(relative path, file to read) of every shard marker after the commit, sorted by relative path."""
        return self._view([p.relative_to(self.out).as_posix() for p in list_done(self.out)], DONE_SUFFIX)

    def view_records(self) -> list[tuple[str, Path]]:
        """(relative path, file to read) of every source record after the commit, sorted."""
        rels = [p.relative_to(self.out).as_posix() for p in list_source_records(self.out)]
        return self._view(rels, ".json", f"{SOURCES_DIR}/")

    def _view(self, current: list[str], suffix: str, prefix: str = "") -> list[tuple[str, Path]]:
        rels = set(current) | {r for _, r in self.moves if r.endswith(suffix) and r.startswith(prefix)}
        seen = ((rel, self.view(rel)) for rel in sorted(rels))
        return [(rel, path) for rel, path in seen if path is not None]

    def commit(self, derive: Callable[[Transaction], None] | None = None, label: str = "") -> None:
        """Under the commit lock: finish earlier journals, let `derive(self)` stage derived files, then write
        the journal and apply it. Nothing happens when nothing is staged or deleted (and derive adds nothing)."""
        with hold(self.out, COMMIT_LOCK, wait=True):
            replay(self.out)
            if derive is not None:
                derive(self)
            if not self.moves and not self.deletes:
                return
            name = f"{label or 'txn'}-{os.getpid()}-{time.time_ns()}"
            journal = {
                "moves": [[src.relative_to(self.out).as_posix(), rel] for src, rel in self.moves],
                "deletes": [r for r in self.deletes if r not in {d for _, d in self.moves}],
            }
            path = journal_path(self.out, name)
            tmp = tmp_path(path)
            write_synced(tmp, json_bytes(journal))
            os.replace(tmp, path)  # the commit point
            _fsync_dir(path.parent)
            apply_journal(self.out, path)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.folder)


def apply_journal(out: Path, path: Path) -> None:
    """Apply one journal (renames in order, then deletions) and remove it; safe to run again after a kill."""
    journal = json.loads(path.read_text())
    parents = set()
    for src, dst in journal["moves"]:
        source, target = out / src, out / dst
        if source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            parents.add(target.parent)
    for rel in journal["deletes"]:
        (out / rel).unlink(missing_ok=True)
    for folder in parents:
        _fsync_dir(folder)
    path.unlink()


def replay(out: str | os.PathLike) -> int:
    """Finish every committed-but-unapplied journal of `out` (call with the commit lock held, as `commit` does,
    or through `recover`); half-written journals (`*.tmp`: never committed) are dropped. Returns how many."""
    out = Path(out)
    for leftover in work_dir(out).glob(f"{JOURNAL_PREFIX}*.json{TMP_SUFFIX}"):
        leftover.unlink(missing_ok=True)
    journals = list_journals(out)
    for path in journals:
        apply_journal(out, path)
    return len(journals)


def recover(out: str | os.PathLike) -> int:
    """Take the commit lock and `replay` the pending journals of `out`; returns how many were finished."""
    if not work_dir(out).is_dir():
        return 0
    with hold(out, COMMIT_LOCK, wait=True):
        return replay(out)
