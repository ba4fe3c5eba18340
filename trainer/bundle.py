"""What the recipe and `predict` work with, whatever the paradigm: the `Bundle` (model, tokenizer, media
preprocessor, forward/generate on a collated batch), the ChatML and media token names, the tokenizers.

The paradigms build bundles: trainer/omni.py (the Qwen2.5-Omni thinker, Crab+) and trainer/modular.py (any
causal LM + vision + audio encoders); trainer/models.py picks one from a `model:` config section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from avuie.schemas.wordings import example_answers
from torch import nn

from .compat import add_special_tokens, enable_checkpointing
from .packing import NOT_MODEL_INPUTS, block_causal_mask, packed_mrope_positions
from .placement import find_towers, llm_prefix

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
        add_special_tokens(tok, missing)
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


@dataclass
class Bundle:
    """A model ready for the recipe: model, tokenizer, media preprocessor, and how to call it."""

    paradigm: str  # "omni" | "modular"
    model: nn.Module
    tokenizer: Any
    prep: Any
    media_tokens: dict[str, tuple[int, int, int]]
    system_prompt: str
    ilora_patterns: list[str] = field(default_factory=list)  # default placement (canonical-name regexes)
    extra_prefixes: tuple[str, ...] = ()  # trainable non-adapter modules (the modular projectors)

    @property
    def llm_prefix(self) -> str:
        """Module-name prefix of the LLM's blocks (router statistics are taken there), found by structure."""
        return llm_prefix(self.model)

    def model_inputs(
        self, batch: dict[str, torch.Tensor], mask_dtype: torch.dtype
    ) -> dict[str, torch.Tensor]:
        """The model's keyword arguments for a collated (possibly packed) batch already on the device.

        A packed batch gets the block-diagonal causal mask and per-sample positions (the Omni thinker's 3-D
        positions from its own get_rope_index, see trainer/packing.py).
        """
        kwargs = {k: v for k, v in batch.items() if k not in NOT_MODEL_INPUTS}
        if "pack_index" not in batch:
            return kwargs
        kwargs["attention_mask"] = block_causal_mask(batch["segments"], mask_dtype)
        if self.paradigm == "omni":
            kwargs["position_ids"] = packed_mrope_positions(
                self.model.get_rope_index, batch, self.tokenizer.pad_token_id
            )
        return kwargs

    def forward(
        self, model: nn.Module, batch: dict[str, torch.Tensor], mask_dtype=torch.float32
    ) -> torch.Tensor:
        """Output [B, T, V] of `model` (the possibly DDP/FSDP-wrapped self.model) for a collated batch: the logits,
        or the last hidden states [B, T, D] after `detach_head`."""
        return model(**self.model_inputs(batch, mask_dtype), use_cache=False).logits

    def detach_head(self) -> nn.Linear:
        """Replace the LLM's output projection by an identity and return it: the model then outputs its last
        hidden states, and the loss projects only the labelled positions (steps.token_loss_sum)."""
        owner = self.model.llm if self.paradigm == "modular" else self.model
        head = owner.get_output_embeddings() or getattr(owner, "lm_head", None)  # 4.52's thinker: None
        for name, child in owner.named_children():
            if child is head:
                setattr(owner, name, nn.Identity())
                return head
        raise ValueError(f"{type(owner).__name__}: its output projection is not a direct child")

    @torch.no_grad()
    def generate(self, batch: dict[str, torch.Tensor], max_new_tokens: int, **gen: Any) -> torch.Tensor:
        """New token ids [B, <=max_new_tokens] for a left-padded prompt batch (greedy unless `gen` says otherwise)."""
        kwargs = {k: v for k, v in batch.items() if k not in NOT_MODEL_INPUTS}
        gen.setdefault("do_sample", False)
        out = self.model.generate(
            **kwargs,
            max_new_tokens=max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.convert_tokens_to_ids(CHATML[1]),
            **gen,
        )
        return out if self.paradigm == "modular" else out[:, batch["input_ids"].shape[1] :]

    def enable_checkpointing(self, scope: bool | str = True) -> None:
        """Activation checkpointing: every tower's blocks (True), or the LLM's blocks only ("llm": the towers
        keep their activations, which is cheaper in time when they are small against the LLM)."""
        parts = (
            [self.model.llm, self.model.vision, self.model.audio]
            if self.paradigm == "modular"
            else [self.model]
        )
        for part in parts:
            enable_checkpointing(part)
        if scope != "llm":
            return
        for kind, tower in find_towers(self.model).items():
            if kind == "llm":
                continue
            blocks = self.model.get_submodule(tower.blocks)
            owner = self.model.get_submodule(tower.blocks.rpartition(".")[0])
            for module in (owner, *blocks):  # v4 reads the tower's flag, v5 each block's
                if hasattr(module, "gradient_checkpointing"):
                    module.gradient_checkpointing = False

    def mark_trainable(self) -> None:
        """Freeze everything, then train the I-LoRA weights and the extra (projector) tensors only."""
        for name, p in self.model.named_parameters():
            p.requires_grad_(
                name.rpartition(".")[2] in ("lora_A", "lora_B", "lora_route")
                or name.startswith(self.extra_prefixes)
            )
