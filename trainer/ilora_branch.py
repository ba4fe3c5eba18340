"""The I-LoRA adapter branch as one autograd Function with a hand-written backward (used by ILoRALinear).

It saves for backward what LoRA's own branch saves plus the gates, and recomputes the rest, so that the layer
costs about what a peft LoRA layer of the same rank costs (benchmarks/bench_ilora.py measures it). Each pass over
an activation-sized tensor counts: the dropout mask is drawn as booleans and applied with one `where` (its scale
and alpha/r go on the small [..., r] tensors), and the branch's output is added into the base layer's output by
the same matmul (addmm) instead of a separate sum.
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


def _dropped(x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """x with the dropped positions zeroed (unscaled: the 1/(1-p) is applied to smaller tensors)."""
    return x if keep is None else torch.where(keep, x, 0)


class ILoRABranch(torch.autograd.Function):
    """result + (alpha/r) * sum_h g_h B_h A dropout(x), with a hand-written backward.

    Takes the base layer's output without its bias, `result` (a fresh tensor no one saved: it is updated in place
    when it is no view and its dtype is the adapter's, else a new sum is returned), and the bias (or None). Saves for backward only what LoRA's own branch saves, plus the
    gates: the layer input x (in its own dtype; LoRA saves dropout(x), a new tensor of the same size), the
    dropout mask as booleans, z = A dropout(x) [..., r] and the gates [..., H]. dropout(x), the mixed activations
    [..., H*r] and the router logits are recomputed in backward. Returns (output, gates); the gates carry no
    gradient.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x, result, bias, lora_a, lora_b, route, p: float, scaling: float):
        xa = x.to(lora_a.dtype)
        keep = torch.empty_like(xa, dtype=torch.bool).bernoulli_(1.0 - p) if p > 0 else None
        z = F.linear(_dropped(xa, keep), lora_a)  # [..., r]
        if keep is not None:
            z.mul_(1.0 / (1.0 - p))
        g = torch.softmax(F.linear(xa, route).float(), dim=-1)  # [..., H]
        mixed = _mix(g, z).mul_(scaling)
        b = _stacked(lora_b).to(z.dtype)
        if result.dtype == z.dtype and result._base is None and result.is_contiguous():
            flat = result.view(-1, result.shape[-1])
            if bias is not None:
                flat.add_(bias)
            flat.addmm_(mixed.view(-1, mixed.shape[-1]), b.t())
            ctx.mark_dirty(result)
        else:
            result = (result if bias is None else result + bias) + F.linear(mixed, b).to(result.dtype)
        ctx.save_for_backward(x, keep, z, g, lora_a, lora_b, route)
        ctx.p, ctx.scaling = p, scaling
        ctx.mark_non_differentiable(g)
        return result, g

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad, _grad_gates):
        x, keep, z, g, lora_a, lora_b, route = ctx.saved_tensors
        dtype, (heads, out, r) = lora_a.dtype, lora_b.shape
        inv_keep = 1.0 if keep is None else 1.0 / (1.0 - ctx.p)
        gd = grad.to(dtype).reshape(-1, out)
        z2, g2 = z.reshape(-1, r), g.reshape(-1, heads)
        grad_b = (gd.t() @ _mix(g2, z2)).mul_(ctx.scaling).reshape(out, heads, r).permute(1, 0, 2)
        d_mixed = (gd @ _stacked(lora_b).to(dtype)).mul_(ctx.scaling).reshape(-1, heads, r)
        d_z = (d_mixed * g2.to(dtype).unsqueeze(-1)).sum(1)  # [N, r]
        d_g = (d_mixed * z2.unsqueeze(1)).sum(-1).float()  # [N, H]
        d_logits = (g2 * (d_g - (g2 * d_g).sum(-1, keepdim=True))).to(dtype)  # softmax backward
        x2 = x.to(dtype).reshape(-1, x.shape[-1])
        keep2 = None if keep is None else keep.reshape(-1, keep.shape[-1])
        d_z = d_z.mul_(inv_keep) if keep is not None else d_z  # dropout's scale, on the small side
        grad_a, grad_route = d_z.t() @ _dropped(x2, keep2), d_logits.t() @ x2
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = _dropped(d_z @ lora_a, keep2).addmm_(d_logits, route).reshape(x.shape).to(x.dtype)
        grad_bias = gd.sum(0).to(grad.dtype) if ctx.needs_input_grad[2] else None
        return grad_x, grad, grad_bias, grad_a, grad_b.to(lora_b.dtype), grad_route, None, None
