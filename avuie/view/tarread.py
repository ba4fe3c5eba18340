"""Read one sample, or one member of it, out of a shard by byte range, never the whole tar.

A shard's table (the `.done.json` marker's "tars_info" when it matches the tar's size, else a header-seeking scan)
gives each sample's byte range; inside that range the member headers give each file's offset and size. A page
then reads only what it shows: the JSON, one frame for a thumbnail, one mask. Tables and member maps are cached
per (tar path, size, mtime), so a rewritten shard (`review apply`) is read afresh.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from avuie.shards.index import read_done, scan_local, table_from_done
from avuie.shards.members import is_packed, plan, read_sample

THUMB_PX = 120
MEDIA_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "mp4": "video/mp4",
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
}


class SampleMissing(LookupError):
    """The sample or member asked for is not in the shard (or the shard is gone)."""


@dataclass(frozen=True)
class Member:
    """One file of a sample: its absolute data offset in the tar and its size in bytes. A file inside a packed
    container (shards/members.py) may lie in several pieces and start with a few bytes of its own (`prefix`)."""

    offset: int
    size: int
    pieces: tuple[tuple[int, int], ...] = ()
    prefix: bytes = b""


class _Window(io.RawIOBase):
    """A read-only, seekable file object over bytes [start, end) of an open file descriptor (pread)."""

    def __init__(self, fd: int, start: int, end: int):
        super().__init__()
        self.fd, self.start, self.end, self.pos = fd, start, end, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.end - self.start}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self.end - self.start - self.pos)
        if want <= 0:
            return 0
        data = os.pread(self.fd, want, self.start + self.pos)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


class _Lru(OrderedDict):
    """A small least-recently-used dict (thread safety is the caller's lock)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class ShardPages:
    """Byte-range access to the samples of local shards, with small caches of tables and member maps."""

    def __init__(self, tables: int = 256, samples: int = 4096, thumbs: int = 2048):
        self._tables, self._members, self._thumbs = _Lru(tables), _Lru(samples), _Lru(thumbs)
        self._lock = threading.Lock()

    @staticmethod
    def _signature(tar: Path) -> tuple[str, int, int]:
        try:
            stat = tar.stat()
        except OSError as error:
            raise SampleMissing(f"{tar.name}: shard not readable ({error.strerror})") from error
        return str(tar), stat.st_size, stat.st_mtime_ns

    def sample_range(self, tar: Path, key: str) -> tuple[int, int]:
        """Return the byte range [start, end) of sample `key` in tar; raises SampleMissing."""
        sig = self._signature(tar)
        with self._lock:
            table = self._tables.get(sig)
        if table is None:
            scan = table_from_done(read_done(tar), tar.name)
            if scan is None or scan.num_bytes != sig[1]:
                scan = scan_local(tar)
            table = {entry.key: (entry.start, entry.end) for entry in scan.samples}
            with self._lock:
                self._tables.put(sig, table)
        if key not in table:
            raise SampleMissing(f"no sample {key!r} in {tar.name}")
        return table[key]

    def members(self, tar: Path, key: str) -> dict[str, Member]:
        """Return {extension: Member} of sample `key` (e.g. "json", "frame_00.jpg"), read from its headers; the
        files of a packed sample are located inside its containers (shards/members.py `plan`)."""
        sig = self._signature(tar)
        with self._lock:
            found = self._members.get((sig, key))
        if found is not None:
            return found
        start, end = self.sample_range(tar, key)
        stored: dict[str, tuple[int, int]] = {}
        with open(tar, "rb") as handle, tarfile.open(fileobj=_Window(handle.fileno(), start, end)) as window:
            for info in window:
                base = info.name.rsplit("/", 1)[-1]
                member_key, _, ext = base.partition(".")
                if info.isfile() and member_key == key and ext:
                    stored[ext] = (start + info.offset_data, info.size)
            found = {ext: Member(*span) for ext, span in stored.items()}
            if is_packed(stored) and "json" in stored:
                found = {"json": found["json"], **self._unpacked(handle.fileno(), stored)}
        with self._lock:
            self._members.put((sig, key), found)
        return found

    @staticmethod
    def _unpacked(fd: int, stored: dict[str, tuple[int, int]]) -> dict[str, Member]:
        def read(offset: int, size: int) -> bytes:
            return os.pread(fd, size, offset)

        sample = read_sample(read(*stored["json"]))
        try:
            located = plan(sample, stored, read)
        except ValueError as error:
            raise SampleMissing(f"sample {sample.get('key')!r}: {error}") from error
        return {
            name: Member(pieces[0][0], sum(s for _, s in pieces), tuple(pieces), prefix)
            for name, (prefix, pieces) in located.items()
        }

    def read(self, tar: Path, key: str, ext: str) -> bytes:
        """Return the bytes of one member (`ext` as in `members`); raises SampleMissing when it is absent."""
        member = self.members(tar, key).get(ext)
        if member is None:
            raise SampleMissing(f"sample {key!r} has no member {ext!r}")
        with open(tar, "rb") as handle:
            pieces = member.pieces or ((member.offset, member.size),)
            return member.prefix + b"".join(
                os.pread(handle.fileno(), size, offset) for offset, size in pieces
            )

    def sample(self, tar: Path, key: str) -> dict:
        """Return the sample JSON of `key` in its model_dump form (either stored shape, schemas/ondisk.py)."""
        return read_sample(self.read(tar, key, "json"))

    def thumbnail(self, tar: Path, key: str, ext: str, px: int = THUMB_PX) -> bytes:
        """Return a JPEG of member `ext` (an image) scaled to fit px x px, cached."""
        from PIL import Image

        cache_key = (self._signature(tar), key, ext, px)
        with self._lock:
            cached = self._thumbs.get(cache_key)
        if cached is not None:
            return cached
        with Image.open(io.BytesIO(self.read(tar, key, ext))) as image:
            image = image.convert("RGB")
            image.thumbnail((px, px))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
        data = buffer.getvalue()
        with self._lock:
            self._thumbs.put(cache_key, data)
        return data


def media_type(ext: str) -> str:
    """Return the HTTP content type of a member extension such as "frame_00.jpg" or "audio.wav"."""
    return MEDIA_TYPES.get(ext.rsplit(".", 1)[-1].lower(), "application/octet-stream")
