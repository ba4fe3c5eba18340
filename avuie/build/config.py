"""What decides a build: `BuildConfig` (source, roots, splits, shard sizes, cut profile, params, reasoning)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from avuie.build.cutting import Profile

# `tick(n)`: n more records are finished (piece builders call it); `report(done, total)`: the running count a
# progress display shows (callers of `build` pass one; its first call counts the records already built).
Tick = Callable[[int], None]
ReportProgress = Callable[[int, int], None]


@dataclass
class BuildConfig:
    """Everything that decides what a build writes."""

    source: str
    raw: Path
    out: Path
    splits: list[str] | None = None
    limit: int | None = None  # records per split
    workers: int = 2
    shard_size: int = 256  # records per shard
    shard_bytes: int = 1 << 30  # a shard rolls over to a new part past this size
    profile: Profile = field(default_factory=Profile)
    params: dict[str, Any] = field(default_factory=dict)
    reasoning: str = "template"
    media_root: Path | None = None  # media looked up here first (see build/media_root.py)
    raw_url: str | None = (
        None  # a remote raw root (s3://...): `raw` is then its local mirror (build/remote_raw.py)
    )
    executor: str = "local"  # local | ray (build/executors.py)
    address: str | None = None  # the Ray cluster for executor ray (None: a local one with `workers` CPUs)

    def content_fingerprint(self) -> str:
        """A hash of the settings that change a sample's bytes (source, cut profile, params, reasoning engine)."""
        d = {"source": self.source, "profile": asdict(self.profile), "params": self.params}
        return _hash(d | {"reasoning": self.reasoning})

    def fingerprint(self) -> str:
        """A hash of the settings that change shard contents or boundaries (not workers, not paths)."""
        return _hash(
            {"content": self.content_fingerprint(), "size": self.shard_size, "bytes": self.shard_bytes}
        )

    def check(self) -> None:
        """Raise ValueError for settings no build can use."""
        if self.shard_size < 1 or self.shard_bytes < 1 or (self.limit is not None and self.limit < 1):
            raise ValueError("shard_size, shard_bytes and limit must be at least 1")
        if self.executor not in ("local", "ray"):
            raise ValueError(f"executor must be local or ray, not {self.executor!r}")

    def settings(self) -> dict[str, Any]:
        """The settings as build.json records them."""
        return {
            "splits": self.splits,
            "limit": self.limit,
            "workers": self.workers,
            "shard_size": self.shard_size,
            "shard_bytes": self.shard_bytes,
            "profile": asdict(self.profile),
            "params": self.params,
            "reasoning": self.reasoning,
            "media_root": None if self.media_root is None else str(self.media_root),
            "raw_url": self.raw_url,
            "executor": self.executor,
        }


def _hash(d: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]
