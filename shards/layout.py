"""The layout of a build folder: the one place that names, parses and lists shards, their parts and markers.

```
OUT/                                   one build (one source)
  build.json  stats.json               what was built and how; counts (in = written + rejected)
  manifest.parquet  rejects.parquet    one row per written sample / per reject
  shards/<split>/<shard>.tar           part 0 of a shard; <shard> = <source>-<split>-<NNNNN>
  shards/<split>/<shard>-<k>.tar       part k >= 1, when a shard outgrew --shard-bytes
  shards/<split>/<shard>.done.json     the shard's completion marker, written after its tars
  sources/<source>.json                what each source's build recorded (entry rejects, settings, counters)
  .avuie-tmp/                          the builds' own working folder: locks, staged files, journals
```
An OUT may hold several sources: their shards share `shards/<split>/` (names start with the source), and
manifest, rejects, stats and build.json cover every source (stats and build.json keep one source's shape when
OUT holds one source, else `{"sources": {name: ...}}`: see `per_source`). avuie writes only inside
`.avuie-tmp/` until a commit moves staged files into place (shards/txn.py); nothing else under OUT is ever
globbed for deletion. The manifest's `shard` column holds a tar's path relative to OUT (`shards/<split>/<tar>`).
Everything here is plain string and path work.
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
SOURCES_DIR = "sources"
WORK_DIR = ".avuie-tmp"
STAGED_SUFFIX = ".staged"
JOURNAL_PREFIX = "journal-"
LOCKS_DIR = "locks"
COMMIT_LOCK = "commit"


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
        (p for p in root.rglob(f"*{TAR_SUFFIX}") if p.is_file() and not in_work_dir(p, root)),
        key=lambda p: p.relative_to(root).as_posix(),
    )


def find_manifests(root: str | os.PathLike) -> list[Path]:
    """Return every `manifest.parquet` at or under root (one per build), sorted."""
    return sorted(p for p in Path(root).rglob(MANIFEST) if not in_work_dir(p, root))


def temp_files(out: str | os.PathLike) -> Iterator[Path]:
    """Leftovers of a killed writer: `*.tmp` files in a build's working folder (never anywhere else in OUT)."""
    return work_dir(out).rglob(f"*{TMP_SUFFIX}")


def in_work_dir(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """True when `path` (under `root`) lies in a build's working folder `.avuie-tmp/` (never read as output)."""
    try:
        return WORK_DIR in Path(path).relative_to(root).parts
    except ValueError:
        return False


def work_dir(out: str | os.PathLike) -> Path:
    """A build folder's own working folder `OUT/.avuie-tmp` (locks, staged files, journals): avuie's alone."""
    return Path(out) / WORK_DIR


def lock_path(out: str | os.PathLike, name: str) -> Path:
    """The lock file `OUT/.avuie-tmp/locks/<name>.lock` (one per source, and `commit` for the commit step)."""
    return work_dir(out) / LOCKS_DIR / f"{name}.lock"


def stage_dir(out: str | os.PathLike, owner: str) -> Path:
    """Where one owner (a source's build, or `curate`) stages files before a commit: `.avuie-tmp/stage-<owner>`."""
    return work_dir(out) / f"stage-{owner}"


def staged(folder: str | os.PathLike, rel: str) -> Path:
    """The staged copy of the file `rel` (relative to OUT) inside a stage folder: `<folder>/<rel>.staged`.

    The suffix keeps staged files out of every reader's glob (`*.tar`, `*.done.json`, `manifest.parquet`)."""
    return Path(folder) / (rel + STAGED_SUFFIX)


def staged_rel(folder: str | os.PathLike, path: str | os.PathLike) -> str:
    """The final relative path of a staged file (the inverse of `staged`)."""
    return Path(path).relative_to(folder).as_posix().removesuffix(STAGED_SUFFIX)


def list_staged(folder: str | os.PathLike, pattern: str = "**/*") -> list[Path]:
    """Staged files of a stage folder matching `pattern` (before the `.staged` suffix), sorted."""
    return sorted(p for p in Path(folder).glob(pattern + STAGED_SUFFIX) if p.is_file())


def staged_markers(folder: str | os.PathLike) -> list[Path]:
    """The staged shard (or piece) completion markers of a stage folder, sorted."""
    return list_staged(folder, f"**/*{DONE_SUFFIX}")


def journal_path(out: str | os.PathLike, txn: str) -> Path:
    """The journal of transaction `txn`: `OUT/.avuie-tmp/journal-<txn>.json`, present only while it commits."""
    return work_dir(out) / f"{JOURNAL_PREFIX}{txn}.json"


def list_journals(out: str | os.PathLike) -> list[Path]:
    """Journals of transactions that were committed but not yet fully applied (oldest name first)."""
    return sorted(work_dir(out).glob(f"{JOURNAL_PREFIX}*.json"))


def source_record(out: str | os.PathLike, source: str) -> Path:
    """What one source's build recorded beside its shards: `OUT/sources/<source>.json`."""
    return Path(out) / SOURCES_DIR / f"{source}.json"


def list_source_records(out: str | os.PathLike) -> list[Path]:
    """Every source record of a build folder, sorted by source name."""
    return sorted((Path(out) / SOURCES_DIR).glob("*.json"))


def marker_source(marker: str | os.PathLike, done: dict | None = None) -> str:
    """The source a completion marker belongs to: its "source" field, else parsed from `<source>-<split>-<NNNNN>`."""
    if isinstance(done, dict) and done.get("source"):
        return str(done["source"])
    name, split = shard_of_done(marker), Path(marker).parent.name
    match = re.match(rf"^(.+)-{re.escape(split)}-\d+$", name)
    return match.group(1) if match else ""


def per_source(doc: dict) -> dict[str, dict]:
    """{source: its part} of a stats.json or build.json: `doc["sources"]` when OUT holds several sources, else
    {doc["source"]: doc} (the one-source shape)."""
    if isinstance(doc.get("sources"), dict):
        return {str(k): v for k, v in doc["sources"].items() if isinstance(v, dict)}
    return {str(doc.get("source") or ""): doc} if doc else {}


def tar_parts(folder: str | os.PathLike) -> list[Path]:
    """The tars directly in a split folder (`shards/<split>/*.tar`), sorted."""
    return sorted(Path(folder).glob(f"*{TAR_SUFFIX}"))
