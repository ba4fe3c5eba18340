#!/usr/bin/env bash
# The test command: set up .venv, lint and format check with ruff, then the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/browser.sh  # headless Chromium for tests/test_view_browser.py (apt-get, only when missing)
. .venv/bin/activate
ruff check .
ruff format --check .
python -m pytest "$@"
