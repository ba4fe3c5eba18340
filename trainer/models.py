"""Model assembly: the Crab+ paradigm (Qwen2.5-Omni thinker) and the modular paradigm, tiny configs, tokenizers.

A `Bundle` is what the recipe and `predict` work with: the model, its tokenizer, its media preprocessor (a small
picklable object the DataLoader workers use) and `forward`/`generate` that take a collated batch.

Real models load from local folders (no network): the Omni thinker from a folder holding either a saved thinker
or the full Qwen2.5-Omni release (its `thinker.` weights are picked out); the modular parts from three folders
(see trainer/modular.py). `tiny: true` builds small random models of the same classes, saves them under
RUN/base_model and loads them back through the same real-path code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from avuie.schemas.wordings import example_answers
from torch import nn

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

CHATML = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")
OMNI_MEDIA_TOKENS = {  # kind -> (begin, placeholder, end), as in the Qwen2.5-Omni tokenizer
    "video_frames": ("<|vision_bos|>", "<|VIDEO|>", "<|vision_eos|>"),
    "image": ("<|vision_bos|>", "<|IMAGE|>", "<|vision_eos|>"),
    "audio": ("<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"),
}
MODULAR_MEDIA_TOKENS = {
    "video_frames": ("<|video_start|>", "<|video_pad|>", "<|video_end|>"),
    "image": ("<|image_start|>", "<|image_pad|>", "<|image_end|>"),
    "audio": ("<|audio_start|>", "<|audio_pad|>", "<|audio_end|>"),
}
OMNI_SYSTEM = (
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory and "
    "visual inputs, as well as generating text and speech."
)
TOKENIZER_CORPUS = [
    "Four people play on a stage. The saxophone on the left joins later. So the answer is",
    *example_answers(),  # every answer form in every style, from the one home of answer wordings (schemas)
    "What is happening in the video? Which sound source is loudest? The person looks happy, angry, sad, neutral.",
    "a man plays a guitar while singing, a dog barks at the 3rd second, the crowd cheers 0123456789.,[]()",
]


def special_tokens() -> list[str]:
    """Every special token our templates use (ChatML plus both paradigms' media tokens)."""
    media = [
        t for table in (OMNI_MEDIA_TOKENS, MODULAR_MEDIA_TOKENS) for trio in table.values() for t in trio
    ]
    return list(dict.fromkeys([CHATML[2], CHATML[0], CHATML[1], *media]))


def build_offline_tokenizer(folder: str | Path, texts: list[str] | None = None, vocab_size: int = 512):
    """Train a small byte-level BPE on `texts` (+ a built-in corpus) with our special tokens; save it to `folder`.

    Byte-level, so any text can be encoded. Returns the PreTrainedTokenizerFast (pad `<|endoftext|>`,
    eos `<|im_end|>`).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = special_tokens()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts or []) + TOKENIZER_CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=CHATML[1], pad_token=CHATML[2], additional_special_tokens=specials[1:]
    )
    fast.save_pretrained(str(folder))
    return fast


def load_tokenizer(folder: str | Path, extra_special: list[str] | None = None):
    """AutoTokenizer from a local folder, with any missing special tokens of ours added; pad defaults to eos."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    missing = [t for t in (extra_special or []) if t not in tok.get_vocab()]
    if missing:
        tok.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
    if tok.pad_token_id is None:
        tok.pad_token = CHATML[2] if CHATML[2] in tok.get_vocab() else tok.eos_token
    return tok


def token_table(tokenizer, names: dict[str, tuple[str, str, str]]) -> dict[str, tuple[int, int, int]]:
    """kind -> (begin id, placeholder id, end id), checking that each token is a single known id."""
    out = {}
    for kind, trio in names.items():
        ids = tuple(tokenizer.convert_tokens_to_ids(t) for t in trio)
        if any(i is None or i == tokenizer.unk_token_id for i in ids):
            raise ValueError(f"tokenizer lacks the media tokens {trio}")
        out[kind] = ids
    return out


# ----------------------------------------------------------------------------------------------- omni thinker


def tiny_omni_config(tokenizer, hidden: int = 64, layers: int = 2, init_range: float = 0.2):
    """A Qwen2_5OmniThinkerConfig with ~hidden-wide, 2-layer text/vision/audio towers and the tokenizer's ids.

    `init_range` is larger than the usual 0.02 so that a frozen random lm_head can express confident outputs
    (an adapter alone could not otherwise move a tiny random model far from uniform predictions).
    """
    from transformers import Qwen2_5OmniThinkerConfig

    ids = token_table(tokenizer, OMNI_MEDIA_TOKENS)
    heads = 4
    head_dim = hidden // heads
    q = head_dim // 2
    return Qwen2_5OmniThinkerConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=2,
            max_position_embeddings=8192,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 1e6,
                "mrope_section": [q // 4, q * 3 // 8, q - q // 4 - q * 3 // 8],
            },
            initializer_range=init_range,
        ),
        vision_config=dict(
            depth=layers,
            hidden_size=hidden // 2,
            intermediate_size=hidden,
            num_heads=2,
            out_hidden_size=hidden,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=56,
            fullatt_block_indexes=[layers - 1],
        ),
        audio_config=dict(
            num_mel_bins=128,
            encoder_layers=layers,
            encoder_attention_heads=2,
            encoder_ffn_dim=hidden,
            d_model=hidden // 2,
            output_dim=hidden,
            n_window=50,
            max_source_positions=1500,
        ),
        audio_token_index=ids["audio"][1],
        image_token_index=ids["image"][1],
        video_token_index=ids["video_frames"][1],
        audio_start_token_id=ids["audio"][0],
        audio_end_token_id=ids["audio"][2],
        vision_start_token_id=ids["video_frames"][0],
        vision_end_token_id=ids["video_frames"][2],
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=init_range,
    )


def load_omni_thinker(path: str | Path, dtype: torch.dtype = torch.float32, attn: str = "sdpa"):
    """Qwen2_5OmniThinkerForConditionalGeneration from a local folder (a saved thinker or the full Omni release)."""
    from transformers import AutoConfig, Qwen2_5OmniThinkerForConditionalGeneration

    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: no config.json (expected a local Qwen2.5-Omni or thinker folder)")
    config = AutoConfig.from_pretrained(str(path))
    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": attn}
    if config.model_type == "qwen2_5_omni":  # full release: take the thinker's config and `thinker.` weights
        config = config.thinker_config
        kwargs["key_mapping"] = {r"^thinker\.": ""}
    elif config.model_type != "qwen2_5_omni_thinker":
        raise ValueError(
            f"{path}: model_type {config.model_type!r} is not a Qwen2.5-Omni (thinker) checkpoint"
        )
    for name in (
        "vision_start_token_id",
        "vision_end_token_id",
    ):  # read by get_rope_index; older configs lack them
        if getattr(config, name, None) is None:
            setattr(config, name, {"vision_start_token_id": 151652, "vision_end_token_id": 151653}[name])
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


# ----------------------------------------------------------------------------------------------- the bundle


@dataclass
class Bundle:
    """A model ready for the recipe: model, tokenizer, media preprocessor, and how to call it."""

    paradigm: str  # "omni" | "modular"
    model: nn.Module
    tokenizer: Any
    prep: Any
    media_tokens: dict[str, tuple[int, int, int]]
    system_prompt: str
    ilora_patterns: list[str] = field(default_factory=list)
    extra_prefixes: tuple[str, ...] = ()  # trainable non-adapter modules (the modular projectors)
    llm_prefix: str = "model.language_model."  # the LLM's layers (router statistics are taken there)

    def forward(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits [B, T, V] of `model` (the possibly DDP/FSDP-wrapped self.model) for a collated batch."""
        kwargs = {k: v for k, v in batch.items() if k not in ("labels",)}
        return model(**kwargs, use_cache=False).logits

    @torch.no_grad()
    def generate(self, batch: dict[str, torch.Tensor], max_new_tokens: int, **gen: Any) -> torch.Tensor:
        """New token ids [B, <=max_new_tokens] for a left-padded prompt batch (greedy unless `gen` says otherwise)."""
        kwargs = {k: v for k, v in batch.items() if k not in ("labels",)}
        gen.setdefault("do_sample", False)
        out = self.model.generate(
            **kwargs,
            max_new_tokens=max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.convert_tokens_to_ids(CHATML[1]),
            **gen,
        )
        return out if self.paradigm == "modular" else out[:, batch["input_ids"].shape[1] :]

    def enable_checkpointing(self) -> None:
        """Activation checkpointing on the model (all towers for the modular model)."""
        parts = (
            [self.model.llm, self.model.vision, self.model.audio]
            if self.paradigm == "modular"
            else [self.model]
        )
        for part in parts:
            enable_checkpointing(part)

    def mark_trainable(self) -> None:
        """Freeze everything, then train the I-LoRA weights and the extra (projector) tensors only."""
        for name, p in self.model.named_parameters():
            p.requires_grad_(
                name.rpartition(".")[2] in ("lora_A", "lora_B", "lora_route")
                or name.startswith(self.extra_prefixes)
            )


def enable_checkpointing(model: nn.Module) -> None:
    """Non-reentrant activation checkpointing on a transformers model (either API name: v5 renamed it)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def omni_ilora_patterns() -> list[str]:
    """Where Crab+ puts I-LoRA on the thinker: LLM q,k,v,o,gate,up,down; audio q,k,v; the vision blocks' MLP."""
    return [
        r"model\.language_model\.layers\.\d+\.self_attn\.(q|k|v|o)_proj",
        r"model\.language_model\.layers\.\d+\.mlp\.(gate|up|down)_proj",
        r"model\.audio_tower\.layers\.\d+\.self_attn\.(q|k|v)_proj",
        r"model\.visual\.blocks\.\d+\.mlp\.(gate|up|down)_proj",
    ]


def build_bundle(model_cfg: dict, run_dir: Path | None = None, seed: int = 0) -> tuple[Bundle, dict]:
    """Build (or load) the model of a `model:` config section. Returns the bundle and the resolved section.

    With `tiny: true` the tiny base model and tokenizer are created under RUN/base_model (once) and the resolved
    section points at them, so `predict` later loads exactly the same base through the real path.
    """
    cfg = dict(model_cfg)
    paradigm = cfg.get("paradigm", "omni")
    dtype = getattr(torch, cfg.get("dtype", "float32"))
    if paradigm == "modular":
        from .modular import build_modular_bundle

        return build_modular_bundle(cfg, run_dir, seed, dtype)
    if paradigm != "omni":
        raise ValueError(f"model.paradigm must be 'omni' or 'modular', got {paradigm!r}")
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
    return Bundle("omni", model, tokenizer, prep, ids, system, omni_ilora_patterns()), cfg


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
        (folder / "avuie_tiny.json").write_text(json.dumps({"seed": seed, "paradigm": "omni"}))
    out = {k: v for k, v in cfg.items() if k != "tiny"}
    out.update(
        path=str(folder),
        tokenizer=str(folder),
        system_prompt=cfg.get("system_prompt", "You are a helpful assistant."),
    )
    return out
