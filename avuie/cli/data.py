"""Data-side commands: query (SQL over builds), stats (counts and a data card), export (other trainers' layouts)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console(stderr=True)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def print_rows(columns: list[str], rows: list[dict[str, Any]], fmt: str, max_rows: int) -> None:
    """Print query rows to stdout as a rich table (first `max_rows`), CSV or JSON (every row)."""
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, default=str, ensure_ascii=False, indent=1) + "\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow([_cell(r[c]) for c in columns])
    else:
        from rich.table import Table

        table = Table(show_lines=False)
        for c in columns:
            table.add_column(c, overflow="fold")
        for r in rows[:max_rows]:
            table.add_row(*(_cell(r[c]) for c in columns))
        Console().print(table)
        more = f" (showing {max_rows}; use --format csv|json for all)" if len(rows) > max_rows else ""
        console.print(f"{len(rows)} row(s){more}")


def progress_bar():
    """The shared progress bar (avuie.cli.progress)."""
    from avuie.cli.progress import progress_bar as bar

    return bar(console)


def _open(roots: list[Path]):
    from avuie.catalog.db import CatalogError, open_catalog

    try:
        return open_catalog(roots)
    except CatalogError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


def query_cmd(
    args: list[str] = typer.Argument(
        ..., help="One or more build folders (or folders of builds), then the SQL as the last argument."
    ),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or json."),
    max_rows: int = typer.Option(50, "--max-rows", help="Rows shown by --format table."),
) -> None:
    """Run SQL over the DuckDB views samples, rejects, stats, reject_reasons, shards and builds.

    Example: avuie query avuie-out "SELECT source, split, count(*) FROM samples GROUP BY ALL"
    """
    from avuie.catalog.db import CatalogError

    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter(f"--format must be table, csv or json, got {fmt!r}")
    if len(args) < 2:
        raise typer.BadParameter('give at least one build folder and the SQL: avuie query OUT "SELECT ..."')
    *roots, sql = args
    from avuie.cli.build import location

    catalog = _open([location(r) for r in roots])
    try:
        table = catalog.query(sql)
    except CatalogError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    print_rows(table.column_names, table.to_pylist(), fmt, max_rows)


def stats_cmd(
    roots: list[str] = typer.Argument(..., help="One or more build folders (or folders of builds) or URLs."),
    report: Path = typer.Option(
        None, "--report", help="Also write PNG charts and an HTML data card into this folder."
    ),
) -> None:
    """Print per source and split: in, written, rejected by reason (from stats.json); optionally a report."""
    from avuie.catalog.report import print_stats, write_report
    from avuie.cli.build import location

    catalog = _open([location(r) for r in roots])
    print_stats(catalog, Console())
    if report is not None:
        paths = write_report(catalog, report)
        console.print(f"wrote {len(paths)} files; open {report / 'index.html'}")


def export_cmd(
    roots: list[str] = typer.Argument(
        ..., help="One or more build folders (or folders of builds), or URLs (read through a local copy)."
    ),
    fmt: str = typer.Option(..., "--format", "-f", help="crab-plus, hf or sharegpt."),
    to: Path = typer.Option(..., "--to", help="Destination folder (must be empty unless --force)."),
    split: list[str] = typer.Option(None, "--split", help="Only these splits (repeatable)."),
    source: list[str] = typer.Option(None, "--source", "-s", help="Only these sources (repeatable)."),
    video: str = typer.Option(
        "mp4", "--video", help="mp4 (encode each frame sequence, default) or frames (JPEG folders only)."
    ),
    val_to: str = typer.Option(
        "auto",
        "--val-to",
        help="crab-plus: where val goes: auto (test.json for a task Crab+ evaluates that has no test split, "
        "else val.json), val, train, test or drop.",
    ),
    workers: int = typer.Option(2, "--workers", "-j", help="Parallel media writers."),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty destination."),
) -> None:
    """Export builds for other trainers: the Crab+ layout, a Hugging Face dataset or LLaMA-Factory JSON."""
    from avuie.catalog.db import CatalogError
    from avuie.cli.build import readable
    from avuie.export.common import ExportError, ExportOptions
    from avuie.export.registry import export

    folders = [readable(r) for r in roots]
    opts = ExportOptions(
        splits=split or None,
        sources=source or None,
        video=video,
        val_to=val_to,
        workers=workers,
        force=force,
    )
    try:
        with progress_bar() as bar:
            task = bar.add_task(f"export {fmt}", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            summary = export(folders, fmt, to, opts, progress)
    except (ExportError, CatalogError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    counts = summary.get("files") or summary.get("splits") or {}
    for name, n in sorted(counts.items()):
        console.print(f"  {name}: {n}")
    console.print(f"exported {sum(counts.values())} samples as {fmt} to {to}")


def register(app: typer.Typer) -> None:
    """Add query, stats and export."""
    app.command("query")(query_cmd)
    app.command("stats")(stats_cmd)
    app.command("export")(export_cmd)
