"""The layout of a build folder: the one place that names, parses and lists shards, their parts and markers.

```
OUT/                                   one build (one source)
  build.json  stats.json               what was built and how; counts (in = written + rejected)
  manifest.parquet  rejects.parquet    one row per written sample / per reject
  shards/<split>/<shard>.tar           part 0 of a shard; <shard> = <source>-<split>-<NNNNN>
  shards/<split>/<shard>-<k>.tar       part k >= 1, when a shard outgrew --shard-bytes
  shards/<split>/<shard>.done.json     the shard's completion marker, written after its tars
```
A file being written is `<name>.tmp` beside its final name until an atomic rename. The manifest's `shard` column
holds a tar's path relative to OUT (`shards/<split>/<tar>`). Everything here is plain string and path work.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

SHARDS_DIR = "shards"
TAR_SUFFIX = ".tar"
DONE_SUFFIX = ".done.json"
TMP_SUFFIX = ".tmp"
MANIFEST = "manifest.parquet"
REJECTS = "rejects.parquet"
STATS = "stats.json"
BUILD_INFO = "build.json"


def shard_name(source: str, split: str, number: int) -> str:
    """The name of shard `number` of a split: `<source>-<split>-<NNNNN>`."""
    return f"{source}-{split}-{number:05d}"


def part_name(shard: str, part: int) -> str:
    """The tar file name of part `part` of a shard: `<shard>.tar` for part 0, else `<shard>-<part>.tar`."""
    return f"{shard}{TAR_SUFFIX}" if part == 0 else f"{shard}-{part}{TAR_SUFFIX}"


def done_name(shard: str) -> str:
    """The file name of a shard's completion marker: `<shard>.done.json`."""
    return shard + DONE_SUFFIX


def tmp_path(path: str | os.PathLike) -> Path:
    """Where a file is written before its atomic rename to `path`: `<path>.tmp`."""
    path = Path(path)
    return path.with_name(path.name + TMP_SUFFIX)


def split_dir(out: str | os.PathLike, split: str) -> Path:
    """The folder holding a split's tars and markers: `OUT/shards/<split>`."""
    return Path(out) / SHARDS_DIR / split


def shard_rel(split: str, tar_name: str) -> str:
    """A tar's path relative to its build (the manifest's `shard` column): `shards/<split>/<tar>`."""
    return f"{SHARDS_DIR}/{split}/{tar_name}"


def shard_of_done(marker: str | os.PathLike) -> str:
    """The shard name a completion marker belongs to (its file name without `.done.json`)."""
    return Path(marker).name.removesuffix(DONE_SUFFIX)


def done_candidates(tar_name: str) -> list[str]:
    """Names of the completion markers that may cover a tar, best first.

    A build writes `<shard>.done.json` for shard `<shard>`, whose tars are `<shard>.tar`, `<shard>-1.tar`, ...
    (listed under "tars"), so `x-1.tar` is covered by `x-1.done.json` or else by `x.done.json`.
    """
    stem = tar_name.removesuffix(TAR_SUFFIX)
    names = [done_name(stem)]
    if re.search(r"-\d+$", stem):
        names.append(done_name(stem.rsplit("-", 1)[0]))
    return names


def build_of_tar(tar: str | os.PathLike) -> Path:
    """The build folder of a tar at `OUT/shards/<split>/<tar>`: OUT."""
    return Path(tar).parent.parent.parent


def list_done(out: str | os.PathLike) -> list[Path]:
    """Every shard completion marker of one build, in a stable (sorted) order."""
    return sorted(Path(out).glob(f"{SHARDS_DIR}/*/*{DONE_SUFFIX}"))


def list_tars(out: str | os.PathLike) -> list[Path]:
    """Every finished tar of one build (`shards/*/*.tar`; never a `.tmp`), sorted."""
    return sorted(Path(out).glob(f"{SHARDS_DIR}/*/*{TAR_SUFFIX}"))


def find_shards(root: str | os.PathLike) -> list[Path]:
    """Return every finished shard (`**/*.tar`, never `*.tar.tmp`) under root, sorted by relative path.

    root may also be one .tar file. Raises FileNotFoundError when root does not exist.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"no such build directory or shard: {root}")
    return sorted(
        (p for p in root.rglob(f"*{TAR_SUFFIX}") if p.is_file()), key=lambda p: p.relative_to(root).as_posix()
    )


def find_manifests(root: str | os.PathLike) -> list[Path]:
    """Return every `manifest.parquet` at or under root (one per build), sorted."""
    return sorted(Path(root).rglob(MANIFEST))


def temp_files(directory: str | os.PathLike) -> Iterator[Path]:
    """Every `*.tmp` file or folder at any depth under `directory` (leftovers of a killed writer)."""
    return Path(directory).rglob(f"*{TMP_SUFFIX}")
