"""Local copies of object-storage trees (any fsspec URL: `s3://bucket/prefix`, `gs://...`, `memory://...`).

avuie reads and writes builds as local folders; a remote tree is used through a local copy in avuie's cache
folder (`$AVUIE_CACHE`, else `$XDG_CACHE_HOME/avuie`, else `~/.cache/avuie`), one folder per URL:

- `remote_files(url)` lists a tree: relative path -> `Remote(size, stamp)` (the stamp is the object's ETag, or
  its modification time, so a replaced object is noticed even at the same size).
- `download(fs, path, dest, remote)` writes a file whole (a temporary name, then a rename) with the remote's
  modification time; `placeholder(dest, remote)` stands in for a file not fetched yet (a sparse file of the
  remote size and time, which costs no disk).
- `SyncIndex` remembers, per relative path, the local file (`size:mtime_ns`) and the remote object (stamp) they
  were last equal at, so a sync moves only what changed on either side.
- `local_copy(url)` brings a whole remote build (or folder of builds) down for the commands that read every byte
  (`validate`, `export`, `serve`): only new or changed objects are fetched, and files the remote no longer has go.

Credentials and endpoints come from the usual places of the filesystem's package (for s3: `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL`, `~/.aws`), or from fsspec's `FSSPEC_S3='{"key": ...}'`.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from avuie.shards.layout import WORK_DIR

# The folder of a copy that is avuie's own bookkeeping, never part of the tree.
SYNC_INDEX = ".avuie-sync.json"


def is_url(text: str | Path | None) -> bool:
    """True for a remote URL (`s3://...`); False for a local path, `file://` URL or None."""
    if text is None or isinstance(text, Path):
        return False
    scheme, sep, _ = str(text).partition("://")
    return bool(sep) and scheme.lower() not in ("", "file", "local")


def open_fs(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) of a URL, with no listing cached from an earlier call (the objects may
    have changed since); ValueError naming the package a protocol needs."""
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(str(url).rstrip("/"))
        fs.invalidate_cache()
        return fs, path
    except ImportError as exc:
        raise ValueError(f"cannot open {url}: {exc} (install the filesystem's package, e.g. s3fs)") from exc
    except ValueError as exc:
        raise ValueError(f"cannot open {url}: {exc}") from exc


def cache_root() -> Path:
    """avuie's cache folder (see the module docstring)."""
    if os.environ.get("AVUIE_CACHE"):
        return Path(os.environ["AVUIE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "avuie"


def cache_dir(kind: str, url: str) -> Path:
    """The cache folder of one URL for one use (`raw`, `media`, `out`, `read`): `<cache>/<kind>/<hash>`."""
    key = hashlib.sha256(str(url).rstrip("/").encode()).hexdigest()[:20]
    return cache_root() / kind / key


@dataclass(frozen=True)
class Remote:
    """One remote object: its size, modification time (ns, 0 when unknown) and stamp (ETag, else the time)."""

    size: int
    mtime_ns: int
    stamp: str


def _mtime_ns(info: dict[str, Any]) -> int:
    value = info.get("mtime", info.get("LastModified", info.get("last_modified", info.get("updated"))))
    if isinstance(value, datetime):
        return int(value.timestamp() * 1e9)
    if isinstance(value, (int, float)):
        return int(value * 1e9)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
        except ValueError:
            return 0
    return 0


def remote_of(info: dict[str, Any]) -> Remote:
    """The `Remote` of an fsspec info dict."""
    mtime = _mtime_ns(info)
    stamp = str(info.get("ETag") or info.get("etag") or info.get("md5Hash") or mtime).strip('"')
    return Remote(int(info.get("size") or 0), mtime, f"{info.get('size')}:{stamp}")


def remote_files(fs: Any, root: str) -> dict[str, Remote]:
    """Every file under `root` (relative POSIX path -> Remote); {} when there is none."""
    root = root.rstrip("/")
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        return {}
    out = {}
    for path, info in found.items():
        if info.get("type", "file") != "file" or not path.startswith(root + "/"):
            continue
        out[path[len(root) + 1 :]] = remote_of(info)
    return out


def local_stamp(path: Path) -> str | None:
    """`size:mtime_ns` of a local file, or None when it is missing."""
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def _set_time(path: Path, mtime_ns: int) -> None:
    os.utime(path, ns=(mtime_ns, mtime_ns))  # 0 (unknown) too: the same remote gives the same local time


def download(fs: Any, path: str, dest: Path, remote: Remote) -> None:
    """Fetch one object whole into `dest` (temporary name, size checked, remote time set, then renamed)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        fs.get_file(path, str(tmp))
        got = tmp.stat().st_size
        if got != remote.size:
            raise OSError(f"{path}: fetched {got} bytes, the object has {remote.size}")
        _set_time(tmp, remote.mtime_ns)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def placeholder(dest: Path, remote: Remote) -> None:
    """A sparse stand-in for an object not fetched yet: the remote size and modification time, no data."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as fh:
        fh.truncate(remote.size)
    _set_time(dest, remote.mtime_ns)


class SyncIndex:
    """Per relative path: the local `size:mtime_ns` and remote stamp at which the two last held the same bytes."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / SYNC_INDEX
        try:
            self.entries: dict[str, list[str]] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.entries = {}

    def same(self, rel: str, local: str | None, remote: Remote | None) -> bool:
        """The local file and remote object are the pair last recorded as equal."""
        entry = self.entries.get(rel)
        return entry is not None and entry[0] == local and (remote is None or entry[1] == remote.stamp)

    def record(self, rel: str, local: str | None, remote: Remote) -> None:
        """Record that the local file and the remote object now hold the same bytes."""
        if local is not None:
            self.entries[rel] = [local, remote.stamp]

    def forget(self, rel: str) -> None:
        """Drop a path (deleted on both sides)."""
        self.entries.pop(rel, None)

    def save(self) -> None:
        """Write the index (temporary name, then rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.entries, sort_keys=True))
        os.replace(tmp, self.path)


def pull(
    fs: Any, root: str, folder: Path, wanted: Callable[[str], bool], files: dict[str, Remote] | None = None
) -> dict[str, Remote]:
    """Bring the remote files `wanted(rel)` selects into `folder` (only new or changed ones); return the listing."""
    files = remote_files(fs, root) if files is None else files
    index = SyncIndex(folder)
    try:
        for rel, remote in sorted(files.items()):
            dest = folder / rel
            if not wanted(rel) or index.same(rel, local_stamp(dest), remote):
                continue
            download(fs, f"{root.rstrip('/')}/{rel}", dest, remote)
            index.record(rel, local_stamp(dest), remote)
    finally:
        index.save()
    return files


def _local_files(folder: Path, skip: Iterable[str]) -> set[str]:
    skip = set(skip)
    out = set()
    for dirpath, dirnames, filenames in os.walk(folder):
        rel_dir = Path(dirpath).relative_to(folder)
        dirnames[:] = [d for d in dirnames if (rel_dir / d).as_posix() not in skip]
        out |= {(rel_dir / f).as_posix() for f in filenames if (rel_dir / f).as_posix() not in skip}
    return out


def local_copy(url: str, notify: Callable[[str], None] | None = None) -> Path:
    """A local copy of the remote tree at `url` (kept in the cache; a second call fetches only what changed and
    drops what the remote no longer has); FileNotFoundError when nothing is there."""
    fs, root = open_fs(url)
    files = remote_files(fs, root)
    if not files:
        raise FileNotFoundError(f"nothing at {url}")
    folder = cache_dir("read", url)
    if notify:
        notify(f"reading {url} through a local copy in {folder}")
    pull(fs, root, folder, lambda rel: not rel.startswith(WORK_DIR + "/"), files)
    index = SyncIndex(folder)
    for rel in _local_files(folder, [SYNC_INDEX]) - set(files):
        (folder / rel).unlink()
        index.forget(rel)
    index.save()
    return folder
