"""A remote raw root (`--raw s3://bucket/AVE_Dataset`): builders read a local mirror, media are fetched where
they are cut.

Builders take a local Path and look at the tree as they find it (they list folders, test which files exist and
read annotation files). For a remote raw root the driver makes a mirror in avuie's cache (`<cache>/raw/<hash>`,
shards/sync.py): every annotation file (anything that is not a media file) is downloaded, and every media file is
a placeholder with the remote size and modification time (a sparse file: no transfer, no disk), so builders and
the record digests (build/plan.py) see the tree as it is, and records name their media under the mirror.

`cut_records` runs where media are cut (the driver for the local executor, a worker for Ray): it fetches each
media file a record names into that machine's media cache (`<cache>/media/<hash>/...`; whole files, reused while
the remote object is unchanged), cuts from there, then writes every `source_path` of the sample (and any path in
a reject's detail) as the remote URL. A sample is thus the same bytes whichever machine cut it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from avuie.build.assemble import Prepared, prepare
from avuie.build.config import BuildConfig
from avuie.build.engines import BuildRequestError
from avuie.builders import Builder, Record
from avuie.shards.sync import (
    SYNC_INDEX,
    cache_dir,
    download,
    local_stamp,
    open_fs,
    placeholder,
    pull,
    remote_files,
    remote_of,
)

MEDIA_EXTENSIONS = frozenset(
    ".mp4 .mkv .avi .webm .mov .flv .m4v .mpg .mpeg .wav .mp3 .flac .m4a .aac .ogg .opus "
    ".jpg .jpeg .png .bmp .gif".split()
)

Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]


def is_media(rel: str) -> bool:
    """A media file (fetched when cut) rather than an annotation file (mirrored for the builder)."""
    return os.path.splitext(rel)[1].lower() in MEDIA_EXTENSIONS


def mirror_raw(url: str) -> Path:
    """The local mirror of a remote raw root (see the module docstring), made or brought up to date; files the
    remote no longer has leave it. BuildRequestError when the URL cannot be opened or nothing is there."""
    try:
        fs, root = open_fs(url)
    except ValueError as exc:
        raise BuildRequestError(str(exc), param_hint="--raw") from exc
    files = remote_files(fs, root)
    if not files:
        raise BuildRequestError(
            f"nothing at {url} (check the URL and the storage credentials)", param_hint="--raw"
        )
    folder = cache_dir("raw", url)
    pull(fs, root, folder, lambda rel: not is_media(rel), files)
    for rel, remote in files.items():
        dest = folder / rel
        if is_media(rel) and local_stamp(dest) != f"{remote.size}:{remote.mtime_ns}":
            placeholder(dest, remote)
    for dirpath, _, names in os.walk(folder):
        for name in names:
            rel = (Path(dirpath) / name).relative_to(folder).as_posix()
            if rel not in files and rel != SYNC_INDEX:
                (folder / rel).unlink()
    return folder


class MediaFetcher:
    """Fetches the media of records named under the mirror of `url` into this machine's media cache."""

    def __init__(self, url: str, mirror: Path) -> None:
        self.url, self.mirror = url.rstrip("/"), Path(mirror)
        self.folder = cache_dir("media", self.url)
        self.fs, self.root = open_fs(self.url)

    def local(self, path: Path) -> Path:
        """The local file to cut for mirror path `path`, fetched when missing or changed (paths outside the
        mirror are kept; a file the remote lacks stays missing, so the record becomes a `missing_file` reject)."""
        try:
            rel = Path(path).relative_to(self.mirror).as_posix()
        except ValueError:
            return Path(path)
        dest = self.folder / rel
        try:
            remote = remote_of(self.fs.info(f"{self.root}/{rel}"))
        except FileNotFoundError:
            return dest
        if local_stamp(dest) != f"{remote.size}:{remote.mtime_ns}":
            download(self.fs, f"{self.root}/{rel}", dest, remote)
        return dest

    def localize(self, record: Record) -> Record:
        """The record with each media file fetched and named by its local copy."""
        return dataclasses.replace(
            record, media=[dataclasses.replace(m, path=self.local(m.path)) for m in record.media]
        )

    def _url(self, text: str) -> str:
        for root in (str(self.folder), str(self.mirror)):
            text = text.replace(root + "/", self.url + "/")
        return text

    def relocate(self, prepared: Prepared, record: Record) -> Prepared:
        """`prepared` (cut from local copies) with the driver's record and every local path written as its URL."""
        prepared.record = record
        if prepared.draft is not None:
            for item in prepared.draft.sample.get("media", []):
                if item.get("source_path"):
                    item["source_path"] = self._url(item["source_path"])
        if prepared.reject is not None:
            prepared.reject = dataclasses.replace(prepared.reject, detail=self._url(prepared.reject.detail))
        return prepared


def cut_records(
    builder: Builder, records: list[Record], config: BuildConfig, mapper: Mapper = map
) -> list[Prepared]:
    """Cut the media of `records` and make their drafts (in order; `mapper` is `map` or a pool's map); records
    of a remote raw root have their media fetched first (see the module docstring)."""
    if not config.raw_url:
        return list(mapper(lambda r: prepare(builder, r, config), records))
    fetcher = MediaFetcher(config.raw_url, Path(config.raw))
    local = dataclasses.replace(config, raw=fetcher.folder, raw_url=None)
    return list(mapper(lambda r: fetcher.relocate(prepare(builder, fetcher.localize(r), local), r), records))
