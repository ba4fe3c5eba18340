"""Where I-LoRA goes, found from the model's structure instead of one transformers release's dotted names.

transformers moves sub-modules between releases (the Qwen2.5-Omni thinker's LLM is `model.layers` in 4.52 and
5.17 but `model.language_model.layers` in 5.24; its towers move from the root to `model.`). What stays is the
structure: a multimodal model holds an LLM, an audio encoder and a vision encoder, each a sub-model with its
own config and one list of repeated blocks, and inside a block the linear layers keep their names
(`self_attn.q_proj`, `mlp.gate_proj`).

`find_towers(model)` finds the towers: every `nn.ModuleList` of blocks, classified by the config of the
nearest sub-model above it (`num_mel_bins` -> audio, `patch_size` -> vision, `vocab_size` -> llm; the largest
list wins when a tower has several). `canonical_names(model)` gives every linear layer inside a block a
release-independent name, `<tower>.<block index>.<name inside the block>`:

    model.language_model.layers.3.self_attn.q_proj  (5.24)  ->  llm.3.self_attn.q_proj
    model.layers.3.self_attn.q_proj                 (5.17)  ->  llm.3.self_attn.q_proj
    audio_tower.layers.0.fc1                        (5.17)  ->  audio.0.fc1

Placements are regexes fullmatched against either name, so the Crab+ placement (`CRAB_PLUS`) and any user
regex written for canonical names work on every release; regexes on a release's own names still work there.
Adapters are saved under canonical names, so an adapter written under one release loads under another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

TOWERS = ("llm", "audio", "vision")
# Crab+: LLM q,k,v,o,gate,up,down; audio encoder q,k,v; vision blocks' MLP (gate,up,down)
CRAB_PLUS = [
    r"llm\.\d+\.self_attn\.(q|k|v|o)_proj",
    r"llm\.\d+\.mlp\.(gate|up|down)_proj",
    r"audio\.\d+\.self_attn\.(q|k|v)_proj",
    r"vision\.\d+\.mlp\.(gate|up|down)_proj",
]
# modular: any causal LM's attention and MLP, the Whisper encoder's q,k,v, the CLIP/SigLIP blocks' MLP
MODULAR = [
    r"llm\.\d+\.self_attn\.(q|k|v|o)_proj",
    r"llm\.\d+\.mlp\.(gate|up|down)_proj",
    r"audio\.\d+\.self_attn\.(q|k|v)_proj",
    r"vision\.\d+\.mlp\.(fc1|fc2)",
]
_FOREIGN = re.compile(r"^(?:.*?\.)?(?P<list>layers|blocks)\.(?P<index>\d+)\.(?P<rest>.+)$")


@dataclass(frozen=True)
class Tower:
    """One tower: its kind (llm, audio, vision), the name of its block list, and how many blocks it has."""

    kind: str
    blocks: str  # e.g. "model.language_model.layers"
    count: int


def tower_kind(config) -> str | None:
    """llm / audio / vision from a sub-model's config, or None when it is none of them."""
    if hasattr(config, "num_mel_bins"):
        return "audio"
    if hasattr(config, "patch_size"):
        return "vision"
    if hasattr(config, "vocab_size"):
        return "llm"
    return None


def find_towers(model: nn.Module) -> dict[str, Tower]:
    """{kind: Tower} for the LLM, audio and vision towers of `model` that it has (see the module docstring)."""
    modules = dict(model.named_modules())
    found: dict[str, tuple[int, Tower]] = {}
    for name, module in modules.items():
        if not isinstance(module, nn.ModuleList) or not len(module):
            continue
        if len({type(block) for block in module}) != 1:
            continue
        kind = None
        parts = name.split(".")
        for cut in range(len(parts) - 1, -1, -1):  # nearest sub-model above the list
            owner = modules.get(".".join(parts[:cut]))
            if owner is not None and hasattr(owner, "config"):
                kind = tower_kind(owner.config)
                break
        if kind is None:
            continue
        size = sum(p.numel() for p in module.parameters())
        if kind not in found or size > found[kind][0]:
            found[kind] = (size, Tower(kind, name, len(module)))
    return {kind: tower for kind, (_, tower) in sorted(found.items())}


def canonical_names(model: nn.Module, towers: dict[str, Tower] | None = None) -> dict[str, str]:
    """{module name: canonical name} for every nn.Linear (or adapted linear) inside a tower's blocks."""
    towers = find_towers(model) if towers is None else towers
    modules = dict(model.named_modules())
    out = {}
    for name, module in modules.items():
        parent = modules.get(name.rpartition(".")[0])
        if not _is_linear(module) or (parent is not None and hasattr(parent, "lora_route")):
            continue  # the frozen base inside an adapted layer is not a layer of its own
        for tower in towers.values():
            if name.startswith(tower.blocks + "."):
                index, _, rest = name[len(tower.blocks) + 1 :].partition(".")
                if rest:
                    out[name] = f"{tower.kind}.{index}.{rest}"
                break
    return out


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or hasattr(module, "lora_route")


def select_targets(model: nn.Module, patterns: list[str]) -> list[tuple[str, str]]:
    """[(module name, canonical name or the module name)] of the nn.Linear layers whose module name or canonical
    name fullmatches one of `patterns`."""
    compiled = [re.compile(p) for p in patterns]
    canon = canonical_names(model)
    out = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        alias = canon.get(name, name)
        if any(p.fullmatch(name) or p.fullmatch(alias) for p in compiled):
            out.append((name, alias))
    return out


def llm_prefix(model: nn.Module) -> str:
    """The module-name prefix of the LLM's blocks ("" when the model has no LLM tower)."""
    tower = find_towers(model).get("llm")
    return tower.blocks + "." if tower else ""


def foreign_to_canonical(key: str, towers: dict[str, Tower]) -> str | None:
    """Best guess of the canonical name of a module name written by another release or model code.

    `...audio_tower.layers.2.self_attn.q_proj` -> `audio.2.self_attn.q_proj`: the tower is named by the words
    before its block list (audio / visual|vision / anything else: llm), kept only when this model has it.
    """
    m = _FOREIGN.match(key)
    if not m:
        return None
    head = key[: m.start("list")]
    kind = "audio" if "audio" in head else "vision" if ("visual" in head or "vision" in head) else "llm"
    return f"{kind}.{m['index']}.{m['rest']}" if kind in towers else None
