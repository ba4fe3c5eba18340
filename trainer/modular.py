"""The modular paradigm: any Hugging Face causal LM + a CLIP or SigLIP vision encoder + a Whisper encoder,
joined by trainable projectors (Linear-GELU-Linear). Media features replace placeholder tokens in the LLM input.

Config section (`model:`): `paradigm: modular`, `llm`, `vision`, `audio` (local folders), optional `tokenizer`,
`vision_pool` (average-pool k x k patches per frame), `audio_pool` (average-pool k Whisper steps), `dtype`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .bundle import CHATML, MODULAR_MEDIA_TOKENS, Bundle, build_offline_tokenizer, load_tokenizer, token_table
from .compat import dtype_kwargs
from .media import (
    CLIP_MEAN,
    CLIP_STD,
    SIGLIP_MEAN,
    SIGLIP_STD,
    as_frames,
    log_mel,
    normalize,
    resize_frames,
    select_windows,
)
from .placement import MODULAR


def projector(d_in: int, d_out: int) -> nn.Sequential:
    """The trainable bridge from an encoder width to the LLM width."""
    return nn.Sequential(nn.Linear(d_in, d_out), nn.GELU(), nn.Linear(d_out, d_out))


class ModularAVLM(nn.Module):
    """LLM + vision encoder + audio encoder + projectors; placeholders in `input_ids` receive media features."""

    def __init__(
        self, llm, vision, audio, token_ids: dict[str, tuple[int, int, int]], vision_pool=1, audio_pool=1
    ):
        super().__init__()
        self.llm, self.vision, self.audio = llm, vision, audio
        hidden = llm.get_input_embeddings().embedding_dim
        self.vision_proj = projector(vision.config.hidden_size, hidden)
        self.audio_proj = projector(audio.config.d_model, hidden)
        self.token_ids, self.vision_pool, self.audio_pool = token_ids, vision_pool, audio_pool

    def encode_frames(self, pixels: torch.Tensor) -> torch.Tensor:
        """Frames [N,3,S,S] -> LLM-width tokens [N * tokens_per_frame, hidden]."""
        h = self.vision(pixel_values=pixels.to(self.vision.dtype)).last_hidden_state
        grid = int(round((h.shape[1]) ** 0.5))
        if grid * grid != h.shape[1]:  # CLIP prepends a class token
            h = h[:, 1:]
            grid = int(round(h.shape[1] ** 0.5))
        if self.vision_pool > 1:
            h = h.transpose(1, 2).reshape(h.shape[0], -1, grid, grid)
            h = F.avg_pool2d(h, self.vision_pool).flatten(2).transpose(1, 2)
        return self.vision_proj(h.to(self.vision_proj[0].weight.dtype)).flatten(0, 1)

    def encode_audio(self, features: torch.Tensor) -> torch.Tensor:
        """Log-mel windows [N, mel, frames] -> LLM-width tokens [N * audio_tokens, hidden]."""
        h = self.audio(features.to(self.audio.dtype)).last_hidden_state
        if self.audio_pool > 1:
            h = F.avg_pool1d(h.transpose(1, 2), self.audio_pool).transpose(1, 2)
        return self.audio_proj(h.to(self.audio_proj[0].weight.dtype)).flatten(0, 1)

    def embed(self, input_ids, video_pixels=None, image_pixels=None, audio_features=None) -> torch.Tensor:
        """LLM input embeddings with every placeholder token replaced by its media feature."""
        emb = self.llm.get_input_embeddings()(input_ids)
        for kind, media, encode in (
            ("video_frames", video_pixels, self.encode_frames),
            ("image", image_pixels, self.encode_frames),
            ("audio", audio_features, self.encode_audio),
        ):
            slots = input_ids == self.token_ids[kind][1]
            if media is None:
                if slots.any():
                    raise ValueError(f"batch has {kind} placeholders but no {kind} inputs")
                continue
            feats = encode(media)
            if feats.shape[0] != int(slots.sum()):
                raise ValueError(
                    f"{kind}: {int(slots.sum())} placeholder tokens but {feats.shape[0]} features"
                )
            emb = emb.masked_scatter(slots.unsqueeze(-1), feats.to(emb.dtype))
        return emb

    def forward(
        self, input_ids, attention_mask=None, video_pixels=None, image_pixels=None, audio_features=None, **kw
    ):
        """The LLM's output (with .logits) on the merged embeddings."""
        emb = self.embed(input_ids, video_pixels, image_pixels, audio_features)
        return self.llm(inputs_embeds=emb, attention_mask=attention_mask, **kw)

    def generate(
        self, input_ids, attention_mask=None, video_pixels=None, image_pixels=None, audio_features=None, **kw
    ):
        """New token ids only (HF generate from inputs_embeds returns just the continuation)."""
        emb = self.embed(input_ids, video_pixels, image_pixels, audio_features)
        return self.llm.generate(inputs_embeds=emb, attention_mask=attention_mask, **kw)


@dataclass
class ModularPrep:
    """Decoded media -> modular inputs: normalised pixels per frame, fixed-length Whisper windows."""

    token_ids: dict[str, tuple[int, int, int]]
    image_size: int
    tokens_per_frame: int
    num_mel_bins: int
    audio_frames: int
    audio_tokens: int
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD

    def media(self, kind: str, tensor: torch.Tensor, meta: dict) -> tuple[int, dict[str, Any]]:
        """(number of placeholder tokens, payload) for one media item of `kind`."""
        if kind == "audio":
            feats, _ = log_mel(select_windows(tensor, meta), self.num_mel_bins, num_frames=self.audio_frames)
            return self.audio_tokens, {"audio": feats}
        frames = normalize(resize_frames(as_frames(tensor), self.image_size), self.mean, self.std)
        key = "image" if kind == "image" else "video"
        return frames.shape[0] * self.tokens_per_frame, {key: frames}

    def batch(self, payloads: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Model kwargs (video_pixels, image_pixels, audio_features) for a batch, in placeholder order."""
        out = {}
        for key, name in (("video", "video_pixels"), ("image", "image_pixels")):
            parts = [p[key] for p in payloads if key in p]
            if parts:
                out[name] = torch.cat(parts)
        audios = [p["audio"] for p in payloads if "audio" in p]
        if audios:
            out["audio_features"] = torch.stack(audios)
        return out


def _load_vision(path: str, dtype):
    from transformers import AutoConfig, CLIPVisionModel, SiglipVisionModel

    kind = AutoConfig.from_pretrained(path).model_type
    if kind in ("clip", "clip_vision_model"):
        return CLIPVisionModel.from_pretrained(path, **dtype_kwargs(dtype)), (CLIP_MEAN, CLIP_STD)
    if kind in ("siglip", "siglip_vision_model"):
        return SiglipVisionModel.from_pretrained(path, **dtype_kwargs(dtype)), (SIGLIP_MEAN, SIGLIP_STD)
    raise ValueError(f"{path}: vision encoder must be CLIP or SigLIP, got model_type {kind!r}")


def _load_audio(path: str, dtype):
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    mapping = {r"^model\.encoder\.": "", r"^encoder\.": ""}  # a full Whisper checkpoint or a saved encoder
    return WhisperEncoder.from_pretrained(path, key_mapping=mapping, **dtype_kwargs(dtype))


def make_tiny_modular(cfg: dict, run_dir: Path | None, seed: int) -> dict:
    """Create (once) a tiny Qwen2 LM + CLIP vision + Whisper encoder + tokenizer under RUN/base_model."""
    from transformers import CLIPVisionConfig, CLIPVisionModel, Qwen2Config, Qwen2ForCausalLM, WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    if run_dir is None:
        raise ValueError("a tiny model needs a run folder to live in")
    root = Path(run_dir) / "base_model"
    h = int(cfg.get("hidden", 64))
    if not (root / "llm" / "config.json").exists():
        tok = build_offline_tokenizer(root / "llm", vocab_size=int(cfg.get("vocab_size", 512)))
        torch.manual_seed(seed)
        Qwen2ForCausalLM(
            Qwen2Config(
                vocab_size=len(tok),
                hidden_size=h,
                intermediate_size=2 * h,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=4096,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
                tie_word_embeddings=False,
                initializer_range=float(cfg.get("init_range", 0.2)),  # see models.tiny_omni_config
            )
        ).save_pretrained(str(root / "llm"))
        CLIPVisionModel(
            CLIPVisionConfig(
                hidden_size=h // 2,
                intermediate_size=h,
                num_hidden_layers=2,
                num_attention_heads=2,
                image_size=56,
                patch_size=14,
            )
        ).save_pretrained(str(root / "vision"))
        WhisperEncoder(
            WhisperConfig(
                d_model=h // 2,
                encoder_layers=2,
                encoder_attention_heads=2,
                encoder_ffn_dim=h,
                num_mel_bins=80,
                max_source_positions=50,
                vocab_size=len(tok),
                pad_token_id=0,
                bos_token_id=1,
                eos_token_id=2,
                decoder_start_token_id=1,
            )
        ).save_pretrained(str(root / "audio"))
        (root / "avuie_tiny.json").write_text(json.dumps({"seed": seed, "paradigm": "modular"}))
    out = {k: v for k, v in cfg.items() if k != "tiny"}
    out.update(llm=str(root / "llm"), vision=str(root / "vision"), audio=str(root / "audio"))
    out.setdefault("vision_pool", 2)
    return out


def build_modular_bundle(cfg: dict, run_dir: Path | None, seed: int, dtype) -> tuple[Bundle, dict]:
    """Load the modular parts from local folders (or build tiny ones), add the media tokens, attach projectors."""
    from transformers import AutoModelForCausalLM

    if cfg.get("tiny"):
        cfg = make_tiny_modular(cfg, run_dir, seed)
    for part in ("llm", "vision", "audio"):
        if not cfg.get(part):
            raise ValueError(f"model.{part} (a local folder) is required for the modular paradigm")
    specials = list(CHATML[:2]) + [t for trio in MODULAR_MEDIA_TOKENS.values() for t in trio]
    tokenizer = load_tokenizer(cfg.get("tokenizer") or cfg["llm"], extra_special=specials)
    llm = AutoModelForCausalLM.from_pretrained(cfg["llm"], **dtype_kwargs(dtype))
    if len(tokenizer) > llm.get_input_embeddings().num_embeddings:
        llm.resize_token_embeddings(len(tokenizer))
    vision, (mean, std) = _load_vision(cfg["vision"], dtype)
    audio = _load_audio(cfg["audio"], dtype)
    ids = token_table(tokenizer, MODULAR_MEDIA_TOKENS)
    vp, ap = int(cfg.get("vision_pool", 1)), int(cfg.get("audio_pool", 1))
    torch.manual_seed(seed)
    model = ModularAVLM(llm, vision, audio, ids, vp, ap)
    vcfg, acfg = vision.config, audio.config
    grid = vcfg.image_size // vcfg.patch_size
    if grid % vp:
        raise ValueError(f"vision_pool {vp} does not divide the {grid}x{grid} patch grid")
    prep = ModularPrep(
        ids,
        image_size=vcfg.image_size,
        tokens_per_frame=(grid // vp) ** 2,
        num_mel_bins=acfg.num_mel_bins,
        audio_frames=2 * acfg.max_source_positions,
        audio_tokens=acfg.max_source_positions // ap,
        mean=mean,
        std=std,
    )
    system = cfg.get("system_prompt", "You are a helpful assistant.")
    return Bundle(
        "modular",
        model,
        tokenizer,
        prep,
        ids,
        system,
        list(MODULAR),
        ("vision_proj.", "audio_proj."),
    ), cfg
