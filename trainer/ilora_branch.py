"""The I-LoRA adapter branch as one autograd Function with a hand-written backward (used by ILoRALinear).

It saves for backward what LoRA's own branch saves plus the gates, and recomputes the rest, so that the layer
costs about what a peft LoRA layer of the same rank costs (benchmarks/bench_ilora.py measures it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _mix(g: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Gate-weighted copies of z side by side: [..., H] x [..., r] -> [..., H*r]."""
    return (g.to(z.dtype).unsqueeze(-1) * z.unsqueeze(-2)).flatten(-2)


def _stacked(b: torch.Tensor) -> torch.Tensor:
    """B [H, out, r] as one matrix [out, H*r]."""
    return b.permute(1, 0, 2).reshape(b.shape[1], -1)


class ILoRABranch(torch.autograd.Function):
    """The adapter branch (alpha/r) * sum_h g_h B_h A dropout(x) with a hand-written backward.

    Saves for backward only what LoRA's own branch saves, plus the gates: the layer input x (in its own dtype;
    LoRA saves dropout(x), a new tensor of the same size), the dropout mask as booleans, z = A dropout(x)
    [..., r] and the gates [..., H]. dropout(x), the mixed activations [..., H*r] and the router logits are
    recomputed in backward instead of being kept. Returns (delta, gates); the gates carry no gradient.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x, lora_a, lora_b, route, p: float, scaling: float):
        xa = x.to(lora_a.dtype)
        keep = torch.empty_like(xa).bernoulli_(1.0 - p).bool() if p > 0 else None
        xd = xa if keep is None else xa * keep / (1.0 - p)
        z = F.linear(xd, lora_a)  # [..., r]
        g = torch.softmax(F.linear(xa, route).float(), dim=-1)  # [..., H]
        delta = F.linear(_mix(g, z), _stacked(lora_b).to(z.dtype)) * scaling
        ctx.save_for_backward(x, keep, z, g, lora_a, lora_b, route)
        ctx.p, ctx.scaling = p, scaling
        ctx.mark_non_differentiable(g)
        return delta, g

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad, _grad_gates):
        x, keep, z, g, lora_a, lora_b, route = ctx.saved_tensors
        dtype, (heads, out, r) = lora_a.dtype, lora_b.shape
        xa = x.to(dtype)
        xd = xa if keep is None else xa * keep / (1.0 - ctx.p)
        gd = (grad.to(dtype) * ctx.scaling).reshape(-1, out)
        z2, g2 = z.reshape(-1, r), g.reshape(-1, heads)
        grad_b = (gd.t() @ _mix(g2, z2)).reshape(out, heads, r).permute(1, 0, 2)
        d_mixed = (gd @ _stacked(lora_b).to(dtype)).reshape(-1, heads, r)
        d_z = (d_mixed * g2.to(dtype).unsqueeze(-1)).sum(1)  # [N, r]
        d_g = (d_mixed * z2.unsqueeze(1)).sum(-1).float()  # [N, H]
        d_logits = (g2 * (d_g - (g2 * d_g).sum(-1, keepdim=True))).to(dtype)  # softmax backward
        x2, xd2 = xa.reshape(-1, xa.shape[-1]), xd.reshape(-1, xd.shape[-1])
        grad_a, grad_route = d_z.t() @ xd2, d_logits.t() @ x2
        grad_x = None
        if ctx.needs_input_grad[0]:
            d_xd = (d_z @ lora_a).reshape(xa.shape)
            if keep is not None:
                d_xd = d_xd * keep / (1.0 - ctx.p)
            grad_x = (d_xd + (d_logits @ route).reshape(xa.shape)).to(x.dtype)
        return grad_x, grad_a, grad_b.to(lora_b.dtype), grad_route, None, None
