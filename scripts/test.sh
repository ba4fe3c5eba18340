#!/usr/bin/env bash
# The test command: set up .venv, lint and format check with ruff, then the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check .
ruff format --check .
python -m pytest "$@"
