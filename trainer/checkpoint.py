"""Checkpoints of a run: adapter (+ projectors), optimizer, scheduler, and per rank the RNG and loader state.

RUN/checkpoints/step_XXXXXX/ holds adapter_model.safetensors + ilora_config.json (loadable with
`avuie.trainer.ilora.load_ilora`), trainer_state.pt (step, optimizer, scheduler, the schedule's settings) and
rank<r>.pt (RNG, loader); RUN/checkpoints/latest names the newest. A checkpoint is written under a .tmp name
and renamed when complete. Full (unsharded) optimizer state is gathered with torch.distributed.checkpoint, so
one format serves one process, DDP and FSDP (resuming needs the same number of ranks, for the per-rank loader
and RNG state).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch

from .ilora import write_adapter
from .parallel import Dist, barrier

CKPT_DIR = "checkpoints"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every RNG state of this process (restored on resume, so dropout masks continue identically)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` saved."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    run: Path,
    step: int,
    model,
    optimizer,
    scheduler,
    source,
    ilora,
    d: Dist,
    keep: int,
    extra_prefixes=(),
    schedule: dict | None = None,
    names: dict[str, str] | None = None,
) -> None:
    """Write checkpoints/step_XXXXXX and point `latest` at it; keep the `keep` newest checkpoints.

    `schedule` ({"max_steps", "warmup_steps", "lr"}) is stored so that a resume can tell the schedule changed.

    `model` may be wrapped (DDP/FSDP); its trainable tensors are saved: I-LoRA weights plus those whose names
    start with `extra_prefixes` (the modular projectors). `source` is the BatchSource (its state_dict is saved).
    `names` ({module name: canonical name}, ilora.adapter_names) renames the adapter tensors, so that the
    adapter loads under other transformers releases.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    model_sd, optim_sd = get_state_dict(model, optimizer, options=opts)
    folder = run / CKPT_DIR / f"step_{step:06d}"
    tmp = folder.with_name(folder.name + ".tmp")
    if d.main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(d)
    torch.save({"rng": rng_state(), "loader": source.state_dict()}, tmp / f"rank{d.rank}.pt")
    if d.main:
        write_adapter(_adapter_tensors(model_sd, names or {}, extra_prefixes), tmp, ilora)
        torch.save(
            {
                "step": step,
                "optimizer": optim_sd,
                "scheduler": scheduler.state_dict(),
                "world": d.world,
                "schedule": schedule,
            },
            tmp / "trainer_state.pt",
        )
    barrier(d)
    if d.main:
        _publish(run, tmp, folder, keep)
    barrier(d)


def _adapter_tensors(model_sd: dict, names: dict[str, str], extra_prefixes) -> dict:
    """The tensors a checkpoint's adapter file holds: I-LoRA weights under their canonical module names
    (`names`, so that they load under other transformers releases) plus those starting with `extra_prefixes`."""
    adapter = {}
    for key, value in model_sd.items():
        module, _, part = key.rpartition(".")
        if part.startswith("lora_"):
            adapter[f"{names.get(module, module)}.{part}.weight"] = value
    extra = {k: v for k, v in model_sd.items() if k.startswith(tuple(extra_prefixes))}
    return {**adapter, **extra}


def _publish(run: Path, tmp: Path, folder: Path, keep: int) -> None:
    """Move a finished checkpoint `tmp` to `folder`, point `latest` at it and keep the `keep` newest."""
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    (run / CKPT_DIR / "latest").write_text(folder.name)
    old = sorted(p for p in (run / CKPT_DIR).glob("step_??????") if p != folder)
    for p in old[: max(0, len(old) - max(1, keep) + 1)]:
        shutil.rmtree(p, ignore_errors=True)


def latest_checkpoint(run: Path) -> Path | None:
    """checkpoints/<latest> of a run folder, or None."""
    pointer = run / CKPT_DIR / "latest"
    return run / CKPT_DIR / pointer.read_text().strip() if pointer.exists() else None


def load_checkpoint(
    folder: Path, model, optimizer, scheduler, source, d: Dist, names: dict[str, str] | None = None
) -> tuple[int, dict | None]:
    """Restore adapter, optimizer, scheduler, RNG and loader state (`names` as for save_checkpoint).

    Returns (the step to continue from, the schedule saved with it or None for older checkpoints). The
    optimizer's learning rates are those of the saved schedule: the recipe recomputes them for its own.
    """
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    state = torch.load(folder / "trainer_state.pt", map_location="cpu", weights_only=False)
    if state.get("world", 1) != d.world:
        raise ValueError(
            f"{folder} was written by {state['world']} ranks; resume with the same number ({d.world})"
        )
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    module_of = {canonical: module for module, canonical in (names or {}).items()}
    model_sd = {}
    for key, value in tensors.items():
        if ".lora_" in key:
            module, _, part = key.removesuffix(".weight").rpartition(".")
            key = f"{module_of.get(module, module)}.{part}"
        model_sd[key] = value
    opts = StateDictOptions(full_state_dict=True, strict=False)
    set_state_dict(
        model, optimizer, model_state_dict=model_sd, optim_state_dict=state["optimizer"], options=opts
    )
    scheduler.load_state_dict(state["scheduler"])
    mine = torch.load(folder / f"rank{d.rank}.pt", map_location="cpu", weights_only=False)
    source.load_state_dict(mine["loader"])
    set_rng_state(mine["rng"])
    return int(state["step"]), state.get("schedule")
