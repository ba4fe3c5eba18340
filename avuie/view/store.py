"""What the viewer asks of a build: filtered, paginated sample and reject rows, by DuckDB over the manifests.

Every query runs on the catalog views (avuie.catalog): the parquet files stay on disk and are scanned per query,
so a page costs a filtered scan plus LIMIT/OFFSET, never a whole build in memory, and a manifest rewritten by
`review apply` is seen at the next request. Values always travel as query parameters, never spliced into SQL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from avuie.catalog.db import open_catalog
from avuie.shards.guard import PathRejected, resolve_under

PAGE_SIZE = 50
ORIGINS = ("template", "model", "fallback", "human")
LIST_COLUMNS = (
    "id", "key", "source", "family", "split", "shard", "label", "answer", "reasoning_kind",
    "media_duration", "num_frames",
)  # fmt: skip
TEXT_COLUMNS = ("instruction", "response")


@dataclass(frozen=True)
class Filters:
    """The browse filters; empty strings mean "any". `q` is free text over instruction and response."""

    source: str = ""
    split: str = ""
    family: str = ""
    origin: str = ""
    q: str = ""
    reason: str = ""

    @classmethod
    def from_params(cls, params: Any) -> Filters:
        """Build from a mapping of query parameters (unknown keys ignored, values trimmed)."""
        return cls(**{f.name: str(params.get(f.name, "") or "").strip()[:200] for f in fields(cls)})

    def as_params(self) -> dict[str, str]:
        """The non-empty filters as query parameters."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


@dataclass
class Page:
    """One page of rows with the total number matching and the page number (0-based) and size."""

    rows: list[dict[str, Any]]
    total: int
    number: int
    size: int

    @property
    def pages(self) -> int:
        """How many pages the matching rows fill (at least 1)."""
        return max(1, -(-self.total // self.size))


class Store:
    """The builds under one root and the queries the pages need (one DuckDB cursor per call, thread safe)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.catalog = open_catalog([self.root])
        self.builds = {self._rel(path): Path(path) for path in self.catalog.builds}
        self.by_dir = {str(path): rel for rel, path in self.builds.items()}
        described = self.catalog.con.execute("DESCRIBE samples").fetchall()
        columns = {row[0] for row in described}
        self.text_columns = [c for c in TEXT_COLUMNS if c in columns] or ["label", "answer"]
        self._facets: tuple[tuple, dict] | None = None

    def _rel(self, path: Path) -> str:
        rel = Path(path).resolve().relative_to(self.root).as_posix()
        return rel if rel != "." else "."

    def query(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        """Run one parameterised SQL statement over the catalog views on a fresh cursor; return its rows."""
        cursor = self.catalog.con.cursor()
        try:
            result = cursor.execute(sql, params)
            names = [d[0] for d in result.description]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        finally:
            cursor.close()

    def _sample_where(self, filters: Filters) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for column, value in (
            ("source", filters.source),
            ("split", filters.split),
            ("family", filters.family),
            ("reasoning_kind", filters.origin),
        ):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if filters.q:
            text = " OR ".join(f"contains(lower({c}), ?)" for c in self.text_columns)
            clauses.append(f"({text})")
            params += [filters.q.lower()] * len(self.text_columns)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def _page(self, select: str, where: str, params: list, order: str, number: int, size: int) -> Page:
        """One page of `SELECT {select}{where} ORDER BY {order}` with the total (one scan: a window count); a
        page past the end gives the last page."""
        sql = f"SELECT {select.replace(' FROM ', ', count(*) OVER () AS _total FROM ', 1)}{where} "
        rows = self.query(sql + f"ORDER BY {order} LIMIT ? OFFSET ?", [*params, size, number * size])
        if not rows and number > 0:  # past the end: count, then fetch the last page
            view = select.rsplit(" FROM ", 1)[1]
            total = self.query(f"SELECT count(*) AS n FROM {view}{where}", params)[0]["n"]
            number = max(0, -(-total // size) - 1)
            rows = self.query(sql + f"ORDER BY {order} LIMIT ? OFFSET ?", [*params, size, number * size])
        total = rows[0]["_total"] if rows else 0
        for row in rows:
            del row["_total"]
            row["build"] = self.by_dir.get(str(row.pop("build_dir")), "?")
        return Page(rows, total, number, size)

    def samples(self, filters: Filters, number: int = 0, size: int = PAGE_SIZE) -> Page:
        """Return page `number` (0-based) of the samples matching filters, ordered by source, split, id."""
        where, params = self._sample_where(filters)
        select = ", ".join(LIST_COLUMNS) + ", build_dir FROM samples"
        return self._page(select, where, params, "source, split, id", number, size)

    def rejects(self, filters: Filters, number: int = 0, size: int = PAGE_SIZE) -> Page:
        """Return page `number` of the rejected entries matching the source, split and reason filters."""
        used = [c for c in ("source", "split", "reason") if getattr(filters, c)]
        where = (" WHERE " + " AND ".join(f"{c} = ?" for c in used)) if used else ""
        params = [getattr(filters, c) for c in used]
        return self._page("* FROM rejects", where, params, "source, split, reason, id_or_row", number, size)

    def signature(self) -> tuple:
        """(path, size, mtime) of every manifest and rejects file: changes when a build is rewritten."""
        found = []
        for folder in self.builds.values():
            for name in ("manifest.parquet", "rejects.parquet"):
                try:
                    stat = (folder / name).stat()
                except OSError:
                    continue
                found.append((str(folder / name), stat.st_size, stat.st_mtime_ns))
        return tuple(found)

    def facets(self) -> dict[str, list[tuple[str, int]]]:
        """Return the values of each filter with their counts: {"source": [(name, n), ...], ...} (cached until
        a manifest or rejects file changes)."""
        signature = self.signature()
        if self._facets is not None and self._facets[0] == signature:
            return self._facets[1]
        out = {}
        for name, column, view in (
            ("source", "source", "samples"),
            ("split", "split", "samples"),
            ("family", "family", "samples"),
            ("origin", "reasoning_kind", "samples"),
            ("reason", "reason", "rejects"),
        ):
            rows = self.query(
                f"SELECT {column} AS v, count(*) AS n FROM {view} WHERE {column} IS NOT NULL "
                "GROUP BY 1 ORDER BY 1",
                [],
            )
            out[name] = [(str(r["v"]), int(r["n"])) for r in rows]
        self._facets = (signature, out)
        return out

    def locate(self, build: str, key: str) -> tuple[Path, Path, dict[str, Any]]:
        """Return (build folder, tar path, manifest row) of sample `key` in build `build` (its name in the
        root); raises LookupError when there is no such build or sample, PathRejected for a bad shard path."""
        folder = self.builds.get(build)
        if folder is None:
            raise LookupError(f"no build {build!r} under {self.root}")
        rows = self.query(
            "SELECT * EXCLUDE (build_dir) FROM samples WHERE key = ? AND build_dir = ? LIMIT 1",
            [key, str(folder)],
        )
        if not rows:
            raise LookupError(f"no sample {key!r} in build {build!r}")
        tar = resolve_under(folder, rows[0]["shard"])
        return folder, tar, rows[0]

    def neighbours(self, build: str, key: str, filters: Filters) -> tuple[tuple, tuple]:
        """Return ((build, key) before, (build, key) after) sample `key` in the filtered order; (None, None) at
        either end or when the sample does not match the filters."""
        where, params = self._sample_where(filters)
        rows = self.query(
            "SELECT pb, pk, nb, nk FROM (SELECT key, build_dir, lag(build_dir) OVER w AS pb, lag(key) OVER w AS pk, "
            "lead(build_dir) OVER w AS nb, lead(key) OVER w AS nk FROM samples"
            f"{where} WINDOW w AS (ORDER BY source, split, id)) WHERE key = ? AND build_dir = ?",
            [*params, key, str(self.builds.get(build, ""))],
        )
        if not rows:
            return (None, None), (None, None)
        r = rows[0]
        return (self.by_dir.get(str(r["pb"])), r["pk"]), (self.by_dir.get(str(r["nb"])), r["nk"])

    def key_of(self, build: str, sample_id: str) -> str | None:
        """Return the key of sample `sample_id` in build `build`, or None."""
        rows = self.query(
            "SELECT key FROM samples WHERE id = ? AND build_dir = ? LIMIT 1",
            [sample_id, str(self.builds.get(build, ""))],
        )
        return rows[0]["key"] if rows else None


__all__ = ["Filters", "Page", "PathRejected", "Store", "ORIGINS", "PAGE_SIZE"]
