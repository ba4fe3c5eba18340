"""`avuie push`: publish an hf export on the Hugging Face Hub (see avuie.export.hub)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the `push` command to the app."""
    app.command("push")(push)


def push(
    dest: Path = typer.Argument(
        ..., help="An hf export: the DEST of `avuie export OUT --format hf --to DEST`."
    ),
    repo: str = typer.Option(
        ..., "--repo", help="Dataset repository on the Hub, as user/name (created if new)."
    ),
    private: bool = typer.Option(False, "--private", help="Create the repository private."),
    token: str | None = typer.Option(
        None,
        envvar="HF_TOKEN",
        help="Hub token with write access (or set HF_TOKEN, or `hf auth login` once).",
    ),
    endpoint: str | None = typer.Option(
        None, envvar="HF_ENDPOINT", help="Hub address (or set HF_ENDPOINT); default: the Hugging Face Hub."
    ),
) -> None:
    """Upload DEST to the Hub in one commit: one Parquet file per source and split (Image, Audio and typed target
    features kept) and the dataset card (configs per source, licenses, citations, build digest). Afterwards
    `datasets.load_dataset("user/name", "all")` (or a source's name as the config) loads it."""
    from avuie.export.card import CARD
    from avuie.export.hub import PushError
    from avuie.export.hub import push as push_export

    if not (dest / CARD).is_file():
        raise typer.BadParameter(
            f"{dest} holds no hf export (no {CARD}): run avuie export OUT --format hf --to {dest}"
        )
    try:
        result = push_export(
            dest, repo, private, token, endpoint, progress=lambda line: typer.echo(line, err=True)
        )
    except PushError as error:
        raise typer.BadParameter(str(error)) from error
    except (
        Exception
    ) as error:  # huggingface_hub's HTTP, auth and validation errors: say what failed, no trace
        typer.echo(f"push to {repo} failed: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(f"pushed {len(result['files'])} files to {result['url']} (commit {result['commit']})")
