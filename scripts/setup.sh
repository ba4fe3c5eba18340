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
# The oldest transformers the train extra supports (scripts/transformers-oldest.txt: the first release with
# Qwen2.5-Omni, the tokenizers / huggingface_hub it needs, and the floors of peft, safetensors, accelerate), as a
# --target overlay beside the venv's own torch and newest transformers. tests/test_trainer_releases.py trains
# the tiny config under both ends.
oldest=.venv/transformers-oldest
want_oldest=$(sha256sum scripts/transformers-oldest.txt | cut -c1-16)
if [ ! -f "$oldest/.stamp" ] || [ "$(cat "$oldest/.stamp")" != "$want_oldest" ]; then
  rm -rf "$oldest"
  python -m pip install -q --no-deps --target "$oldest" -r scripts/transformers-oldest.txt
  echo "$want_oldest" > "$oldest/.stamp"
fi
# The floors of the core dependencies (scripts/core-oldest.txt), the same way: tests/test_dependency_floors.py
# runs the build, media, catalog, server and reasoning tests with this overlay in front of the venv.
floors=.venv/core-oldest
want_floors=$(sha256sum scripts/core-oldest.txt | cut -c1-16)
if [ ! -f "$floors/.stamp" ] || [ "$(cat "$floors/.stamp")" != "$want_floors" ]; then
  rm -rf "$floors"
  python -m pip install -q --no-deps --target "$floors" -r scripts/core-oldest.txt
  echo "$want_floors" > "$floors/.stamp"
fi
