"""`avuie build --out s3://bucket/avuie`: build into a local staging copy of the remote folder, then upload.

The staging copy is avuie's cache folder of the URL (`<cache>/out/<hash>`, shards/sync.py), so a rerun on the same
machine finds its staged pieces and committed shards there. Around a build:

1. **Finish** an earlier upload that was cut short: local files changed since their last sync are uploaded first
   (in the order below).
2. **Pull** what the remote has that the copy lacks or holds older: every file but the tars, then the tars of the
   source being built (the build reuses their samples, and rebuilds a shard whose tar is missing); files the
   remote no longer has leave the copy. Other sources' tars are never downloaded.
3. **Build** into the copy: the usual owned folder, staged pieces and one local commit (docs/BUILD.md).
4. **Push** the changes in an order that never shows a reader a shard without its bytes: the tars (each uploaded
   whole: an object appears complete or not at all), then the shard markers, then the source records and other
   files, then manifest.parquet, rejects.parquet, stats.json and build.json; deletions last (markers before their
   tars), and only of files the local commit deleted (tars and markers its own markers listed).

A rerun against the same URL skips every shard that is already there. One machine writes a given URL at a time
(the build's lock lives in the local copy).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avuie.shards.layout import (
    BUILD_INFO,
    DONE_SUFFIX,
    MANIFEST,
    REJECTS,
    SHARDS_DIR,
    STATS,
    TAR_SUFFIX,
    WORK_DIR,
    list_done,
    marker_source,
)
from avuie.shards.sync import (
    SYNC_INDEX,
    Remote,
    SyncIndex,
    cache_dir,
    local_stamp,
    open_fs,
    pull,
    remote_files,
    remote_of,
)

Notify = Callable[[str], None]
DERIVED = (MANIFEST, REJECTS, STATS, BUILD_INFO)


def _is_tar(rel: str) -> bool:
    return rel.startswith(SHARDS_DIR + "/") and rel.endswith(TAR_SUFFIX)


def _rank(rel: str) -> int:
    """Upload order: tars, markers, other files, derived files."""
    if _is_tar(rel):
        return 0
    if rel.endswith(DONE_SUFFIX):
        return 1
    return 3 if rel in DERIVED else 2


def _local_files(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    rels = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sorted(r for r in rels if not r.startswith(WORK_DIR + "/") and r != SYNC_INDEX)


def push(fs: Any, root: str, folder: Path) -> dict[str, int]:
    """Upload the files of `folder` changed since their last sync, then delete the remote files the copy no
    longer has (see the module docstring for the order); return {"uploaded": n, "deleted": n}."""
    index = SyncIndex(folder)
    changed = [r for r in _local_files(folder) if not index.same(r, local_stamp(folder / r), None)]
    gone = [r for r in index.entries if not (folder / r).exists()]
    try:
        for rel in sorted(changed, key=lambda r: (_rank(r), r)):
            target = f"{root}/{rel}"
            stamp = local_stamp(folder / rel)
            fs.put_file(str(folder / rel), target)
            index.record(rel, stamp, remote_of(fs.info(target)))
            index.save()
        for rel in sorted(gone, key=lambda r: ((_rank(r) + 3) % 4, r)):  # markers first, tars last
            if fs.exists(f"{root}/{rel}"):
                fs.rm_file(f"{root}/{rel}")
            index.forget(rel)
    finally:
        index.save()
    return {"uploaded": len(changed), "deleted": len(gone)}


def _source_tars(folder: Path, source: str) -> set[str]:
    tars = set()
    for marker in list_done(folder):
        try:
            done = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        if marker_source(marker, done) == source:
            tars |= {(marker.parent / t).relative_to(folder).as_posix() for t in done.get("tars", [])}
    return tars


def _drop_removed(folder: Path, files: dict[str, Remote]) -> None:
    """Files synced before that the remote no longer has, and that did not change here since, leave the copy."""
    index = SyncIndex(folder)
    for rel in list(index.entries):
        if rel not in files and index.same(rel, local_stamp(folder / rel), None):
            (folder / rel).unlink(missing_ok=True)
            index.forget(rel)
    index.save()


def pull_for_build(fs: Any, root: str, folder: Path, source: str) -> None:
    """Bring the remote state into the copy: every file but tars, then the tars of `source`'s markers."""
    files = remote_files(fs, root)
    _drop_removed(folder, files)
    pull(fs, root, folder, lambda rel: not _is_tar(rel) and not rel.startswith(WORK_DIR + "/"), files)
    pull(fs, root, folder, _source_tars(folder, source).__contains__, files)


def staging_folder(url: str) -> Path:
    """The local staging copy of a remote output URL."""
    return cache_dir("out", url)


def build_remote(
    url: str, source: str, run: Callable[[Path], dict[str, Any]], notify: Notify | None = None
) -> dict:
    """Build `source` into the remote folder `url`: `run(local_folder)` builds into the staging copy (see the
    module docstring); return its stats with `upload` counts added."""
    fs, root = open_fs(url)
    folder = staging_folder(url)
    folder.mkdir(parents=True, exist_ok=True)
    if notify:
        notify(f"{source}: building into {url} through the local copy {folder}")
    finished = push(fs, root, folder)
    if finished["uploaded"] and notify:
        notify(f"{source}: finished an earlier upload to {url} ({finished['uploaded']} files)")
    pull_for_build(fs, root, folder, source)
    stats = run(folder)
    sent = push(fs, root, folder)
    if notify:
        notify(f"{source}: uploaded {sent['uploaded']} files to {url}, deleted {sent['deleted']} it replaced")
    return {**stats, "upload": sent}
