"""The learning-rate schedule (linear warmup, cosine decay) and what a resume does when it changed.

A resume with another train.max_steps (or lr, warmup) continues on the new schedule: the learning rate of the
next step is lr * factor(step) of the new schedule; `schedule_change` says what changed for the log.
"""

from __future__ import annotations

import math

import torch


def cosine_with_warmup(optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over `warmup` steps, then cosine decay to 0 at `total`."""

    def factor(step: int) -> float:
        """Multiplier of the base learning rate at `step`."""
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def apply_schedule(scheduler: torch.optim.lr_scheduler.LambdaLR, base_lr: float) -> list[float]:
    """Set every param group's lr to base_lr * lambda(last_epoch) of this scheduler; returns the lrs.

    After `load_state_dict` the optimizer holds the lrs of the schedule it was saved with; a resume with another
    max_steps (or lr) must continue on the new schedule.
    """
    scheduler.base_lrs = [base_lr for _ in scheduler.base_lrs]
    lrs = [
        base * fn(scheduler.last_epoch)
        for base, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
    ]
    for group, lr in zip(scheduler.optimizer.param_groups, lrs, strict=True):
        group["lr"], group["initial_lr"] = lr, base_lr
    scheduler._last_lr = list(lrs)
    return lrs


def old_schedule(previous: dict) -> dict | None:
    """The schedule of a run's recorded config (for checkpoints that predate the saved schedule)."""
    tcfg = previous.get("train") or {}
    if "max_steps" not in tcfg:
        return None
    total = int(tcfg["max_steps"])
    warmup = int(tcfg.get("warmup_steps", round(float(tcfg.get("warmup_ratio", 0.0)) * total)))
    return {"max_steps": total, "warmup_steps": warmup, "lr": float(tcfg.get("lr", 1e-4))}


def schedule_change(old: dict | None, new: dict, step: int) -> dict | None:
    """{"at_step", "from", "to", "message"} when the resumed run's schedule differs from the saved one, else None."""
    if not old:
        return None
    keys = [k for k in ("max_steps", "warmup_steps", "lr") if k in old and old[k] != new[k]]
    if not keys:
        return None
    parts = ", ".join(f"{k} {old[k]} -> {new[k]}" for k in keys)
    return {
        "at_step": step,
        "from": {k: old[k] for k in keys},
        "to": {k: new[k] for k in keys},
        "message": f"schedule changed ({parts}); the learning rate follows the new schedule from step {step + 1}",
    }
