"""The Crab+ paradigm: the Qwen2.5-Omni thinker (LLM + audio encoder + vision encoder) from a local folder.

The thinker loads from a folder holding a saved thinker or the full Qwen2.5-Omni release (its `thinker.`
weights are picked out); no network. `tiny: true` builds a small random thinker of the same class, saves it
under RUN/base_model with an offline tokenizer and loads it back through the same real-path code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .bundle import CHATML, OMNI_MEDIA_TOKENS, Bundle, build_offline_tokenizer, load_tokenizer, token_table
from .compat import dtype_kwargs, load_thinker_config, make_portable, model_type, rope_kwargs
from .media import (
    CLIP_MEAN,
    CLIP_STD,
    as_frames,
    log_mel,
    normalize,
    omni_audio_tokens,
    qwen_patchify,
    resize_frames,
    seconds_per_frame,
    select_windows,
)
from .placement import CRAB_PLUS

OMNI_SYSTEM = (
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory and "
    "visual inputs, as well as generating text and speech."
)


def thinker_config(tokenizer, text: dict, vision: dict, audio: dict, init_range: float = 0.02):
    """A Qwen2_5OmniThinkerConfig of the given tower shapes, with the tokenizer's media token ids.

    `text` needs hidden_size, num_attention_heads (the rotary sections follow from the head width) and may set
    vocab_size (default: the tokenizer's size); `vision` and `audio` are the towers' config keywords.
    """
    from transformers import Qwen2_5OmniThinkerConfig

    ids = token_table(tokenizer, OMNI_MEDIA_TOKENS)
    q = text["hidden_size"] // text["num_attention_heads"] // 2
    text = {"vocab_size": len(tokenizer), "max_position_embeddings": 32768, **text}
    return Qwen2_5OmniThinkerConfig(
        text_config=dict(initializer_range=init_range, **text,
                         **rope_kwargs(1e6, [q // 4, q * 3 // 8, q - q // 4 - q * 3 // 8])),
        vision_config=dict(patch_size=14, spatial_merge_size=2, temporal_patch_size=2, **vision),
        audio_config=dict(num_mel_bins=128, max_source_positions=1500, **audio),
        audio_token_index=ids["audio"][1],
        image_token_index=ids["image"][1],
        video_token_index=ids["video_frames"][1],
        audio_start_token_id=ids["audio"][0],
        audio_end_token_id=ids["audio"][2],
        vision_start_token_id=ids["video_frames"][0],
        vision_end_token_id=ids["video_frames"][2],
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=init_range,
    )  # fmt: skip


def tiny_omni_config(tokenizer, hidden: int = 64, layers: int = 2, init_range: float = 0.2):
    """A thinker config with ~hidden-wide, 2-layer text/vision/audio towers and the tokenizer's ids.

    `init_range` is larger than the usual 0.02 so that a frozen random lm_head can express confident outputs
    (an adapter alone could not otherwise move a tiny random model far from uniform predictions).
    """
    text = dict(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=8192)  # fmt: skip
    vision = dict(depth=layers, hidden_size=hidden // 2, intermediate_size=hidden, num_heads=2, out_hidden_size=hidden,
                  window_size=56, fullatt_block_indexes=[layers - 1])  # fmt: skip
    audio = dict(encoder_layers=layers, encoder_attention_heads=2, encoder_ffn_dim=hidden, d_model=hidden // 2,
                 output_dim=hidden, n_window=50)  # fmt: skip
    return thinker_config(tokenizer, text, vision, audio, init_range)


def attention_backend(name: str) -> str:
    """`auto`: flash_attention_2 on a GPU when flash-attn is importable (the towers' attention windows and audio
    chunks then run as one variable-length call each), else sdpa (a Python loop over windows / chunks)."""
    import importlib.util

    if name != "auto":
        return name
    flash = importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available()
    return "flash_attention_2" if flash else "sdpa"


def load_omni_thinker(path: str | Path, dtype: torch.dtype = torch.float32, attn: str = "sdpa"):
    """Qwen2_5OmniThinkerForConditionalGeneration from a local folder (a saved thinker or the full Omni release)."""
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: no config.json (expected a local Qwen2.5-Omni or thinker folder)")
    config = load_thinker_config(path)
    kwargs: dict[str, Any] = {**dtype_kwargs(dtype), "attn_implementation": attention_backend(attn)}
    if model_type(path) == "qwen2_5_omni":  # full release: the `thinker.` weights
        kwargs["key_mapping"] = {r"^thinker\.": ""}
    for name, default in (("vision_start_token_id", 151652), ("vision_end_token_id", 151653)):
        if getattr(config, name, None) is None:  # read by get_rope_index; older configs lack them
            setattr(config, name, default)
    return Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(str(path), config=config, **kwargs)


@dataclass
class OmniPrep:
    """Turns decoded media into Qwen2.5-Omni thinker inputs (picklable; runs in DataLoader workers)."""

    token_ids: dict[str, tuple[int, int, int]]
    frame_size: int = 224
    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2
    num_mel_bins: int = 128
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD

    def media(self, kind: str, tensor: torch.Tensor, meta: dict) -> tuple[int, dict[str, Any]]:
        """(number of placeholder tokens, payload) for one media item of `kind`."""
        if kind == "audio":
            feats, valid = log_mel(select_windows(tensor, meta), self.num_mel_bins)
            return omni_audio_tokens(valid), {"audio": feats}
        frames = normalize(resize_frames(as_frames(tensor), self.frame_size), self.mean, self.std)
        patches, grid = qwen_patchify(frames, self.patch_size, self.merge_size, self.temporal_patch_size)
        n = grid[0] * grid[1] * grid[2] // self.merge_size**2
        if kind == "image":
            return n, {"image": patches, "grid": grid}
        step = self.temporal_patch_size * seconds_per_frame(meta, frames.shape[0])
        return n, {"video": patches, "grid": grid, "second_per_grid": step}

    def batch(self, payloads: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Model kwargs for the payloads of a batch, in placeholder order (sample by sample)."""
        out: dict[str, torch.Tensor] = {}
        videos = [p for p in payloads if "video" in p]
        images = [p for p in payloads if "image" in p]
        audios = [p["audio"] for p in payloads if "audio" in p]
        if videos:
            out["pixel_values_videos"] = torch.cat([p["video"] for p in videos])
            out["video_grid_thw"] = torch.tensor([p["grid"] for p in videos], dtype=torch.long)
            out["video_second_per_grid"] = torch.tensor([p["second_per_grid"] for p in videos])
        if images:
            out["pixel_values"] = torch.cat([p["image"] for p in images])
            out["image_grid_thw"] = torch.tensor([p["grid"] for p in images], dtype=torch.long)
        if audios:
            longest = max(a.shape[1] for a in audios)
            feats = torch.zeros(len(audios), audios[0].shape[0], longest)
            mask = torch.zeros(len(audios), longest, dtype=torch.long)
            for i, a in enumerate(audios):
                feats[i, :, : a.shape[1]] = a
                mask[i, : a.shape[1]] = 1
            out["input_features"], out["feature_attention_mask"] = feats, mask
        return out


def build_omni_bundle(cfg: dict, run_dir: Path | None, seed: int, dtype: torch.dtype) -> tuple[Bundle, dict]:
    """The Omni thinker bundle of a `model:` section (paradigm omni); returns it and the resolved section.

    With `tiny: true` the tiny base model and tokenizer are created under RUN/base_model (once) and the resolved
    section points at them, so `predict` later loads exactly the same base through the real path.
    """
    if cfg.get("tiny"):
        cfg = make_tiny_omni(cfg, run_dir, seed)
    if not cfg.get("path"):
        raise ValueError("model.path (a local Qwen2.5-Omni folder) is required unless model.tiny is true")
    model = load_omni_thinker(cfg["path"], dtype, cfg.get("attn_implementation", "sdpa"))
    tokenizer = load_tokenizer(cfg.get("tokenizer") or cfg["path"], extra_special=list(CHATML[:2]))
    vc = model.config.vision_config
    ids = {
        "video_frames": (
            model.config.vision_start_token_id,
            model.config.video_token_id,
            model.config.vision_end_token_id,
        ),
        "image": (
            model.config.vision_start_token_id,
            model.config.image_token_id,
            model.config.vision_end_token_id,
        ),
        "audio": (
            model.config.audio_start_token_id,
            model.config.audio_token_id,
            model.config.audio_end_token_id,
        ),
    }
    prep = OmniPrep(
        ids,
        frame_size=int(cfg.get("frame_size", 224)),
        patch_size=vc.patch_size,
        merge_size=vc.spatial_merge_size,
        temporal_patch_size=vc.temporal_patch_size,
        num_mel_bins=model.config.audio_config.num_mel_bins,
    )
    system = cfg.get("system_prompt", OMNI_SYSTEM)
    return Bundle("omni", model, tokenizer, prep, ids, system, list(CRAB_PLUS)), cfg


def make_tiny_omni(cfg: dict, run_dir: Path | None, seed: int) -> dict:
    """Create (once) a random tiny thinker + offline tokenizer under RUN/base_model; return cfg pointing at it."""
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    if run_dir is None:
        raise ValueError("a tiny model needs a run folder to live in")
    folder = Path(run_dir) / "base_model"
    if not (folder / "config.json").exists():
        tokenizer = build_offline_tokenizer(folder, vocab_size=int(cfg.get("vocab_size", 512)))
        torch.manual_seed(seed)
        config = tiny_omni_config(
            tokenizer,
            int(cfg.get("hidden", 64)),
            int(cfg.get("layers", 2)),
            float(cfg.get("init_range", 0.2)),
        )
        Qwen2_5OmniThinkerForConditionalGeneration(config).save_pretrained(str(folder))
        make_portable(folder)
        (folder / "avuie_tiny.json").write_text(json.dumps({"seed": seed, "paradigm": "omni"}))
    out = {k: v for k, v in cfg.items() if k != "tiny"}
    out.update(
        path=str(folder),
        tokenizer=str(folder),
        system_prompt=cfg.get("system_prompt", "You are a helpful assistant."),
    )
    return out
