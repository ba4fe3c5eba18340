"""The catalog: DuckDB views over every build under one or more roots, for `avuie query` and `avuie stats`.

A build is a folder holding `manifest.parquet` (docs/DESIGN.md, "Shards"); a root is a build or any folder above
builds (`avuie build --all` writes `ROOT/<source>/`). `open_catalog(roots)` finds every build and exposes:

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

from avuie.shards.layout import (
    BUILD_INFO,
    MANIFEST,
    REJECTS,
    SHARDS_DIR,
    STATS,
    find_manifests,
    list_done,
    marker_source,
    per_source,
    shard_rel,
)


class CatalogError(ValueError):
    """A root holds no build, or a build's files cannot be read."""


def find_builds(roots: list[Path] | list[str]) -> list[Path]:
    """Every build folder (one holding manifest.parquet) at or under each root, sorted and de-duplicated."""
    found: set[Path] = set()
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise CatalogError(f"{root} does not exist")
        hits = [root / MANIFEST] if (root / MANIFEST).is_file() else []
        hits += [p for p in find_manifests(root) if SHARDS_DIR not in p.relative_to(root).parts]
        if not hits:
            raise CatalogError(
                f"no build under {root}: expected a manifest.parquet (run `avuie build --out {root}` first)"
            )
        found.update(p.parent.resolve() for p in hits)
    return sorted(found)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path} is not valid JSON: {exc}") from exc


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


def _stats_rows(build: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per source and split rows, per reason rows) of a build's stats.json (one part per source it holds)."""
    rows, reasons = [], []
    infos = per_source(_read_json(build / BUILD_INFO))
    for source, stats in per_source(_read_json(build / STATS)).items():
        name = source or (next(iter(infos)) if len(infos) == 1 else "") or build.name
        family = stats.get("family") or infos.get(name, {}).get("family") or ""
        for split, s in sorted(stats.get("splits", {}).items()):
            rows.append(
                {
                    "build_dir": str(build),
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
                    {"build_dir": str(build), "source": name, "split": split, "reason": reason, "n": n}
                )
    return rows, reasons


def _shard_rows(build: Path, source: str) -> list[dict[str, Any]]:
    """One row per finished tar, from the shard completion markers (`source` when a marker names none)."""
    rows = []
    for marker in list_done(build):
        done = _read_json(marker)
        counts: dict[str, int] = {}
        for r in done.get("manifest", []):
            counts[r["shard"]] = counts.get(r["shard"], 0) + 1
        for tar in done.get("tars", []):
            path = marker.parent / tar
            rel = shard_rel(marker.parent.name, tar)
            rows.append(
                {
                    "build_dir": str(build),
                    "source": marker_source(marker, done) or source,
                    "split": done.get("split") or marker.parent.name,
                    "shard": rel,
                    "path": str(path),
                    "num_samples": counts.get(rel, 0),
                    "num_bytes": path.stat().st_size if path.exists() else 0,
                }
            )
    return rows


def _build_rows(build: Path) -> list[dict[str, Any]]:
    """One row per source of a build (build.json, one part per source)."""
    rows = []
    infos = per_source(_read_json(build / BUILD_INFO)) or {"": {}}
    for source, info in infos.items():
        config = info.get("config", {})
        rows.append(
            {
                "build_dir": str(build),
                "source": source or _read_json(build / STATS).get("source") or build.name,
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


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


@dataclass
class Catalog:
    """An in-memory DuckDB connection with the catalog views over `builds`."""

    builds: list[Path]
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

    builds = find_builds(roots)
    con = duckdb.connect(":memory:")
    manifests = [b / MANIFEST for b in builds]
    con.execute(
        "CREATE VIEW samples AS SELECT * EXCLUDE (filename), parse_dirpath(filename) AS build_dir "
        f"FROM read_parquet({_sql_list(manifests)}, union_by_name = true, filename = true)"
    )
    rejects = [b / REJECTS for b in builds if (b / REJECTS).is_file()]
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
    return Catalog(builds=builds, con=con)
