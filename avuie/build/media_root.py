"""`--media-root DIR`: media stored away from the annotations.

Builders name each raw file by its place in the release layout (`RAW/AVE/<id>.mp4`). With a media root, a file's
path relative to RAW is looked up under DIR, dropping leading folders until one exists: `DIR/AVE/<id>.mp4`, then
`DIR/<id>.mp4`. The first hit wins; when none exists, the file under RAW is kept if it exists, else the record
names `DIR/<relative path>` (so a missing-file reject says where avuie looked). Paths outside RAW are kept.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from avuie.builders import Record


class MediaRoot:
    """Maps raw media paths to their place under a media root (see the module docstring); caches lookups."""

    def __init__(self, raw: Path, root: Path) -> None:
        self.raw, self.root = Path(raw), Path(root)
        self._seen: dict[Path, Path] = {}

    def candidates(self, path: Path) -> list[Path]:
        """Where a raw path may be under the media root, best first ([] for a path outside RAW)."""
        try:
            parts = Path(path).relative_to(self.raw).parts
        except ValueError:
            return []
        return [self.root.joinpath(*parts[i:]) for i in range(len(parts))]

    def find(self, path: Path) -> Path:
        """The file to read for raw path `path`."""
        path = Path(path)
        if path not in self._seen:
            cands = self.candidates(path)
            hit = next((c for c in cands if c.exists()), None)
            if hit is None:
                hit = path if path.exists() or not cands else cands[0]
            self._seen[path] = hit
        return self._seen[path]

    def remap(self, record: Record) -> Record:
        """The record with each media request's path looked up under the media root."""
        media = [dataclasses.replace(m, path=self.find(m.path)) for m in record.media]
        return dataclasses.replace(record, media=media)
