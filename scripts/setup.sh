#!/usr/bin/env bash
# Create .venv (once) and install avuie with every extra. torch is installed FIRST and pinned (torch==2.13.0,
# a CPU build), so that no other package pulls an unpinned multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.avuie-installed
want=$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python -m pip install -q --upgrade pip
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -e ".[train,export,dev]"
  echo "$want" > "$stamp"
fi
# overlay DIR FILE: the exact releases FILE pins, installed with --no-deps into DIR (reinstalled when FILE
# changes), used by tests through PYTHONPATH in front of the venv's own packages.
overlay() {
  local want
  want=$(sha256sum "$2" | cut -c1-16)
  if [ ! -f "$1/.stamp" ] || [ "$(cat "$1/.stamp")" != "$want" ]; then
    rm -rf "$1"
    python -m pip install -q --no-deps --target "$1" -r "$2"
    echo "$want" > "$1/.stamp"
  fi
}
# The oldest transformers the train extra supports (the first release with Qwen2.5-Omni, the tokenizers /
# huggingface_hub it needs, and the floors of peft, safetensors, accelerate), beside the venv's own torch and
# newest transformers: tests/test_trainer_releases.py trains the tiny config under both ends.
overlay .venv/transformers-oldest scripts/transformers-oldest.txt
# The floors of the core dependencies: tests/test_dependency_floors.py runs the build, media, catalog, server
# and reasoning tests under them.
overlay .venv/core-oldest scripts/core-oldest.txt
