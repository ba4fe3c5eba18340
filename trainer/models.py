"""Model assembly: pick the paradigm of a `model:` config section and build its `Bundle` (trainer/bundle.py).

`paradigm: omni` (Crab+, the Qwen2.5-Omni thinker) is built by trainer/omni.py, `paradigm: modular` (any causal
LM + CLIP/SigLIP + Whisper encoder + projectors) by trainer/modular.py.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .bundle import Bundle
from .modular import build_modular_bundle
from .omni import build_omni_bundle

PARADIGMS = {"omni": build_omni_bundle, "modular": build_modular_bundle}


def build_bundle(model_cfg: dict, run_dir: Path | None = None, seed: int = 0) -> tuple[Bundle, dict]:
    """Build (or load) the model of a `model:` config section. Returns the bundle and the resolved section.

    With `tiny: true` the tiny base model and tokenizer are created under RUN/base_model (once) and the resolved
    section points at them, so `predict` later loads exactly the same base through the real path.
    """
    cfg = dict(model_cfg)
    paradigm = cfg.get("paradigm", "omni")
    if paradigm not in PARADIGMS:
        raise ValueError(f"model.paradigm must be one of {sorted(PARADIGMS)}, got {paradigm!r}")
    dtype = getattr(torch, cfg.get("dtype", "float32"))
    return PARADIGMS[paradigm](cfg, run_dir, seed, dtype)
