"""What decides a build: `BuildConfig` (source, roots, splits, shard sizes, cut profile, params, reasoning)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from avuie.build.cutting import Profile

# `tick(n)`: n more records are finished (shard builders call it); `report(done, total)`: the running count a
# progress bar shows (callers of `build` pass one).
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

    def fingerprint(self) -> str:
        """A hash of the settings that change shard contents (not workers, not paths)."""
        d = {
            "source": self.source,
            "shard_size": self.shard_size,
            "shard_bytes": self.shard_bytes,
            "profile": asdict(self.profile),
            "params": self.params,
            "reasoning": self.reasoning,
        }
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

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
        }
