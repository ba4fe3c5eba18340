"""`avuie serve`: serve a build's shards read-only over HTTP (see avuie.shards.server)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the `serve` command to the app."""
    app.command("serve")(serve)


def _index_shards(out: Path, console):
    """Open the shard catalog of OUT and index its shards with a progress bar; return (catalog, index)."""
    from avuie.cli.progress import progress_bar
    from avuie.shards.layout import find_shards
    from avuie.shards.server import ShardCatalog

    try:
        catalog = ShardCatalog(out)
    except FileNotFoundError as error:
        raise typer.BadParameter(str(error), param_hint="OUT") from error
    total = len(find_shards(catalog.root))
    if total == 0:
        raise typer.BadParameter(f"no shards (*.tar) under {out}", param_hint="OUT")
    with progress_bar(console, transient=True) as progress:
        task = progress.add_task("indexing shards", total=total)
        index = catalog.refresh(
            progress=lambda rel: progress.update(task, advance=1, description=f"indexing {rel}")
        )
    return catalog, index


def _run(
    catalog, index: dict, out: Path, host: str, port: int, token: str | None, log_level: str, limits
) -> None:
    """Run the server on the indexed catalog until it stops; announce the URL when it listens."""
    from avuie.shards.server import run_server

    def ready(url: str) -> None:
        guard = "token required" if token else "no token"
        typer.echo(
            f"Serving {len(index['shards'])} shards ({index['total']} samples) from {out} at {url} ({guard})"
        )
        typer.echo(f"Index: {url}/index.json   Stop: Ctrl-C or SIGTERM", err=False)

    try:
        run_server(
            catalog.root,
            host,
            port,
            token,
            catalog=catalog,
            log_level=log_level,
            on_ready=ready,
            limits=limits,
        )
    except OSError as error:
        raise typer.BadParameter(
            f"cannot listen on {host}:{port}: {error}", param_hint="--host/--port"
        ) from error


def serve(
    where: str = typer.Argument(
        ...,
        metavar="OUT",
        help="Build directory (or a root holding several builds) to serve, or its URL (s3://bucket/avuie: served "
        "from a local copy, fetched first).",
    ),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, help="Port to listen on (0 picks a free one)."),
    token: str | None = typer.Option(
        None,
        envvar="AVUIE_SERVE_TOKEN",
        help="Require 'Authorization: Bearer TOKEN' on every request, /healthz included (or set AVUIE_SERVE_TOKEN).",
    ),
    log_level: str = typer.Option("warning", help="uvicorn log level (debug, info, warning, error)."),
    header_timeout: float = typer.Option(
        10.0,
        help="Seconds a client has to send a whole request head (silent or half-sent connections close).",
    ),
    keep_alive: float = typer.Option(30.0, help="Seconds an idle keep-alive connection stays open."),
    max_connections: int | None = typer.Option(
        None,
        min=1,
        help="Open connections at most; over it the longest-idle one is closed (default: what the open-file limit allows).",
    ),
) -> None:
    """Serve the shards under OUT read-only over HTTP, with Range requests, until SIGTERM or Ctrl-C.

    GET /index.json lists every shard (URL, samples, bytes, sha256) with counts per source, family and split;
    GET /healthz says the process is up. With --token every request, /healthz included, needs
    'Authorization: Bearer TOKEN' (401 without it). Connections that stay silent or half-sent past
    --header-timeout are closed, and past --max-connections the longest-idle one is; the open-file limit is
    raised to its hard limit at start. Stream with avuie.shards.loader.AVStream("http://HOST:PORT"),
    webdataset (the shard URLs) or fsspec.
    """
    from rich.console import Console

    from avuie.cli.build import readable
    from avuie.shards.guard import ServerLimits

    console = Console(stderr=True)
    out = readable(where)
    try:
        limits = ServerLimits(header_timeout, keep_alive, max_connections=max_connections)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    catalog, index = _index_shards(out, console)

    _run(catalog, index, out, host, port, token, log_level, limits)
    console.print("server stopped")
