"""The few places where supported transformers releases (see pyproject's `train` extra) differ in their API.

Tested at both ends in CI: the oldest release with Qwen2.5-Omni (4.52) and the newest (5.x). Module names
differ too; trainer/placement.py finds layers by structure instead.
"""

from __future__ import annotations

import inspect
import json
from functools import lru_cache
from pathlib import Path

import torch


@lru_cache(maxsize=1)
def transformers_version() -> tuple[int, int]:
    """(major, minor) of the installed transformers."""
    import transformers

    major, minor = transformers.__version__.split(".")[:2]
    return int(major), int("".join(ch for ch in minor if ch.isdigit()) or 0)


def dtype_kwargs(dtype: torch.dtype) -> dict:
    """`from_pretrained` keyword for the weights' dtype: `dtype` since 4.56, `torch_dtype` before."""
    return {"dtype": dtype} if transformers_version() >= (4, 56) else {"torch_dtype": dtype}


def rope_kwargs(theta: float, mrope_section: list[int]) -> dict:
    """Text-config keywords for multimodal rotary positions: `rope_parameters` (v5) or `rope_scaling` (v4)."""
    from transformers.models.qwen2_5_omni import configuration_qwen2_5_omni as omni

    if "rope_parameters" in inspect.signature(omni.Qwen2_5OmniTextConfig.__init__).parameters:
        return {
            "rope_parameters": {"rope_type": "default", "rope_theta": theta, "mrope_section": mrope_section}
        }
    return {"rope_theta": theta, "rope_scaling": {"type": "default", "mrope_section": mrope_section}}


def model_type(path: str | Path) -> str | None:
    """`model_type` of a local model folder's config.json (read directly: older AutoConfig lacks the thinker)."""
    config = Path(path) / "config.json"
    return json.loads(config.read_text()).get("model_type") if config.exists() else None


def load_thinker_config(path: str | Path):
    """The Qwen2_5OmniThinkerConfig of a saved thinker or of a full Qwen2.5-Omni release (its thinker part)."""
    from transformers import Qwen2_5OmniConfig, Qwen2_5OmniThinkerConfig

    kind = model_type(path)
    if kind == "qwen2_5_omni":
        return Qwen2_5OmniConfig.from_pretrained(str(path)).thinker_config
    if kind == "qwen2_5_omni_thinker":
        return Qwen2_5OmniThinkerConfig.from_pretrained(str(path))
    raise ValueError(f"{path}: model_type {kind!r} is not a Qwen2.5-Omni (thinker) checkpoint")


def add_special_tokens(tokenizer, tokens: list[str]) -> None:
    """Add `tokens` as special tokens, keeping the tokenizer's own (the keyword was renamed in v5)."""
    params = inspect.signature(tokenizer.add_special_tokens).parameters
    keep = "replace_extra_special_tokens" if "replace_extra_special_tokens" in params else None
    keep = keep or (
        "replace_additional_special_tokens" if "replace_additional_special_tokens" in params else None
    )
    kwargs = {keep: False} if keep else {}
    tokenizer.add_special_tokens({"additional_special_tokens": tokens}, **kwargs)


def enable_checkpointing(model: torch.nn.Module) -> None:
    """Non-reentrant activation checkpointing on a transformers model (either API name: v5 renamed it)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def make_portable(folder: str | Path) -> None:
    """Let a model folder written by this release load under the other supported ones too.

    Writes the rotary settings in both spellings (`rope_parameters` of v5, `rope_theta` + `rope_scaling` of v4)
    and names the tokenizer class and special-token list as every release reads them (v5 writes its own
    `TokenizersBackend` and `extra_special_tokens` list).
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    if config_path.exists():
        config = json.loads(config_path.read_text())
        for section in [config, *(v for v in config.values() if isinstance(v, dict))]:
            rope = section.get("rope_parameters")
            if isinstance(rope, dict) and "mrope_section" in rope:
                section.setdefault("rope_theta", rope.get("rope_theta"))
                section["rope_scaling"] = {"type": "default", "rope_type": "default", **{
                    k: v for k, v in rope.items() if k not in ("rope_theta", "rope_type")}}  # fmt: skip
        config_path.write_text(json.dumps(config, indent=2))
    tok_path = folder / "tokenizer_config.json"
    if tok_path.exists():
        tok = json.loads(tok_path.read_text())
        if tok.get("tokenizer_class") == "TokenizersBackend":
            tok["tokenizer_class"] = "PreTrainedTokenizerFast"
        if isinstance(tok.get("extra_special_tokens"), list):  # v4 reads the list under its old name
            tok["additional_special_tokens"] = tok.pop("extra_special_tokens")
        tok_path.write_text(json.dumps(tok, indent=2))
