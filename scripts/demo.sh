#!/usr/bin/env bash
# The main job on the bundled sample: set up .venv, then build every source from its bundled raw tree,
# validate, serve the shards over HTTP, stream them and take a few I-LoRA training steps (CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
avuie demo --out "${AVUIE_OUT:-avuie-out}" "$@"
