"""The catalog: DuckDB views over every build under one or more roots, for `avuie query` and `avuie stats`.

A build is a folder holding `manifest.parquet` (docs/DESIGN.md, "Shards"); a root is a build or any folder above
builds (`avuie build --all` writes `ROOT/<source>/`), local or remote (`s3://bucket/avuie`: read through fsspec,
catalog/trees.py). `open_catalog(roots)` finds every build and exposes:

| view | one row per | columns |
|---|---|---|
| `samples` | written sample | the manifest columns + `build_dir` |
| `rejects` | rejected entry or record | the rejects.parquet columns + `build_dir` |
| `stats` | build, source and split | `build_dir, source, family, split, in, written, rejected, shards, reasons` (JSON) |
| `reject_reasons` | build, split and reason | `build_dir, source, split, reason, n` |
| `shards` | tar file | `build_dir, source, split, shard, path, num_samples, num_bytes` |
| `builds` | build and source | `build_dir, source, family, license, builder_version, avuie_version, reasoning, limit, fingerprint, raw` |

Manifests and rejects stay on disk (parquet views); the small JSON files are read into Arrow tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from avuie.catalog.trees import Tree, register, trees_under
from avuie.shards.layout import BUILD_INFO, MANIFEST, REJECTS, STATS, marker_source, per_source, shard_rel


class CatalogError(ValueError):
    """A root holds no build, or a build's files cannot be read."""


def find_trees(roots: list[Path] | list[str]) -> list[Tree]:
    """Every build (local folder or remote URL) at or under each root, sorted and de-duplicated."""
    found: dict[str, Tree] = {}
    for root in roots:
        try:
            trees = trees_under(root)
        except FileNotFoundError as exc:
            raise CatalogError(str(exc)) from exc
        except ValueError as exc:  # a URL whose filesystem cannot be opened
            raise CatalogError(str(exc)) from exc
        if not trees:
            raise CatalogError(
                f"no build under {root}: expected a manifest.parquet (run `avuie build --out {root}` first)"
            )
        found.update((t.name, t) for t in trees)
    return [found[k] for k in sorted(found)]


def find_builds(roots: list[Path] | list[str]) -> list[Path | str]:
    """Every build folder (one holding manifest.parquet) at or under each root, sorted and de-duplicated; a
    remote build is named by its URL."""
    return [t.where for t in find_trees(roots)]


def _read_json(tree: Tree, rel: str) -> dict[str, Any]:
    try:
        return tree.read_json(rel) or {}
    except ValueError as exc:
        raise CatalogError(str(exc)) from exc


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


STATS_SCHEMA = pa.schema(
    [
        ("build_dir", pa.string()),
        ("source", pa.string()),
        ("family", pa.string()),
        ("split", pa.string()),
        ("in", pa.int64()),
        ("written", pa.int64()),
        ("rejected", pa.int64()),
        ("shards", pa.int64()),
        ("reasons", pa.string()),
    ]
)
REASON_SCHEMA = pa.schema(
    [
        ("build_dir", pa.string()),
        ("source", pa.string()),
        ("split", pa.string()),
        ("reason", pa.string()),
        ("n", pa.int64()),
    ]
)
SHARD_SCHEMA = pa.schema(
    [
        ("build_dir", pa.string()),
        ("source", pa.string()),
        ("split", pa.string()),
        ("shard", pa.string()),
        ("path", pa.string()),
        ("num_samples", pa.int64()),
        ("num_bytes", pa.int64()),
    ]
)
BUILD_SCHEMA = pa.schema(
    [
        ("build_dir", pa.string()),
        ("source", pa.string()),
        ("family", pa.string()),
        ("license", pa.string()),
        ("builder_version", pa.string()),
        ("avuie_version", pa.string()),
        ("reasoning", pa.string()),
        ("limit", pa.int64()),
        ("fingerprint", pa.string()),
        ("raw", pa.string()),
    ]
)


def _stats_rows(build: Tree) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per source and split rows, per reason rows) of a build's stats.json (one part per source it holds)."""
    rows, reasons = [], []
    infos = per_source(_read_json(build, BUILD_INFO))
    for source, stats in per_source(_read_json(build, STATS)).items():
        name = source or (next(iter(infos)) if len(infos) == 1 else "") or Path(build.name).name
        family = stats.get("family") or infos.get(name, {}).get("family") or ""
        for split, s in sorted(stats.get("splits", {}).items()):
            rows.append(
                {
                    "build_dir": build.name,
                    "source": name,
                    "family": family,
                    "split": split,
                    "in": s.get("in", 0),
                    "written": s.get("written", 0),
                    "rejected": s.get("rejected", 0),
                    "shards": s.get("shards", 0),
                    "reasons": json.dumps(s.get("reasons", {}), sort_keys=True),
                }
            )
            for reason, n in sorted(s.get("reasons", {}).items()):
                reasons.append(
                    {"build_dir": build.name, "source": name, "split": split, "reason": reason, "n": n}
                )
    return rows, reasons


def _shard_rows(build: Tree, source: str) -> list[dict[str, Any]]:
    """One row per finished tar, from the shard completion markers (`source` when a marker names none)."""
    rows = []
    sizes = build.sizes()
    for marker in build.markers():
        done = _read_json(build, marker)
        folder = marker.rsplit("/", 1)[0]
        counts: dict[str, int] = {}
        for r in done.get("manifest", []):
            counts[r["shard"]] = counts.get(r["shard"], 0) + 1
        for tar in done.get("tars", []):
            rel = shard_rel(folder.rsplit("/", 1)[-1], tar)
            rows.append(
                {
                    "build_dir": build.name,
                    "source": marker_source(marker, done) or source,
                    "split": done.get("split") or folder.rsplit("/", 1)[-1],
                    "shard": rel,
                    "path": build.file(f"{folder}/{tar}"),
                    "num_samples": counts.get(rel, 0),
                    "num_bytes": sizes.get(f"{folder}/{tar}", 0),
                }
            )
    return rows


def _build_rows(build: Tree) -> list[dict[str, Any]]:
    """One row per source of a build (build.json, one part per source)."""
    rows = []
    infos = per_source(_read_json(build, BUILD_INFO)) or {"": {}}
    for source, info in infos.items():
        config = info.get("config", {})
        rows.append(
            {
                "build_dir": build.name,
                "source": source or _read_json(build, STATS).get("source") or Path(build.name).name,
                "family": info.get("family", ""),
                "license": info.get("license", ""),
                "builder_version": str(info.get("builder_version", "")),
                "avuie_version": info.get("avuie_version", ""),
                "reasoning": config.get("reasoning", ""),
                "limit": config.get("limit"),
                "fingerprint": info.get("fingerprint", ""),
                "raw": info.get("raw", ""),
            }
        )
    return rows


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


@dataclass
class Catalog:
    """An in-memory DuckDB connection with the catalog views over `builds`."""

    builds: list[Path | str]  # a remote build by its URL
    con: Any = field(repr=False)

    def query(self, sql: str) -> pa.Table:
        """Run SQL against the views; return the result as an Arrow table (raises CatalogError on bad SQL)."""
        import duckdb

        try:
            rel = self.con.sql(sql)
        except duckdb.Error as exc:
            raise CatalogError(f"query failed: {exc}") from exc
        if rel is None:  # a statement without a result (SET, CREATE ...)
            return pa.table({})
        return rel.to_arrow_table()

    def rows(self, sql: str) -> list[dict[str, Any]]:
        """Run SQL; return a list of dicts."""
        return self.query(sql).to_pylist()


def open_catalog(roots: list[Path] | list[str]) -> Catalog:
    """Find every build under `roots` and create the views of this module's docstring."""
    import duckdb

    builds = find_trees(roots)
    con = duckdb.connect(":memory:")
    register(con, builds)
    manifests = [b.file(MANIFEST) for b in builds]
    con.execute(
        "CREATE VIEW samples AS SELECT * EXCLUDE (filename), parse_dirpath(filename) AS build_dir "
        f"FROM read_parquet({_sql_list(manifests)}, union_by_name = true, filename = true)"
    )
    rejects = [b.file(REJECTS) for b in builds if b.exists(REJECTS)]
    if rejects:
        con.execute(
            "CREATE VIEW rejects AS SELECT * EXCLUDE (filename), parse_dirpath(filename) AS build_dir "
            f"FROM read_parquet({_sql_list(rejects)}, union_by_name = true, filename = true)"
        )
    else:
        con.execute(
            "CREATE VIEW rejects AS SELECT * FROM (VALUES (NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, "
            "NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR)) "
            "t(id_or_row, source, split, reason, detail, annotation_file, annotation_row, build_dir) WHERE false"
        )
    stats_rows, reason_rows, shard_rows, build_rows = [], [], [], []
    for b in builds:
        s, r = _stats_rows(b)
        stats_rows += s
        reason_rows += r
        rows = _build_rows(b)
        build_rows += rows
        shard_rows += _shard_rows(b, rows[0]["source"])
    tables = {
        "stats": _table(stats_rows, STATS_SCHEMA),
        "reject_reasons": _table(reason_rows, REASON_SCHEMA),
        "shards": _table(shard_rows, SHARD_SCHEMA),
        "builds": _table(build_rows, BUILD_SCHEMA),
    }
    for name, table in tables.items():
        con.register("_incoming", table)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _incoming")
        con.unregister("_incoming")
    return Catalog(builds=[b.where for b in builds], con=con)
