"""A SQLite cache of reasoning chains, next to the build (OUT/reasoning_cache.sqlite).

One row per (sample content, prompt version, model, request settings): the final reply of the model and how it
was judged. A row is committed as soon as its sample is finished, so a killed run resumes with only the samples
that have no row. Transport failures (the endpoint never answered) are not stored: a rerun asks again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from avuie.reasoning.engine import Draft

# Sample fields that are written by the reasoning step (or depend on it) and so are not part of its input.
OUTPUT_FIELDS = ("reasoning", "response", "reasoning_info", "content_hash")

SCHEMA = """
CREATE TABLE IF NOT EXISTS chains (
    key TEXT PRIMARY KEY,
    sample_id TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    reply TEXT,
    info TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_without_none(v) for v in value]
    return value


def draft_hash(draft: Draft) -> str:
    """The sha256 (hex) of what a request is made of: the draft's sample fields (no reasoning outputs, no nulls,
    so a draft rebuilt from a written shard hashes the same as at build time) and its media bytes."""
    digest = hashlib.sha256()
    sample = _without_none({k: v for k, v in draft.sample.items() if k not in OUTPUT_FIELDS})
    digest.update(json.dumps(sample, sort_keys=True, default=str).encode())
    for name in sorted(draft.media_files):
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256(draft.media_files[name]).digest())
    return digest.hexdigest()


def cache_key(content: str, prompt_version: str, model: str, settings: dict[str, Any]) -> str:
    """The cache key (hex sha256) of a sample content hash, a prompt version, a model and request settings."""
    parts = [content, prompt_version, model, json.dumps(settings, sort_keys=True, default=str)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class ChainCache:
    """Reads and writes cached chains; safe to share between threads of one process and between processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)

    def get(self, key: str) -> tuple[str | None, dict[str, Any]] | None:
        """The (reply, info) stored under `key`, or None."""
        with self._lock:
            row = self._db.execute("SELECT reply, info FROM chains WHERE key = ?", (key,)).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def put(self, key: str, sample_id: str, reply: str | None, info: dict[str, Any]) -> None:
        """Store (and commit at once) the final reply of a sample and its reasoning info."""
        values = (
            key,
            sample_id,
            info.get("model", ""),
            info.get("prompt_version", ""),
            reply,
            json.dumps(info),
        )
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO chains (key, sample_id, model, prompt_version, reply, info, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*values, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM chains").fetchone()[0]

    def sample_ids(self) -> set[str]:
        """The ids of every sample with a stored chain."""
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT sample_id FROM chains")}

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
