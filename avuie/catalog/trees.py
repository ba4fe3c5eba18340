"""Where the catalog reads a build: a local folder, or a remote one (`s3://bucket/avuie`) read through fsspec.

A remote build is never downloaded for a query: its manifest and rejects are read by DuckDB through the fsspec
filesystem registered on the connection (`con.register_filesystem`: column and row-group reads, no DuckDB
extension), and its small JSON files (stats, build info, shard markers) are fetched one by one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from avuie.shards.layout import (
    DONE_SUFFIX,
    MANIFEST,
    SHARDS_DIR,
    TAR_SUFFIX,
    WORK_DIR,
    find_manifests,
    list_done,
    list_tars,
)
from avuie.shards.sync import is_url, open_fs


class Tree:
    """One build folder, local or remote: `name` (its path or URL, the `build_dir` of every view row)."""

    def __init__(self, where: Path | str, fs: Any = None, path: str = "") -> None:
        self.remote = fs is not None
        self.fs, self.path = fs, path.rstrip("/")
        self.where: Path | str = str(where).rstrip("/") if self.remote else Path(where).resolve()
        self.name = str(self.where)

    def file(self, rel: str) -> str:
        """The path (or URL) of `rel` in the build, as DuckDB and the `shards.path` column name it."""
        return f"{self.name}/{rel}"

    def exists(self, rel: str) -> bool:
        """`rel` is a file of the build."""
        if self.remote:
            return bool(self.fs.isfile(f"{self.path}/{rel}"))
        return (Path(self.where) / rel).is_file()

    def read_json(self, rel: str) -> dict[str, Any] | None:
        """The JSON object in `rel`; None when the file is missing; ValueError (with the path) when it is not JSON."""
        try:
            if self.remote:
                text = self.fs.cat_file(f"{self.path}/{rel}").decode()
            elif (Path(self.where) / rel).is_file():
                text = (Path(self.where) / rel).read_text()
            else:
                return None
        except FileNotFoundError:
            return None
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.file(rel)} is not valid JSON: {exc}") from exc
        return doc if isinstance(doc, dict) else {}

    def markers(self) -> list[str]:
        """The relative paths of the build's shard markers, sorted."""
        if self.remote:
            found = self.fs.glob(f"{self.path}/{SHARDS_DIR}/*/*{DONE_SUFFIX}")
            return sorted(p[len(self.path) + 1 :] for p in found)
        return [p.relative_to(self.where).as_posix() for p in list_done(self.where)]

    def sizes(self) -> dict[str, int]:
        """{relative path: bytes} of the tars under `shards/`."""
        if self.remote:
            found = self.fs.find(f"{self.path}/{SHARDS_DIR}", detail=True)
            return {
                p[len(self.path) + 1 :]: int(i.get("size") or 0)
                for p, i in found.items()
                if p.endswith(TAR_SUFFIX)
            }
        base = Path(self.where)
        return {p.relative_to(base).as_posix(): p.stat().st_size for p in list_tars(base)}


def trees_under(root: Path | str) -> list[Tree]:
    """Every build at or under one root (a folder or URL): the folders holding a manifest.parquet, not under a
    build's `shards/`. FileNotFoundError when the root does not exist."""
    if is_url(str(root)):
        fs, path = open_fs(str(root))
        path = path.rstrip("/")
        if not fs.exists(path):
            raise FileNotFoundError(f"{root} does not exist")
        hits = [p for p in fs.find(path) if p.endswith("/" + MANIFEST)]
        dirs = {h[: -len(MANIFEST) - 1] for h in hits}
        dirs = {d for d in dirs if not _under(d[len(path) :], (SHARDS_DIR, WORK_DIR))}
        base = str(root).rstrip("/")
        return [Tree(base + d[len(path) :], fs, d) for d in sorted(dirs)]
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    hits = [root / MANIFEST] if (root / MANIFEST).is_file() else []
    hits += [p for p in find_manifests(root) if SHARDS_DIR not in p.relative_to(root).parts]
    return [Tree(p.parent) for p in sorted(set(hits))]


def _under(rel: str, names: tuple[str, ...]) -> bool:
    return any(part in names for part in rel.strip("/").split("/"))


def register(con: Any, trees: list[Tree]) -> None:
    """Let DuckDB read the remote trees' files through their fsspec filesystems."""
    done = set()
    for tree in trees:
        if tree.remote and id(tree.fs) not in done:
            con.register_filesystem(tree.fs)
            done.add(id(tree.fs))
