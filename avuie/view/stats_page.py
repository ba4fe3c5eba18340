"""The stats page: bar charts (inline SVG, log-scaled when counts differ by two orders of magnitude or more) and
the data card (sources, licences, counts per split, rejects, how the chains were made), paths relative to the
viewed root. Every number comes from one aggregate DuckDB query over the catalog views."""

from __future__ import annotations

import json
import math
from typing import Any

from avuie.catalog.report import REASONING_KINDS
from avuie.view.html import esc, table
from avuie.view.store import Store

LOG_RATIO = 100  # max / min count at which a chart switches to a log scale
BAR_H, LABEL_W, BAR_W = 18, 190, 520


def bar_chart(title: str, items: list[tuple[str, int]], chart_id: str) -> str:
    """A horizontal bar chart of (label, count) as inline SVG; log10 scale when max/min >= LOG_RATIO."""
    items = [(str(label), int(n)) for label, n in items if n is not None]
    if not items:
        return f'<figure class="chart"><figcaption>{esc(title)}: nothing to show</figcaption></figure>'
    values = [n for _, n in items if n > 0] or [1]
    log = max(values) / min(values) >= LOG_RATIO
    top = max(values)

    def length(n: int) -> float:
        if n <= 0:
            return 0.0
        return BAR_W * (math.log10(n + 1) / math.log10(top + 1) if log else n / top)

    rows = []
    for i, (label, n) in enumerate(items):
        y = 22 + i * (BAR_H + 4)
        rows.append(
            f'<text x="{LABEL_W - 6}" y="{y + 13}" text-anchor="end">{esc(label[:32])}</text>'
            f'<rect class="bar" x="{LABEL_W}" y="{y}" width="{length(n):.1f}" height="{BAR_H}"><title>{esc(label)}: '
            f'{n:,}</title></rect><text x="{LABEL_W + length(n) + 4:.1f}" y="{y + 13}">{n:,}</text>'
        )
    if log:
        for power in range(int(math.log10(top)) + 1):
            x = LABEL_W + length(10**power)
            rows.append(f'<line x1="{x:.1f}" y1="16" x2="{x:.1f}" y2="20" stroke="#888"/>')
            rows.append(f'<text x="{x:.1f}" y="13" text-anchor="middle">{10**power:,}</text>')
    height = 26 + len(items) * (BAR_H + 4)
    scale = "log scale" if log else "linear scale"
    return (
        f'<figure class="chart" id="{esc(chart_id)}" data-scale="{scale}"><figcaption>{esc(title)} '
        f'<small>({scale})</small></figcaption><svg viewBox="0 0 {LABEL_W + BAR_W + 80} {height}">'
        f"{''.join(rows)}</svg></figure>"
    )


def _histogram(store: Store, column: str, bins: int = 12) -> list[tuple[str, int]]:
    """Equal-width bins of a numeric samples column as (range label, count)."""
    low, high = store.query(f"SELECT min({column}) AS lo, max({column}) AS hi FROM samples", [])[0].values()
    if low is None:
        return []
    width = max((float(high) - float(low)) / bins, 1e-9)
    rows = store.query(
        f"SELECT least(floor(({column} - ?) / ?), ?)::INT AS b, count(*) AS n FROM samples "
        f"WHERE {column} IS NOT NULL GROUP BY 1 ORDER BY 1",
        [float(low), width, bins - 1],
    )
    return [(f"{low + r['b'] * width:.4g}–{low + (r['b'] + 1) * width:.4g}", r["n"]) for r in rows]


def charts(store: Store) -> str:
    """Every chart of the stats page."""

    def counts(sql: str) -> list[tuple[str, int]]:
        return [(str(r["k"]), int(r["n"])) for r in store.query(sql, [])]

    return "".join(
        [
            bar_chart(
                "Samples per source",
                counts("SELECT source k, count(*) n FROM samples GROUP BY 1 ORDER BY 1"),
                "c-source",
            ),
            bar_chart(
                "Samples per task family",
                counts("SELECT family k, count(*) n FROM samples GROUP BY 1 ORDER BY 1"),
                "c-family",
            ),
            bar_chart(
                "Samples per split",
                counts("SELECT split k, count(*) n FROM samples GROUP BY 1 ORDER BY 1"),
                "c-split",
            ),
            bar_chart(
                "Reasoning chains by origin",
                counts("SELECT reasoning_kind k, count(*) n FROM samples GROUP BY 1 ORDER BY 1"),
                "c-origin",
            ),
            bar_chart(
                "Rejects by reason",
                counts("SELECT reason k, sum(n)::BIGINT n FROM reject_reasons GROUP BY 1 ORDER BY 2 DESC, 1"),
                "c-rejects",
            ),
            bar_chart("Media duration per sample (s)", _histogram(store, "media_duration"), "c-duration"),
            bar_chart("Reasoning length (characters)", _histogram(store, "reasoning_chars"), "c-chars"),
        ]
    )


def _reasons_text(reasons: str | None) -> str:
    parsed = json.loads(reasons or "{}")
    return ", ".join(f"{k}: {v}" for k, v in sorted(parsed.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


def data_card(store: Store) -> str:
    """The data card: one row per build (relative path), per split counts with reasons, and the chain origins."""
    rel = store.by_dir.get
    per_split: dict[str, list[str]] = {}
    for r in store.query("SELECT build_dir, split, count(*) n FROM samples GROUP BY 1, 2 ORDER BY 1, 2", []):
        per_split.setdefault(str(r["build_dir"]), []).append(f"{r['split']}: {r['n']:,}")
    builds = [
        [esc(rel(b["build_dir"], b["build_dir"])), esc(b["source"]), esc(b["family"]), esc(b["license"] or "not stated"),
         esc(b["builder_version"]), esc(b["reasoning"]), esc(", ".join(per_split.get(b["build_dir"], [])) or "-")]
        for b in store.query("SELECT * FROM builds ORDER BY source, build_dir", [])
    ]  # fmt: skip
    splits = [
        [esc(rel(r["build_dir"], r["build_dir"])), esc(r["split"]), f"{r['in']:,}", f"{r['written']:,}",
         f"{r['rejected']:,}", esc(_reasons_text(r["reasons"]))]
        for r in store.query("SELECT * FROM stats ORDER BY source, split, build_dir", [])
    ]  # fmt: skip
    kinds = store.query("SELECT reasoning_kind k, count(*) n FROM samples GROUP BY 1 ORDER BY 1", [])
    origin = "".join(
        f"<li><b>{esc(r['k'])}</b> ({r['n']:,}): {esc(REASONING_KINDS.get(r['k'], 'see the samples'))}</li>"
        for r in kinds
    )
    total = sum(r["n"] for r in kinds)
    return (
        f'<section class="card"><h2>Data card</h2><p>{len(builds)} build(s) under this root, {total:,} samples.</p>'
        + table(
            ["build", "source", "family", "licence", "builder", "reasoning", "samples per split"],
            builds,
            "builds",
        )
        + "<h3>Per split</h3>"
        + table(["build", "split", "in", "written", "rejected", "reject reasons"], splits, "splits")
        + f"<h3>How the reasoning chains were made</h3><ul>{origin}</ul></section>"
    )


def stats_page(store: Store) -> str:
    """Charts, then the data card."""
    return '<div class="charts">' + charts(store) + "</div>" + data_card(store)


__all__: list[Any] = ["bar_chart", "charts", "data_card", "stats_page"]
