"""I-LoRA: LoRA with one shared down-projection, several up-projection heads and a token-wise router.

On every adapted linear layer (from the released Crab / Crab+ code):

    y = W x + (alpha / r) * sum_h softmax(router(x))_h * B_h(A(dropout(x)))

with A: in -> r shared, B_1..B_H: r -> out (initialised to zero, so an adapted model starts equal to its base),
and the router a bias-free Linear(in -> H) on the layer input, dense softmax, no top-k. With H = 1 it is plain
LoRA. All heads run in one matmul: the gate-weighted copies of A x are laid side by side ([..., H*r]) and
multiplied once by the stacked B ([out, H*r]).

Use it on any `nn.Module`:

    cfg = ILoRAConfig(r=128, alpha=256, num_heads=3, target_modules=[r".*\\.q_proj", ...])
    names = inject_ilora(model, cfg)          # replaces matching nn.Linear in place, freezes the rest
    save_ilora(model, "adapter/", cfg)        # adapter-only safetensors + ilora_config.json
    load_ilora(model, "adapter/")             # also reads Crab-style names (lora_A, lora_B{i}, lora_route)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .ilora_branch import ILoRABranch
from .placement import find_towers, foreign_to_canonical, select_targets

ADAPTER_FILE = "adapter_model.safetensors"
CONFIG_FILE = "ilora_config.json"
_CRAB_B = re.compile(r"^(?P<mod>.+)\.lora_B(?P<head>\d+)\.weight$")


@dataclass
class ILoRAConfig:
    """Where and how to place I-LoRA. `target_modules` are regexes matched (fullmatch) against module names."""

    r: int = 128
    alpha: float = 256.0
    num_heads: int = 3
    dropout: float = 0.1
    target_modules: list[str] = field(default_factory=list)

    @property
    def scaling(self) -> float:
        """alpha / r, the factor on the adapter branch."""
        return self.alpha / self.r

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ILoRAConfig:
        """Build from a dict, ignoring unknown keys."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class RoutingRecorder:
    """Collects per-sample router statistics of the layers that see [batch, tokens, features] inputs.

    `segments` [batch, tokens] gives the sample each position belongs to (-1: padding; a packed row holds
    several samples, an unpacked batch has sample n in row n), `samples` how many samples there are. Only
    layers whose input matches its shape are recorded (the LLM layers). Everything stays on the device (no
    synchronisation inside the step); `per_sample()` gives the mean gate per head [samples, H] and the mean
    gate entropy [samples], averaged over each sample's tokens and the recorded layers.
    """

    def __init__(self, segments: torch.Tensor, samples: int | None = None):
        self.shape = segments.shape
        self.samples = segments.shape[0] if samples is None else samples
        self.index = torch.where(segments >= 0, segments, self.samples).reshape(-1)  # padding -> spare row
        self.gate_sum: torch.Tensor | None = None
        self.entropy_sum: torch.Tensor | None = None
        self.layers = 0

    def _per_sample(self, values: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(self.samples + 1, *values.shape[1:], dtype=values.dtype, device=values.device)
        return out.index_add_(0, self.index.to(values.device), values)[: self.samples]

    def add(self, gates: torch.Tensor) -> None:
        """Record the [batch, tokens, H] gates of one layer (ignored when the shape does not match)."""
        if gates.dim() != 3 or gates.shape[:2] != self.shape:
            return
        g = gates.detach().float().reshape(-1, gates.shape[-1])
        ent = -(g * g.clamp_min(1e-12).log()).sum(-1)
        gs, es = self._per_sample(g), self._per_sample(ent)
        self.gate_sum = gs if self.gate_sum is None else self.gate_sum + gs
        self.entropy_sum = es if self.entropy_sum is None else self.entropy_sum + es
        self.layers += 1

    def per_sample(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mean gate per head [samples, H], mean entropy [samples]) or None when nothing was recorded."""
        if self.gate_sum is None:
            return None
        ones = torch.ones(self.index.numel(), device=self.gate_sum.device)
        denom = self._per_sample(ones).clamp_min(1.0) * self.layers
        return self.gate_sum / denom[:, None], self.entropy_sum / denom


class ILoRALinear(nn.Module):
    """A frozen `nn.Linear` plus the I-LoRA branch. `base` keeps the original layer (and its weight names)."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, num_heads: int, dropout: float):
        super().__init__()
        if r <= 0 or num_heads <= 0:
            raise ValueError(f"I-LoRA needs r > 0 and num_heads > 0, got r={r}, num_heads={num_heads}")
        self.base = base
        self.r, self.num_heads, self.scaling = r, num_heads, alpha / r
        kw = {"device": base.weight.device, "dtype": torch.float32}
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, **kw))
        self.lora_B = nn.Parameter(torch.zeros(num_heads, base.out_features, r, **kw))
        self.lora_route = nn.Parameter(torch.empty(num_heads, base.in_features, **kw))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.recorder: RoutingRecorder | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A and the router as nn.Linear (Kaiming uniform); every B at zero."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.lora_route, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    @property
    def weight(self) -> torch.Tensor:
        """The base weight (some model code reads `.weight` of its linear layers)."""
        return self.base.weight

    @property
    def bias(self) -> torch.Tensor | None:
        """The base bias."""
        return self.base.bias

    @property
    def in_features(self) -> int:
        """The base layer's input width."""
        return self.base.in_features

    @property
    def out_features(self) -> int:
        """The base layer's output width."""
        return self.base.out_features

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        """Router weights softmax(router(x)) of shape [..., H], computed in float32."""
        return torch.softmax(F.linear(x.to(self.lora_route.dtype), self.lora_route).float(), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """W x + b + (alpha/r) * sum_h g_h(x) B_h A dropout(x), all heads in one matmul (see ILoRABranch)."""
        base = self.base
        plain = type(base) is nn.Linear  # its bias is added by the branch, into W x in place
        result = F.linear(x, base.weight) if plain else base(x)
        p = self.dropout.p if isinstance(self.dropout, nn.Dropout) and self.training else 0.0
        out, g = ILoRABranch.apply(
            x,
            result,
            base.bias if plain else None,
            self.lora_A,
            self.lora_B,
            self.lora_route,
            p,
            self.scaling,
        )
        if self.recorder is not None:
            self.recorder.add(g)
        return out

    def forward_autograd(self, x: torch.Tensor) -> torch.Tensor:
        """The same function as `forward` written with plain autograd ops (kept for tests and the benchmark)."""
        result = self.base(x)
        dtype = self.lora_A.dtype
        z = F.linear(self.dropout(x).to(dtype), self.lora_A)  # [..., r]
        g = self.gates(x)
        mixed = (g.to(z.dtype).unsqueeze(-1) * z.unsqueeze(-2)).flatten(-2)  # [..., H*r]
        b_flat = self.lora_B.permute(1, 0, 2).reshape(self.lora_B.shape[1], -1)  # [out, H*r]
        delta = F.linear(mixed, b_flat.to(mixed.dtype))
        return result + (self.scaling * delta).to(result.dtype)

    def forward_head_loop(self, x: torch.Tensor) -> torch.Tensor:
        """Reference implementation with a Python loop over heads (for tests and the benchmark)."""
        result = self.base(x)
        z = F.linear(self.dropout(x).to(self.lora_A.dtype), self.lora_A)
        g = self.gates(x).to(z.dtype)
        delta = sum(g[..., h : h + 1] * F.linear(z, self.lora_B[h]) for h in range(self.num_heads))
        return result + (self.scaling * delta).to(result.dtype)

    def extra_repr(self) -> str:
        """Shown by print(model)."""
        return f"r={self.r}, heads={self.num_heads}, scaling={self.scaling:g}"


def iter_ilora_layers(model: nn.Module) -> Iterator[tuple[str, ILoRALinear]]:
    """Yield (module name, layer) for every I-LoRA layer of `model`."""
    for name, module in model.named_modules():
        if isinstance(module, ILoRALinear):
            yield name, module


def inject_ilora(model: nn.Module, config: ILoRAConfig, freeze_base: bool = True) -> list[str]:
    """Replace every `nn.Linear` whose module name or canonical name (see trainer/placement.py) fullmatches a
    pattern of `config.target_modules` by an ILoRALinear.

    Freezes all other parameters when `freeze_base`. Returns the adapted module names; raises ValueError when
    no module matches (a typo in the patterns should not train nothing silently).
    """
    if not config.target_modules:
        raise ValueError("ILoRAConfig.target_modules is empty: give regexes of the nn.Linear names to adapt")
    if freeze_base:
        for p in model.parameters():
            p.requires_grad_(False)
    targets = select_targets(model, config.target_modules)
    if not targets:
        towers = ", ".join(f"{t.kind} at {t.blocks}" for t in find_towers(model).values()) or "none found"
        raise ValueError(
            f"no nn.Linear module matches {config.target_modules} (by module name or canonical name "
            f"<tower>.<block>.<name>; towers: {towers})"
        )
    for name, canonical in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        base = getattr(parent, child)
        layer = ILoRALinear(base, config.r, config.alpha, config.num_heads, config.dropout)
        layer.canonical_name = canonical
        setattr(parent, child, layer)
    return [name for name, _ in targets]


def adapter_names(model: nn.Module) -> dict[str, str]:
    """{module name: name in adapter files} of every I-LoRA layer (the canonical name where there is one)."""
    return {name: getattr(layer, "canonical_name", name) for name, layer in iter_ilora_layers(model)}


def ilora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Adapter-only tensors under canonical names: `<name>.lora_A.weight` [r,in], `.lora_B.weight` [H,out,r], `.lora_route.weight`."""
    out: dict[str, torch.Tensor] = {}
    names = adapter_names(model)
    for name, layer in iter_ilora_layers(model):
        for part in ("lora_A", "lora_B", "lora_route"):
            out[f"{names[name]}.{part}.weight"] = getattr(layer, part).detach().cpu().contiguous()
    return out


def save_ilora(model: nn.Module, folder: str | Path, config: ILoRAConfig, extra: dict | None = None) -> Path:
    """Write the model's adapter (safetensors) and its config to `folder`; `extra` tensors (projectors) go along."""
    tensors = ilora_state_dict(model)
    tensors.update(extra or {})
    return write_adapter(tensors, folder, config)


def write_adapter(tensors: dict[str, torch.Tensor], folder: str | Path, config: ILoRAConfig) -> Path:
    """Write adapter tensors (names as `ilora_state_dict` gives them) and `ilora_config.json` to `folder`."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    save_file(tensors, str(folder / ADAPTER_FILE), metadata={"format": "pt", "method": "ilora"})
    (folder / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2))
    return folder


def convert_crab_names(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map Crab-style names (`lora_A.weight`, `lora_B{i}.weight` [out,r], `lora_route.weight`) to ours.

    Our own names pass through unchanged; PEFT-style prefixes (`base_model.model.`) are stripped.
    """
    heads: dict[str, dict[int, torch.Tensor]] = {}
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        key = key.removeprefix("base_model.model.")
        m = _CRAB_B.match(key)
        if m:
            heads.setdefault(m["mod"], {})[int(m["head"])] = value
        else:
            out[key] = value
    for mod, by_head in heads.items():
        if sorted(by_head) != list(range(len(by_head))):
            raise ValueError(f"{mod}: Crab-style heads are not 0..H-1: {sorted(by_head)}")
        out[f"{mod}.lora_B.weight"] = torch.stack([by_head[h] for h in range(len(by_head))])
    return out


def _align_names(tensors: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename saved tensors to `<canonical name>.<part>.weight` of this model's layers.

    Accepts canonical names, this model's module names, another release's module names (their tower and block
    are read from the name) and names that differ by a leading prefix (e.g. `model.` or `thinker.`).
    """
    names = adapter_names(model)
    wanted = set(names.values())
    towers = find_towers(model)
    out = {}
    for key, value in tensors.items():
        module, _, part = key.removesuffix(".weight").rpartition(".")
        guess = [
            names.get(module),
            module if module in wanted else None,
            foreign_to_canonical(module, towers),
        ]
        hit = next((g for g in guess if g in wanted), None)
        if hit is None:
            tails = [w for w in wanted if w.endswith("." + module) or module.endswith("." + w)]
            hit = tails[0] if len(tails) == 1 else None
        out[f"{hit}.{part}.weight" if hit else key] = value
    return out


def load_ilora_tensors(model: nn.Module, tensors: dict[str, torch.Tensor], strict: bool = True) -> list[str]:
    """Copy adapter tensors (ours or Crab-style) into the model's I-LoRA layers; returns the names not used.

    With `strict`, every I-LoRA layer of the model must receive A, B and the router, with matching shapes.
    """
    names = adapter_names(model)
    own = {
        f"{names[n]}.{p}.weight": getattr(layer, p)
        for n, layer in iter_ilora_layers(model)
        for p in ("lora_A", "lora_B", "lora_route")
    }
    tensors = _align_names(convert_crab_names(tensors), model)
    missing = sorted(set(own) - set(tensors))
    if strict and missing:
        raise ValueError(f"adapter lacks {len(missing)} tensors, e.g. {missing[:3]}")
    unused = []
    with torch.no_grad():
        for key, value in tensors.items():
            if key not in own:
                unused.append(key)
                continue
            if own[key].shape != value.shape:
                raise ValueError(
                    f"{key}: adapter shape {tuple(value.shape)} != model shape {tuple(own[key].shape)}"
                )
            own[key].copy_(value.to(own[key].dtype))
    return unused


def load_ilora(model: nn.Module, folder: str | Path, strict: bool = True) -> list[str]:
    """Load `folder/adapter_model.safetensors` (or a .safetensors/.bin file path) into the model's I-LoRA layers.

    Returns the tensor names that are not I-LoRA weights of this model (e.g. projectors saved as `extra`).
    """
    path = Path(folder)
    if path.is_dir():
        path = path / ADAPTER_FILE
    if not path.exists():
        raise FileNotFoundError(f"no adapter weights at {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(str(path))
    else:
        tensors = torch.load(path, map_location="cpu", weights_only=True)
    return load_ilora_tensors(model, tensors, strict=strict)


def read_ilora_config(folder: str | Path) -> ILoRAConfig:
    """The ILoRAConfig saved next to an adapter."""
    return ILoRAConfig.from_dict(json.loads((Path(folder) / CONFIG_FILE).read_text()))


@contextmanager
def record_routing(
    model: nn.Module, segments: torch.Tensor, prefix: str = "", samples: int | None = None
) -> Iterator[RoutingRecorder]:
    """Within the block, the I-LoRA layers whose names start with `prefix` (e.g. the LLM's) report their gates
    to one RoutingRecorder built on the [batch, tokens] `segments` (see RoutingRecorder)."""
    recorder = RoutingRecorder(segments, samples)
    layers = [layer for name, layer in iter_ilora_layers(model) if name.startswith(prefix)]
    for layer in layers:
        layer.recorder = recorder
    try:
        yield recorder
    finally:
        for layer in layers:
            layer.recorder = None


def trainable_parameter_count(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total
