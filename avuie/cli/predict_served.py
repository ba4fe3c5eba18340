"""`avuie predict --base-url URL --model NAME`: predictions from a served model (avuie.eval.served). No torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console(stderr=True)
TRAINED_RUN_ONLY = {
    "run": "--run",
    "batch_size": "--batch-size",
    "checkpoint": "--checkpoint",
    "max_length": "--max-length",
}


def served_settings(opts: dict[str, Any]) -> Any:
    """The ServedSettings of the predict command's options (by parameter name); BadParameter when they do not
    describe a served model (no --model, an option of trained runs, an unknown or impossible --served-opt)."""
    from avuie.cli.build import parse_params
    from avuie.eval.served import make_served_settings

    if not opts["base_url"] or not opts["model"]:
        raise typer.BadParameter("a served model needs both --base-url URL and --model NAME")
    given = [flag for name, flag in TRAINED_RUN_ONLY.items() if opts.get(name) is not None]
    if given:
        raise typer.BadParameter(f"{', '.join(given)} apply to a trained run (--run), not to --base-url")
    extra = parse_params(opts["served_opt"])
    if opts["max_new_tokens"]:
        extra["max_tokens"] = opts["max_new_tokens"]
    to = Path(opts["to"])
    base = {"api_key": os.environ.get("OPENAI_API_KEY"), "concurrency": opts["concurrency"], "timeout": 120.0}
    try:
        return make_served_settings(
            opts["model"],
            opts["base_url"],
            **{**base, "cache_path": to.parent / f"{to.name}.cache.sqlite", **extra},
        )
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--served-opt") from exc


def predict_served_cmd(opts: dict[str, Any]) -> None:
    """Run served-model predictions for the predict command's options (by parameter name: base_url, model, data,
    split, to, limit, token, max_new_tokens, concurrency, served_opt) with a progress bar, and print the summary.
    Exit 2 for bad settings, data or endpoint; exit 1 when some samples got no response (the file holds the rest)."""
    from avuie.cli.progress import progress_bar
    from avuie.eval.served import predict_served
    from avuie.reasoning.chat import EndpointError

    settings, to = served_settings(opts), opts["to"]
    with progress_bar(console) as bar:
        task = bar.add_task(f"predict {settings.model}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            summary = predict_served(
                opts["data"], opts["split"], to, settings, opts["token"], opts["limit"], progress
            )
        except (ValueError, OSError, EndpointError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
    stats = summary.stats
    typer.echo(
        f"wrote {summary.written} of {summary.total} predictions to {to} "
        f"(requests {stats['requests']}, cached {stats['cache_hits']}, retries {sum(stats['retries'].values())})"
    )
    if summary.failed:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary.failed.items()))
        console.print(
            f"[yellow]{summary.total - summary.written} samples got no response[/yellow] ({reasons}), e.g. "
            f"{', '.join(summary.failed_ids[:5])}; run the same command again to ask for them"
        )
        raise typer.Exit(1)
