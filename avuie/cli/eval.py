"""Evaluation commands: eval (score predictions with each benchmark's metric) and transfer (multi vs single)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console(stderr=True)


def _progress():
    from avuie.cli.progress import progress_bar

    return progress_bar(console)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _headline(metrics: dict) -> str:
    """The scalar metrics of a task (nested levels flattened one deep), for the summary table."""
    parts = []
    for key, value in metrics.items():
        if isinstance(value, float):
            parts.append(f"{key}={value:.4f}")
        elif (
            isinstance(value, dict)
            and all(isinstance(v, (int, float)) for v in value.values())
            and len(value) <= 6
        ):
            parts.extend(f"{key}.{k}={v:.4f}" for k, v in value.items() if isinstance(v, float))
    return "  ".join(parts)


def eval_command(
    pred: Path = typer.Option(
        ...,
        "--pred",
        help='Predictions JSONL: one {"id", "response"} a line (avuie predict). Lines that are not JSON or lack '
        '"id" or "response" are not scored; the summary and the report count them and name their line numbers.',
    ),
    data: Path = typer.Option(
        ..., "--data", help="Build directory (or a root of several) holding the shards."
    ),
    task: list[str] = typer.Option(
        None, "--task", help="Score only this source (repeatable), e.g. --task ave."
    ),
    all_tasks: bool = typer.Option(
        False, "--all", help="Score every source that has predictions (the default)."
    ),
    to: Path = typer.Option(None, "--to", help="Write the full JSON report here."),
    mask_backend: str = typer.Option(
        "auto", help="Prompt-to-mask step: auto (SAM2 if usable, else box), sam2, box."
    ),
    sam2_checkpoint: Path = typer.Option(
        None, help="Local SAM2 checkpoint (default: $AVUIE_SAM2_CHECKPOINT)."
    ),
    caption_tokenizer: str = typer.Option(
        "simple",
        help="Caption tokenisation: simple (no Java) or ptb (coco-caption's; needs pycocoevalcap + Java).",
    ),
    meteor: str = typer.Option(
        "auto", help="METEOR for captions: auto (when pycocoevalcap and Java are there), on (required), off."
    ),
    max_line_bytes: int = typer.Option(
        1 << 20, help="A prediction line longer than this is reported as malformed, never read whole."
    ),
) -> None:
    """Score model responses against the ground truth of a build, with each benchmark's own metric."""
    from avuie.builders import load_all

    if task and all_tasks:
        raise typer.BadParameter("give --task NAME or --all, not both")
    known = set(load_all())  # every registered source (this also records the class lists builders declare)
    unknown = sorted(set(task or []) - known)
    if unknown:
        raise typer.BadParameter(f"unknown task(s) {unknown}; known: {', '.join(sorted(known))}")
    report = _evaluate_with_bar(
        pred, data, task or None, mask_backend, str(sam2_checkpoint or "") or None,
        caption_tokenizer=caption_tokenizer, meteor=meteor, max_line_bytes=max_line_bytes,
    )  # fmt: skip
    _print_eval_report(report, pred, data)
    if to:
        to.parent.mkdir(parents=True, exist_ok=True)
        to.write_text(json.dumps(report, indent=2))
        console.print(f"report written to {to}")


def _evaluate_with_bar(pred: Path, data: Path, *args, **kwargs) -> dict:
    """`avuie.eval.runner.evaluate` with one progress bar per stage; exit 1 with its error when it fails."""
    from avuie.eval.runner import evaluate

    with _progress() as bar:
        ids: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in ids:
                ids[stage] = bar.add_task(stage, total=total)
            bar.update(ids[stage], completed=done, total=total)

        try:
            return evaluate(pred, data, *args, progress, **kwargs)
        except (FileNotFoundError, ValueError, RuntimeError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None


def _print_eval_report(report: dict, pred: Path, data: Path) -> None:
    """The summary table and the warnings of an eval report."""
    table = Table(title=f"avuie eval: {pred}")
    for col in ("task", "n", "unparseable", "primary", "value", "metrics"):
        table.add_column(col)
    for name, result in report["tasks"].items():
        primary = result["primary"]
        table.add_row(name, str(result["n"]), _fmt(result.get("n_unparseable")), primary["metric"],
                      _fmt(primary["value"]), result.get("error") or _headline(result["metrics"]))  # fmt: skip
    console.print(table)
    for name, result in report["tasks"].items():
        if result.get("n_parser_errors"):
            console.print(Text(f"{name}: the answer parser failed on {result['n_parser_errors']} responses "
                               f"(counted unparseable), e.g. {result['parser_errors'][0]}", style="yellow"))  # fmt: skip
    if report["mask_backend"]:
        reason = f" ({report['mask_backend_reason']})" if report["mask_backend_reason"] else ""
        console.print(f"masks from text: {report['mask_backend']}{reason}")
    if report["n_malformed_lines"]:
        lines = ", ".join(map(str, report["malformed_lines"][:10]))
        more = ", ..." if report["n_malformed_lines"] > 10 else ""
        reasons = ", ".join(f"{reason}: {n}" for reason, n in report["malformed_reasons"].items())
        console.print(
            f"[yellow]{report['n_malformed_lines']} malformed prediction lines were not scored "
            f"(lines {lines}{more}; {reasons})[/yellow]"
        )
    if report["n_unknown_ids"]:
        console.print(f"[yellow]{report['n_unknown_ids']} predicted ids are not in {data}[/yellow]")


def default_chart_path(report: Path | None) -> Path | None:
    """Where `avuie transfer` draws its chart without --chart: beside the --to report, with its name and .png
    (`out/t.json` -> `out/t.png`); None (no chart) without a report."""
    if report is None:
        return None
    return (
        report.with_name(report.stem + ".chart.png")
        if report.suffix == ".png"
        else report.with_suffix(".png")
    )


def transfer_command(
    single: list[Path] = typer.Option(
        ..., "--single", help="Single-task eval report(s) or run dir(s) (repeatable)."
    ),
    multi: Path = typer.Option(..., "--multi", help="The multi-task eval report or run dir."),
    to: Path = typer.Option(None, "--to", help="Write the transfer report JSON here."),
    chart: Path = typer.Option(
        None,
        "--chart",
        help="Where to draw the PNG bar chart. Default: next to the --to report (its name with .png); "
        "with neither --to nor --chart no chart is drawn.",
    ),
    tolerance: float = typer.Option(
        0.0, help="A task counts as positive transfer when its gain exceeds this."
    ),
) -> None:
    """Per task, the multi-task score minus the single-task score, and the share of tasks with positive transfer.

    The bar chart goes to --chart, else beside the --to report (REPORT with .png); with neither, none is drawn.
    """
    from avuie.eval.transfer import load_report, plot_transfer, transfer_report

    try:
        result = transfer_report([load_report(p) for p in single], load_report(multi), tolerance)
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if not result["n_tasks"]:
        console.print("[red]error:[/red] the single-task and multi-task reports share no task")
        raise typer.Exit(1)
    table = Table(title="multi-task transfer")
    for col in ("task", "metric", "single", "multi", "gain"):
        table.add_column(col)
    for name, row in result["tasks"].items():
        style = "green" if row["positive"] else "red"
        table.add_row(
            name, row["metric"], _fmt(row["single"]), _fmt(row["multi"]), f"[{style}]{row['gain']:+.4f}"
        )
    console.print(table)
    console.print(f"positive transfer on {result['n_positive']}/{result['n_tasks']} tasks "
                  f"({result['share_positive']:.0%}), mean gain {result['mean_gain']:+.4f}")  # fmt: skip
    for side in ("single_only", "multi_only"):
        if result[side]:
            console.print(
                f"[yellow]not compared ({side.replace('_', ' ')}): {', '.join(result[side])}[/yellow]"
            )
    chart = chart or default_chart_path(to)
    result["chart"] = str(plot_transfer(result, chart)) if chart else None
    console.print(f"chart written to {chart}" if chart else "no chart drawn (give --chart or --to)")
    if to:
        to.parent.mkdir(parents=True, exist_ok=True)
        to.write_text(json.dumps(result, indent=2))
        console.print(f"transfer report written to {to}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app: eval, transfer."""
    app.command("eval")(eval_command)
    app.command("transfer")(transfer_command)
