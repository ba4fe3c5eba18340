"""`avuie stats OUT [--report DIR]`: the per-split counts of one or more builds, and a data card with charts.

`print_stats` prints, per source and split, what went in, what was written and what was rejected by reason
(from each build's stats.json). `write_report` writes into DIR five PNG charts (matplotlib, Agg backend), a
`report.json` with the numbers behind them, and `index.html`: a data card naming every source with its family,
licence, builder version, counts per split and rejects, and how its reasoning chains were made.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from avuie.catalog.db import Catalog
from avuie.shards.layout import STATS, per_source

CHARTS = {
    "samples_per_family": "Samples per task family",
    "samples_per_source_split": "Samples per source and split",
    "duration_hist": "Media duration per sample (s)",
    "reasoning_length": "Reasoning length (characters)",
    "rejects_by_reason": "Rejects by reason",
}
REASONING_KINDS = {
    "template": "deterministic template built from the annotation (labels, times, question), offline",
    "model": "written by a language model from the annotation and checked against the typed target",
    "fallback": "the model's chain failed its check; the template chain was used instead",
    "human": "written or corrected by a person",
}


def collect(catalog: Catalog) -> dict[str, Any]:
    """The numbers of the report, read from the catalog views."""
    q = catalog.rows
    return {
        "builds": q("SELECT * FROM builds ORDER BY source, build_dir"),
        "splits": q("SELECT * EXCLUDE (reasons), reasons FROM stats ORDER BY source, split"),
        "per_family": q("SELECT family, count(*) AS n FROM samples GROUP BY family ORDER BY family"),
        "per_source_split": q(
            "SELECT source, split, count(*) AS n FROM samples GROUP BY source, split ORDER BY source, split"
        ),
        "per_build_split": q(
            "SELECT build_dir, split, count(*) AS n FROM samples GROUP BY build_dir, split ORDER BY 1, 2"
        ),
        "rejects": q(
            "SELECT reason, sum(n)::BIGINT AS n FROM reject_reasons GROUP BY reason ORDER BY n DESC, reason"
        ),
        "reasoning": q(
            "SELECT source, reasoning_kind AS kind, count(*) AS n, round(avg(reasoning_chars), 1) AS avg_chars "
            "FROM samples GROUP BY source, reasoning_kind ORDER BY source, kind"
        ),
        "durations": q("SELECT family, media_duration, reasoning_kind, reasoning_chars FROM samples"),
        "engines": _engines(catalog),
    }


def _engines(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """The reasoning engine summary of each build's stats.json (engine, model, prompt versions...)."""
    out = {}
    for b in catalog.builds:
        path = Path(b) / STATS
        parts = per_source(json.loads(path.read_text())) if path.is_file() else {}
        for source, stats in parts.items():
            out[str(b) if len(parts) == 1 else f"{b} ({source})"] = stats.get("reasoning", {})
    return out


def print_stats(catalog: Catalog, console: Any) -> None:
    """Print a rich table: source, split, in, written, rejected and the reject reasons."""
    from rich.table import Table

    table = Table(title="avuie builds")
    for col in ("source", "split", "in", "written", "rejected", "shards", "reject reasons"):
        table.add_column(col, justify="right" if col in ("in", "written", "rejected", "shards") else "left")
    totals = {"in": 0, "written": 0, "rejected": 0}
    for row in catalog.rows("SELECT * FROM stats ORDER BY source, split, build_dir"):
        reasons = json.loads(row["reasons"] or "{}")
        text = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])) or "-"
        table.add_row(
            row["source"],
            row["split"],
            str(row["in"]),
            str(row["written"]),
            str(row["rejected"]),
            str(row["shards"]),
            text,
        )
        for k in totals:
            totals[k] += row[k]
    table.add_section()
    table.add_row("total", "", str(totals["in"]), str(totals["written"]), str(totals["rejected"]), "", "")
    console.print(table)


# ---------------------------------------------------------------- charts


def _bar(ax: Any, labels: list[str], values: list[float], horizontal: bool = False) -> None:
    if not labels:
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=ax.transAxes)
        return
    if horizontal:
        ax.barh(labels, values, color="#4C72B0")
        ax.invert_yaxis()
    else:
        ax.bar(labels, values, color="#4C72B0")
        ax.tick_params(axis="x", rotation=30)


def _hist(ax: Any, groups: dict[str, list[float]], xlabel: str) -> None:
    groups = {k: v for k, v in groups.items() if v}
    if not groups:
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=ax.transAxes)
        return
    import numpy as np

    every = [v for values in groups.values() for v in values]
    bins = np.histogram_bin_edges(every, bins=min(30, max(5, len(every))))  # shared by every group
    for name, values in sorted(groups.items()):
        ax.hist(values, bins=bins, alpha=0.6, label=f"{name} ({len(values)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    ax.legend(fontsize=8)


def write_charts(data: dict[str, Any], out: Path) -> list[Path]:
    """Write the five PNG charts of CHARTS into `out`; return their paths."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    paths = []
    for name, title in CHARTS.items():
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
        if name == "samples_per_family":
            _bar(ax, [r["family"] for r in data["per_family"]], [r["n"] for r in data["per_family"]])
        elif name == "samples_per_source_split":
            _stacked(ax, data["per_source_split"])
        elif name == "duration_hist":
            groups: dict[str, list[float]] = {}
            for r in data["durations"]:
                groups.setdefault(r["family"], []).append(r["media_duration"] or 0.0)
            _hist(ax, groups, "seconds")
        elif name == "reasoning_length":
            groups = {}
            for r in data["durations"]:
                groups.setdefault(r["reasoning_kind"], []).append(r["reasoning_chars"] or 0)
            _hist(ax, groups, "characters")
        else:
            _bar(ax, [r["reason"] for r in data["rejects"]], [r["n"] for r in data["rejects"]], True)
        ax.set_title(title)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def _stacked(ax: Any, rows: list[dict[str, Any]]) -> None:
    sources = sorted({r["source"] for r in rows})
    splits = sorted({r["split"] for r in rows})
    if not sources:
        _bar(ax, [], [])
        return
    bottom = [0] * len(sources)
    for split in splits:
        counts = {r["source"]: r["n"] for r in rows if r["split"] == split}
        values = [counts.get(s, 0) for s in sources]
        ax.bar(sources, values, bottom=bottom, label=split)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.tick_params(axis="x", rotation=30)
    ax.legend(fontsize=8)


# ---------------------------------------------------------------- data card


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sources_table(data: dict[str, Any]) -> str:
    counts: dict[str, dict[str, int]] = {}
    for r in data["per_build_split"]:
        counts.setdefault(r["build_dir"], {})[r["split"]] = r["n"]
    rejected: dict[str, int] = {}
    for r in data["splits"]:
        rejected[r["build_dir"]] = rejected.get(r["build_dir"], 0) + r["rejected"]
    rows = []
    for b in data["builds"]:
        per = counts.get(b["build_dir"], {})
        split_text = ", ".join(f"{k}: {v}" for k, v in sorted(per.items())) or "-"
        rows.append(
            [
                b["source"],
                b["family"],
                b["license"] or "not stated",
                b["builder_version"],
                sum(per.values()),
                split_text,
                rejected.get(b["build_dir"], 0),
                b["build_dir"],
            ]
        )
    headers = ["source", "family", "licence", "builder", "samples", "per split", "rejected", "build"]
    return _table(headers, rows)


def _reasoning_section(data: dict[str, Any]) -> str:
    rows = [[r["source"], r["kind"], r["n"], r["avg_chars"]] for r in data["reasoning"]]
    kinds = sorted({r["kind"] for r in data["reasoning"]})
    items = "".join(
        f"<li><b>{html.escape(k)}</b>: {html.escape(REASONING_KINDS.get(k, 'see the samples'))}</li>"
        for k in kinds
    )
    engines = []
    for b in data["builds"]:
        e = data["engines"].get(b["build_dir"], {})
        detail = ", ".join(
            f"{k}={e[k]}" for k in ("engine", "model", "prompt_versions", "samples") if e.get(k) is not None
        )
        engines.append([b["source"], b["reasoning"] or e.get("engine", ""), detail or "-"])
    return (
        "<h2>How the reasoning was made</h2>"
        f"<p>Every response is a reasoning chain followed by the tagged answer rendered from the typed target.</p>"
        f"<ul>{items}</ul>"
        + _table(["source", "kind", "samples", "mean characters"], rows)
        + _table(["source", "build setting", "engine"], engines)
    )


CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    "th{background:#f0f0f0}img{max-width:100%;border:1px solid #eee;margin:0.5em 0}"
)


def render_card(data: dict[str, Any], charts: list[Path]) -> str:
    """The HTML data card (sources, licences, counts, rejects, reasoning, charts)."""
    total = sum(r["n"] for r in data["per_source_split"])
    rejected = sum(r["rejected"] for r in data["splits"])
    split_rows = [
        [r["source"], r["split"], r["in"], r["written"], r["rejected"], r["reasons"]] for r in data["splits"]
    ]
    reject_rows = [[r["reason"], r["n"]] for r in data["rejects"]] or [["(none)", 0]]
    imgs = "".join(
        f'<figure><img src="{html.escape(p.name)}" alt="{html.escape(CHARTS[p.stem])}">'
        f"<figcaption>{html.escape(CHARTS[p.stem])}</figcaption></figure>"
        for p in charts
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>AV-UIE v2 data card</title>"
        f"<style>{CSS}</style></head><body>"
        "<h1>AV-UIE v2 data card</h1>"
        f"<p>{len(data['builds'])} build(s), {total} samples written, {rejected} entries rejected.</p>"
        "<h2>Sources</h2>"
        + _sources_table(data)
        + "<h2>Splits</h2>"
        + _table(["source", "split", "in", "written", "rejected", "reasons"], split_rows)
        + "<h2>Rejects by reason</h2>"
        + _table(["reason", "count"], reject_rows)
        + _reasoning_section(data)
        + "<h2>Charts</h2>"
        + imgs
        + "</body></html>"
    )


def write_report(catalog: Catalog, out: Path) -> list[Path]:
    """Write the charts, report.json and index.html into `out`; return the written paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = collect(catalog)
    charts = write_charts(data, out)
    summary = {k: v for k, v in data.items() if k != "durations"}
    (out / "report.json").write_text(json.dumps(summary, indent=1, default=str))
    (out / "index.html").write_text(render_card(data, charts), encoding="utf-8")
    return [*charts, out / "report.json", out / "index.html"]
