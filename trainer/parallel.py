"""Several processes: process group setup, DDP or FSDP2 wrapping, gradient sync and clipping.

FSDP2 shards the LLM body (each decoder layer, then the body but its token embedding, which the multimodal
models call outside the body's forward): it runs on every rank at every step. The media
encoders are not sharded: a batch without video skips the vision tower on that rank, which a sharded module
cannot do (its all-gathers would not match the other ranks'). Their weights are replicated (frozen) and the
gradients of their trainable tensors (I-LoRA of the encoders, modular projectors) are all-reduced by hand, a
missing gradient counting as zero. DDP runs with find_unused_parameters for the same reason.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Dist:
    """Where this process sits: rank, world size, device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0


def setup_distributed() -> Dist:
    """Join the torchrun process group when WORLD_SIZE > 1 (NCCL on GPU, gloo on CPU); pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Dist(rank, world, local, device)


def barrier(d: Dist) -> None:
    """Wait for all ranks (no-op on one process)."""
    if d.world > 1:
        dist.barrier()


def find_llm_body(model: nn.Module) -> nn.Module:
    """The module whose `.layers` holds the LLM decoder layers (Omni: model.language_model; HF LMs: model)."""
    for module in model.modules():
        layers = getattr(module, "layers", None)
        if (
            isinstance(layers, nn.ModuleList)
            and len(layers)
            and type(layers[0]).__name__.endswith("DecoderLayer")
        ):
            return module
    raise ValueError("no LLM decoder layers (a `.layers` list of *DecoderLayer) found to shard with FSDP")


class Parallel:
    """The model as the training loop calls it, plus what each step needs: no-sync contexts and grad sync."""

    def __init__(self, model: nn.Module, mode: str, d: Dist):
        self.d, self.mode, self.module = d, mode if d.world > 1 else "single", model
        self.model, self.body, self.replicated = model, None, []
        if self.mode == "ddp":
            ids = [d.local_rank] if d.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=True
            )
        elif self.mode == "fsdp":
            from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

            kw = {}
            if d.device.type == "cuda":
                kw["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            self.body = find_llm_body(model)
            for layer in self.body.layers:
                fully_shard(layer, **kw)
            embed = getattr(
                self.body, "embed_tokens", None
            )  # looked up outside the body's forward: keep whole
            fully_shard(
                self.body, ignored_params=set(embed.parameters()) if embed is not None else None, **kw
            )
            inside = {id(p) for p in self.body.parameters()}
            self.replicated = [p for p in model.parameters() if p.requires_grad and id(p) not in inside]
        elif self.mode != "single":
            raise ValueError(f"train.distributed must be 'ddp' or 'fsdp', got {mode!r}")

    def micro_step(self, last: bool):
        """Context for one micro-batch's forward+backward: gradient sync only on the last of a step."""
        if self.mode == "ddp" and not last:
            return self.model.no_sync()
        if self.mode == "fsdp":
            self.body.set_requires_gradient_sync(last)
        return nullcontext()

    def finish_gradients(self) -> None:
        """After the last backward of a step: average the replicated trainable tensors' grads over ranks."""
        if self.mode != "fsdp" or not self.replicated:
            return
        for p in self.replicated:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1).float() for p in self.replicated])
        dist.all_reduce(flat)
        flat /= self.d.world
        offset = 0
        for p in self.replicated:
            n = p.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n


def clip_gradients(params: list[torch.Tensor], max_norm: float, d: Dist) -> torch.Tensor:
    """Scale gradients so their global L2 norm is at most max_norm (<= 0: no clipping); returns the norm.

    The norm stays a device tensor (no synchronisation: read it when logging). Works with plain tensors
    (single/DDP: identical on every rank) and FSDP2 DTensor shards (their squared norms are summed over ranks
    with one all-reduce).
    """
    from torch.distributed.tensor import DTensor

    grads = [p.grad for p in params if p.grad is not None]
    plain = [g for g in grads if not isinstance(g, DTensor)]
    local = [g.to_local() for g in grads if isinstance(g, DTensor)]

    def squares(tensors: list[torch.Tensor]) -> torch.Tensor:
        if not tensors:
            return torch.zeros((), dtype=torch.float64, device=d.device)
        return torch.stack(torch._foreach_norm(tensors)).double().pow(2).sum().to(d.device)

    sharded = squares(local)
    if d.world > 1 and local:
        dist.all_reduce(sharded)
    norm = (sharded + squares(plain)).sqrt()
    if max_norm > 0 and grads:
        scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
        tensors = plain + local
        for dtype in {t.dtype for t in tensors}:
            torch._foreach_mul_([t for t in tensors if t.dtype == dtype], scale.to(dtype))
    return norm
