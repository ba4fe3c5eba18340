"""A node-local shard cache: whole shards fetched once (one request each), checked against their sha256, shared.

`ShardCache(folder, max_bytes).local_copy(shard, reader)` returns the path of a verified local copy of a remote
shard, downloading it first when needed, so that a second epoch, a second DataLoader worker or a second rank on the
same machine reads it from local disk. Entries are named `avuie-shard-<sha256>.tar`, by content: a shard that
changes on the server gets a new entry and the old one ages out. A download is written to a temporary name, hashed
on the way, compared with the sha256 the source advertises (the server's /index.json, or a marker's tars_info)
and only then renamed into place; a mismatch raises ValueError and leaves nothing behind. Processes coordinate
through a lock file per entry (one downloads, the others wait and reuse it). The least recently used entries are
deleted to keep the folder's entries under max_bytes; the cache only ever deletes files it names itself.
Shards without a known sha256, or larger than max_bytes, are not cached (they are read with ranged requests).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

PREFIX = "avuie-shard-"
_ENTRY = re.compile(r"^avuie-shard-[0-9a-f]{64}\.tar$")
_PART = re.compile(r"^\.avuie-shard-[0-9a-f]{64}\.tar\.\d+\.part$")
STALE_PART_SECONDS = 600  # a download untouched this long was left by a killed process


class _HashingWriter:
    """A binary file wrapper that hashes everything written through it."""

    def __init__(self, raw):
        self.raw, self.digest = raw, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.raw.write(data)

    def seek(self, offset: int) -> int:
        if offset != 0:
            raise ValueError("only a restart from the beginning is supported")
        self.digest = hashlib.sha256()
        return self.raw.seek(0)

    def truncate(self) -> int:
        return 0  # the file keeps its reserved size; a restart overwrites it from the start


class ShardCache:
    """Whole-shard copies under folder, at most max_bytes of them (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike, max_bytes: int):
        if max_bytes <= 0:
            raise ValueError(f"cache_bytes must be > 0, not {max_bytes}")
        self.folder, self.max_bytes = Path(folder), int(max_bytes)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.downloads = 0
        self._known: dict[str, Path] = {}

    def __getstate__(self):
        return {"folder": self.folder, "max_bytes": self.max_bytes}

    def __setstate__(self, state):
        self.__init__(state["folder"], state["max_bytes"])

    def cacheable(self, shard) -> bool:
        """True when a shard is remote, has a known sha256 and byte size, and fits in the cache."""
        sha, size = shard.scan.sha256, shard.scan.num_bytes
        return (
            shard.transport != "local"
            and isinstance(sha, str)
            and re.fullmatch(r"[0-9a-f]{64}", sha) is not None
            and 0 < size <= self.max_bytes
        )

    def local_copy(self, shard, reader) -> Path | None:
        """Return the path of a verified local copy of shard (downloading it once), or None when not cacheable."""
        if not self.cacheable(shard):
            return None
        sha = shard.scan.sha256
        path = self._known.get(sha)
        if path is not None and path.exists():
            return path
        path = self.folder / f"{PREFIX}{sha}.tar"
        with _Locked(self.folder / f".{PREFIX}{sha}.lock"):
            with _Locked(self.folder / f".{PREFIX}cache.lock"):  # no eviction between the check and the touch
                if _touch(path, shard.scan.num_bytes):
                    self._known[sha] = path
                    return path
                if not self._make_room(shard.scan.num_bytes):
                    return None  # other downloads hold the room now: read this shard with ranges
                partial = path.with_name(f".{path.name}.{os.getpid()}.part")
                with open(partial, "wb") as reserve:
                    reserve.truncate(shard.scan.num_bytes)  # counted by other processes' _make_room
            self._download(shard, reader, path, partial)
        self._known[sha] = path
        return path

    def holds(self, shard) -> bool:
        """True when this process has already found or made a verified copy of shard."""
        return shard.scan.sha256 in self._known

    def forget(self, shard) -> None:
        """Drop what this process remembers about shard's copy (after another process deleted it)."""
        self._known.pop(shard.scan.sha256, None)

    def _download(self, shard, reader, path: Path, partial: Path) -> None:
        try:
            with open(partial, "r+b") as raw:
                writer = _HashingWriter(raw)
                size = reader.download(shard, writer)
                raw.truncate(size)
            digest = writer.digest.hexdigest()
            if digest != shard.scan.sha256 or size != shard.scan.num_bytes:
                raise ValueError(
                    f"{shard.location}: downloaded {size} bytes with sha256 {digest}, but the source "
                    f"advertises {shard.scan.num_bytes} bytes with sha256 {shard.scan.sha256} (changed on the "
                    "server? rerun to read its new index)"
                )
            # Under the cache lock: a listing by another thread's or process's _make_room never falls between the
            # part's name and the entry's (seeing neither would undercount the folder and overfill it).
            with _Locked(self.folder / f".{PREFIX}cache.lock"):
                os.replace(partial, path)
                os.utime(path)  # most recently used
            self.downloads += 1
        finally:
            partial.unlink(missing_ok=True)

    def entries(self) -> tuple[list[tuple[float, int, Path]], int]:
        """Return (last use, bytes, path) of every entry, least recently used first, and the bytes reserved by
        downloads in progress (stale ones, left by killed processes, are deleted)."""
        found, reserved = [], 0
        for path in self.folder.iterdir():
            entry, part = _ENTRY.match(path.name), _PART.match(path.name)
            if not (entry or part):
                continue
            try:
                stat = path.stat()
                if part and time.time() - stat.st_mtime > STALE_PART_SECONDS:
                    path.unlink()
                    continue
            except FileNotFoundError:  # finished or deleted by another process meanwhile
                continue
            if entry:
                found.append((stat.st_mtime, stat.st_size, path))
            else:
                reserved += stat.st_size
        return sorted(found), reserved

    def _make_room(self, needed: int) -> bool:
        """Delete least recently used entries until `needed` more bytes fit under max_bytes; False when even
        then they do not (downloads in progress hold the room)."""
        entries, total = self.entries()
        total += sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total + needed <= self.max_bytes:
                break
            path.unlink(missing_ok=True)  # a reader holding it open keeps reading (POSIX)
            total -= size
        return total + needed <= self.max_bytes


def _touch(path: Path, size: int) -> bool:
    """Mark an entry of the expected size most recently used; False when there is none (or a torn one)."""
    try:
        if path.stat().st_size != size:
            return False
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


class _Locked:
    """An exclusive advisory lock on a file (fcntl; a no-op where fcntl is missing), as a context manager."""

    def __init__(self, path: Path):
        self.path, self.handle = path, None

    def __enter__(self):
        self.handle = open(self.path, "a+b")
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.handle.close()  # closing releases the lock
