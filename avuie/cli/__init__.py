"""The `avuie` command line: one Typer app; each area registers its commands from its own module."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="avuie",
    help="Build, check, stream and train on AV-UIE v2 (the Crab+ audio-visual instruction data).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines `register(app)`. Kept as names so that one area's optional dependencies
# (torch for train, datasets for export) are imported only when its command runs.
COMMAND_MODULES = (
    "avuie.cli.build",  # build, scan, sources, validate, schema
    "avuie.cli.data",  # query, stats, export
    "avuie.cli.serve",  # serve
    "avuie.cli.reason",  # reason, review
    "avuie.cli.train",  # train, predict
    "avuie.cli.eval",  # eval, transfer
    "avuie.cli.view",  # view
    "avuie.cli.hub",  # push
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:  # pragma: no cover - console entry point
    """Run the CLI."""
    app()
