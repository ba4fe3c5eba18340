"""`avuie view`: browse, see and correct the samples of a build in a web browser (see avuie.view)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the `view` command to the app."""
    app.command("view")(view)


def view(
    out: Path = typer.Argument(..., help="Build directory (or a root holding several builds) to view."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, help="Port to listen on (0 picks a free one)."),
    token: str | None = typer.Option(
        None,
        envvar="AVUIE_VIEW_TOKEN",
        help="Require this token on every request, as `avuie serve` does (or set AVUIE_VIEW_TOKEN); the printed "
        "URL carries it once, then the browser keeps it in a cookie.",
    ),
    log_level: str = typer.Option("warning", help="uvicorn log level (debug, info, warning, error)."),
) -> None:
    """Open a web page over the builds under OUT: browse and filter every sample, see its frames, audio, event
    spans, masks and boxes, edit or flag its reasoning chain, and apply the edits (`avuie review apply`).

    Pages: / samples (filters: source, split, family, reasoning origin, text), /rejects, /stats (charts and the
    data card), /review (pending edits and the apply button). Edits go to OUT/<build>/review.jsonl; applied ones
    move to review.applied.jsonl. Stop with Ctrl-C or SIGTERM.
    """
    from avuie.catalog.db import CatalogError
    from avuie.view.app import run_view

    def ready(url: str, viewer) -> None:
        builds, total = (
            len(viewer.store.builds),
            viewer.store.query("SELECT count(*) n FROM samples", [])[0]["n"],
        )
        typer.echo(f"Viewing {total:,} samples in {builds} build(s) under {out}")
        typer.echo(f"Open {url}/" + (f"?token={token}" if token else "") + "   Stop: Ctrl-C or SIGTERM")

    try:
        run_view(out, host, port, token, on_ready=ready, log_level=log_level)
    except CatalogError as error:
        raise typer.BadParameter(str(error), param_hint="OUT") from error
    except OSError as error:
        raise typer.BadParameter(
            f"cannot start the viewer on {host}:{port}: {error}", param_hint="--host/--port"
        ) from error
    typer.echo("viewer stopped", err=True)
