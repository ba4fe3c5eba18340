"""`avuie adapter export`: a run's adapter as a peft LoRA, or in our own format with a loader snippet.

An I-LoRA layer computes W x + (alpha/r) * sum_h g_h(x) B_h A x, where the gates g(x) = softmax(router x) change
from token to token. A peft LoRA layer computes W x + (alpha/r) B A x with one fixed B. So:

- H = 1: the gate is always 1 and the layer *is* a LoRA: the export is exact (tested to 1e-5).
- H > 1: no peft LoRA reproduces it. The default writes our format (adapter_model.safetensors +
  ilora_config.json) and LOADING.md with the lines that load it; `head=k` exports B_k alone (as if the router
  always chose head k) and `average=True` the mean of the heads' B (as if the gates were uniform): peft LoRAs
  that approximate the adapter; AVUIE_EXPORT.json beside them says which.

Module names in the peft file are those of the model class under the installed transformers release (the
adapter itself is saved under release-independent names, see trainer/placement.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from .checkpoint import latest_checkpoint
from .ilora import ADAPTER_FILE, CONFIG_FILE, adapter_names, inject_ilora, read_ilora_config

LOADER_SNIPPET = """# Loading this I-LoRA adapter ({heads} heads; it is not a peft LoRA: its router mixes the heads per token)

```python
from avuie.trainer.ilora import inject_ilora, load_ilora, read_ilora_config

model = ...  # the base model it was trained on: {base}
inject_ilora(model, read_ilora_config("{folder}"))
load_ilora(model, "{folder}")
```
"""


class NotALoRA(ValueError):
    """An adapter with several heads asked for as a peft LoRA without choosing a head or the average."""


def skeleton(run: Path):
    """The run's base model with its I-LoRA layers, for the module names (weights on the meta device)."""
    import yaml

    from .config import validate_config
    from .models import build_bundle

    cfg = validate_config(yaml.safe_load((run / "config.yaml").read_text()))
    resolved = cfg.model.model_dump(exclude_none=True)
    if cfg.model.paradigm == "omni":  # the module tree only: no weights are read
        from transformers import Qwen2_5OmniThinkerForConditionalGeneration

        from .compat import load_thinker_config

        with torch.device("meta"):
            return Qwen2_5OmniThinkerForConditionalGeneration(load_thinker_config(resolved["path"])), resolved
    bundle, resolved = build_bundle(resolved, run, cfg.train.seed)
    return bundle.model, resolved


def pick_b(b: torch.Tensor, head: int | None, average: bool) -> torch.Tensor:
    """B [out, r] of a peft LoRA from I-LoRA's B [H, out, r]: the only head, a chosen head or the mean."""
    heads = b.shape[0]
    if heads == 1:
        return b[0]
    if average:
        return b.mean(0)
    if head is None:
        raise NotALoRA(
            f"this adapter has {heads} heads mixed per token by a router (y = Wx + s * sum_h g_h(x) B_h A x); a "
            "peft LoRA has one fixed B, so it cannot reproduce it. Choose --head K (B_K alone, as if the router "
            "always picked head K) or --average (the mean B, as if the gates were uniform), or --format ilora"
        )
    if not 0 <= head < heads:
        raise ValueError(f"--head must be in 0..{heads - 1}")
    return b[head]


def export_peft(run, to, checkpoint=None, head: int | None = None, average: bool = False) -> dict:
    """Write the run's adapter as a peft LoRA to `to`; returns {"format", "heads", "layers", "exact"}.

    Raises NotALoRA for H > 1 without `head` or `average` (see the module docstring).
    """
    from peft import LoraConfig
    from safetensors.torch import load_file, save_file

    run = Path(run)
    folder = Path(checkpoint) if checkpoint else latest_checkpoint(run)
    if folder is None or not (folder / ADAPTER_FILE).exists():
        raise FileNotFoundError(f"{run}: no checkpoint with an adapter")
    icfg, tensors = read_ilora_config(folder), load_file(str(folder / ADAPTER_FILE))
    if icfg.num_heads > 1 and head is None and not average:
        pick_b(torch.zeros(icfg.num_heads, 1, 1), head, average)  # raises NotALoRA with the reason
    model, resolved = skeleton(run)
    inject_ilora(model, icfg)
    out, modules = {}, []
    for module, canonical in adapter_names(model).items():
        out[f"base_model.model.{module}.lora_A.weight"] = tensors[f"{canonical}.lora_A.weight"]
        out[f"base_model.model.{module}.lora_B.weight"] = pick_b(
            tensors[f"{canonical}.lora_B.weight"], head, average
        )
        modules.append(module)
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    base = resolved.get("path") or resolved.get("llm")
    LoraConfig(r=icfg.r, lora_alpha=icfg.alpha, lora_dropout=0.0, target_modules=modules, base_model_name_or_path=base,
               bias="none").save_pretrained(str(to))  # fmt: skip
    save_file({k: v.contiguous() for k, v in out.items()}, str(to / "adapter_model.safetensors"))
    exact = icfg.num_heads == 1
    note = "exact (one head)" if exact else (f"head {head} only" if head is not None else "mean of the heads")
    (to / "AVUIE_EXPORT.json").write_text(
        json.dumps({"from": str(folder), "heads": icfg.num_heads, "b": note})
    )
    return {"format": "peft", "heads": icfg.num_heads, "layers": len(modules), "exact": exact, "b": note}


def export_ilora(run, to, checkpoint=None) -> dict:
    """Copy the run's adapter in our format to `to`, with LOADING.md (how to load it); returns a summary."""
    run = Path(run)
    folder = Path(checkpoint) if checkpoint else latest_checkpoint(run)
    if folder is None or not (folder / ADAPTER_FILE).exists():
        raise FileNotFoundError(f"{run}: no checkpoint with an adapter")
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    for name in (ADAPTER_FILE, CONFIG_FILE):
        shutil.copyfile(folder / name, to / name)
    heads = read_ilora_config(folder).num_heads
    model = _recorded_model(run)
    base = model.get("path") or model.get("llm") or "see the run's config.yaml"
    (to / "LOADING.md").write_text(LOADER_SNIPPET.format(heads=heads, base=base, folder=to))
    return {"format": "ilora", "heads": heads, "exact": True}


def _recorded_model(run: Path) -> dict:
    import yaml

    path = run / "config.yaml"
    return (yaml.safe_load(path.read_text()) or {}).get("model", {}) if path.exists() else {}
