"""`python -m avuie` runs the CLI."""

from avuie.cli import app

app()
