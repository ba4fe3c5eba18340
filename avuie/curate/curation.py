"""One all-or-nothing edit of a finished build (review apply, reason): the locks of the sources it touches, and a
transaction that stages rewritten tars, their markers, the sources' records and the derived files together.

While a `Curation` is open, no build of those sources can run in the same folder (and it cannot start while one
runs: `LockHeld` names the build). Nothing it writes is visible before `commit()`; a kill at any instant leaves
the build as it was, or as committed (the next avuie command finishes an interrupted commit).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from avuie.shards.derived import derive, read_record, record_rel
from avuie.shards.layout import list_done, marker_source, stage_dir
from avuie.shards.owner import hold_all
from avuie.shards.txn import Transaction, recover
from avuie.shards.writer import rewrite_shard


def build_sources(out: Path) -> set[str]:
    """The sources whose shards a build folder holds."""
    sources = set()
    for marker in list_done(out):
        try:
            done = json.loads(marker.read_text())
        except (OSError, ValueError):
            done = None
        sources.add(marker_source(marker, done))
    return sources - {""}


class Curation:
    """Locks of `sources` in build folder `out`, and the transaction of their edits (use as a context manager)."""

    def __init__(self, out: Path, sources: Iterable[str]) -> None:
        self.out = Path(out)
        self.sources = sorted(set(sources))
        self._locks = None
        self.txn = Transaction(self.out, stage_dir(self.out, "curate") / "txn")

    def __enter__(self) -> Curation:
        self._locks = hold_all(self.out, self.sources)
        self._locks.__enter__()
        try:
            recover(self.out)
        except BaseException:
            self._locks.__exit__(None, None, None)
            raise
        shutil.rmtree(self.txn.folder, ignore_errors=True)  # a killed edit's staging (never journaled)
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.txn.folder, ignore_errors=True)
        if self._locks is not None:
            self._locks.__exit__(None, None, None)
            self._locks = None

    def rel(self, path: Path) -> str:
        """A path of the build relative to its folder."""
        return Path(path).relative_to(self.out).as_posix()

    def current(self, path: Path) -> Path:
        """The file holding what `path` will contain after this edit (staged copy or the file itself)."""
        return self.txn.view(self.rel(path)) or Path(path)

    def marker(self, marker: Path) -> dict[str, Any]:
        """A marker as this edit has it so far."""
        return json.loads(self.current(marker).read_text())

    def rewrite(
        self, tar: Path, update: Callable[[str, dict[str, bytes]], dict[str, bytes] | None]
    ) -> list[str]:
        """Stage a rewritten copy of `tar` (see shards.writer.rewrite_shard); return the keys that changed."""
        target = self.txn.stage(self.rel(tar))
        changed = rewrite_shard(self.current(tar), target, update)
        if changed:
            self.txn.move(target, self.rel(tar))
        else:
            target.unlink(missing_ok=True)
        return changed

    def stage_marker(self, marker: Path, done: dict[str, Any]) -> None:
        """Stage a marker's new content (after its tars: the commit renames in staging order)."""
        self.txn.write_json(self.rel(marker), done)

    def log(self, entry: dict[str, Any], sources: Iterable[str]) -> None:
        """Append `entry` to the `rewrites` of each source's record (stats.json's "reasoning_rewrites")."""
        for source in sorted(set(sources)):
            rel = record_rel(source)
            view = self.txn.view(rel)
            record = json.loads(view.read_text()) if view else read_record(self.out, source)
            record = record or {"source": source}
            record.setdefault("rewrites", []).append(entry)
            self.txn.write_json(rel, record)

    def commit(self) -> None:
        """Make the staged edits visible together (with the manifest, rejects and stats they change)."""
        if self.txn.moves or self.txn.deletes:
            self.txn.commit(derive, label="curate")
        self.txn = Transaction(self.out, self.txn.folder)
