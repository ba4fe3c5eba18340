"""From streamed samples to model batches: chat template, media placeholders, tokenization, loss mask, collate.

The template is ChatML (the Qwen format, used for both paradigms):

    <|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{instruction}<|im_end|>\\n<|im_start|>assistant\\n
    {response}<|im_end|>

Each `<video>`, `<audio>`, `<image>` marker of the instruction becomes begin + N placeholders + end tokens of the
paradigm (N from the media preprocessor); the k-th `<video>` marker takes the k-th video_frames item of
`sample["media"]` (masks are not model inputs). The loss covers the response and its `<|im_end|>` only.
Training batches are right-padded, prediction prompts left-padded; attention masks mark real tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .packing import pack_examples, row_segments

MARKER = re.compile(r"<(video|audio|image)>")
MARKER_KIND = {"video": "video_frames", "audio": "audio", "image": "image"}
IGNORE = -100


class PromptTooLong(ValueError):
    """A sample's prompt (instruction + media tokens) does not fit max_length."""


def _meta(sample: dict) -> dict[str, Any]:
    return {k: sample.get(k) for k in ("id", "source", "family", "split")}


@dataclass
class Example:
    """One tokenized sample: ids, labels (IGNORE outside the response), media payloads in marker order, meta."""

    input_ids: list[int]
    labels: list[int]
    payloads: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Collator:
    """DataLoader `collate_fn`: loader items -> (model inputs, meta list). Picklable, so it runs in workers.

    `prep` is the paradigm's media preprocessor (OmniPrep / ModularPrep), `media_tokens` kind -> (begin, pad, end).
    `train=True`: prompt + response, right padding, labels; a sample whose prompt does not fit `max_length` is
    left out of the inputs and its meta entry says `"skipped": "too_long"` (inputs is None when all are).
    `train=False`: prompt only, left padding; a prompt that does not fit raises PromptTooLong.
    `pack=True` (training): the samples share rows up to max_length (see trainer/packing.py).
    """

    tokenizer: Any
    prep: Any
    media_tokens: dict[str, tuple[int, int, int]]
    system_prompt: str = ""
    max_length: int = 4096
    train: bool = True
    pack: bool = False

    def __call__(self, items: list[dict]) -> tuple[dict[str, torch.Tensor] | None, list[dict]]:
        examples, skipped = [], []
        for item in items:
            try:
                examples.append(self.encode(item))
            except PromptTooLong:
                if not self.train:
                    raise
                skipped.append({**_meta(item["sample"]), "skipped": "too_long"})
        if not examples:
            return None, skipped
        if self.pack and self.train:
            inputs = pack_examples(examples, self.tokenizer.pad_token_id, IGNORE, self.max_length)
            inputs.update(self.prep.batch([p for e in examples for p in e.payloads]))
            return inputs, [e.meta for e in examples] + skipped
        inputs, meta = collate(examples, self.tokenizer.pad_token_id, self.prep, left_pad=not self.train)
        return inputs, meta + skipped

    def text_ids(self, text: str) -> list[int]:
        """Token ids of plain text (special tokens written in the text are recognised)."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode(self, item: dict) -> Example:
        """Tokenize one loader item {"key", "sample", "media": {role: tensor}} into an Example."""
        sample, media = item["sample"], item.get("media", {})
        sid = sample.get("id", item.get("key", "?"))
        queues: dict[str, list[dict]] = {}
        for m in sample.get("media", []):
            queues.setdefault(m["kind"], []).append(m)
        head = ""
        if self.system_prompt:
            head = f"<|im_start|>system\n{self.system_prompt}<|im_end|>\n"
        ids = self.text_ids(head + "<|im_start|>user\n")
        payloads = []
        pos = 0
        instruction = sample.get("instruction", "")
        for match in MARKER.finditer(instruction):
            ids += self.text_ids(instruction[pos : match.start()]) if match.start() > pos else []
            pos = match.end()
            kind = MARKER_KIND[match.group(1)]
            if not queues.get(kind):
                raise ValueError(
                    f"{sid}: instruction has more {match.group(0)} markers than {kind} media items"
                )
            meta = queues[kind].pop(0)
            if meta["role"] not in media:
                raise ValueError(f"{sid}: media role {meta['role']!r} was not decoded by the loader")
            n, payload = self.prep.media(kind, media[meta["role"]], meta)
            begin, pad, end = self.media_tokens[kind]
            ids += [begin] + [pad] * n + [end]
            payloads.append(payload)
        leftover = [k for k, q in queues.items() if q and k != "mask"]
        if leftover:
            raise ValueError(f"{sid}: media of kind {leftover} have no marker in the instruction")
        ids += self.text_ids(instruction[pos:] + "<|im_end|>\n<|im_start|>assistant\n")
        if len(ids) >= self.max_length:
            raise PromptTooLong(f"{sid}: prompt has {len(ids)} tokens, data.max_length is {self.max_length}")
        labels = [IGNORE] * len(ids)
        if self.train:
            answer = self.text_ids(sample["response"] + "<|im_end|>")[: self.max_length - len(ids)]
            ids, labels = ids + answer, labels + answer
        return Example(ids, labels, payloads, _meta(sample))


def collate(
    examples: list[Example], pad_id: int, prep: Any, left_pad: bool = False
) -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Pad a list of Examples into input_ids / attention_mask / labels / segments [B, T] plus `prep`'s media kwargs."""
    if not examples:
        raise ValueError("cannot collate an empty batch")
    width = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        sl = slice(width - n, width) if left_pad else slice(0, n)
        ids[i, sl] = torch.tensor(e.input_ids)
        labels[i, sl] = torch.tensor(e.labels)
        mask[i, sl] = 1
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels, "segments": row_segments(mask)}
    inputs.update(prep.batch([p for e in examples for p in e.payloads]))
    return inputs, [e.meta for e in examples]


class DataUnavailable(ValueError):
    """The data source cannot be read: a missing path, an unreachable server, or a refused (401) token."""

    def __init__(self, message: str, unauthorized: bool = False):
        super().__init__(message)
        self.unauthorized = unauthorized


def is_unauthorized(error: BaseException) -> bool:
    """True when an error of the loader says the shard server answered 401 (missing or wrong token)."""
    return getattr(error, "unauthorized", False) or re.search(r"\b401\b", str(error)) is not None


def data_source(data: str) -> str:
    """How a run records its data: an absolute local path, or the URL without a trailing slash."""
    if "://" in data and not data.startswith("file://"):
        return data.rstrip("/")
    return str(Path(data.removeprefix("file://")).expanduser().resolve())


def open_stream(
    data: str, split: str | list[str], *, seed: int = 0, shuffle: bool = True, token: str | None = None, **kw
):
    """The project's streaming loader (avuie.shards.loader.AVStream) over a build folder, tar list or server URL.

    Resolves the shards at once; raises DataUnavailable (a ValueError) when `data` is missing, unreachable or
    refuses the token, and ValueError when it holds no samples of `split`.
    """
    try:
        from avuie.shards.loader import AVStream
    except ImportError as exc:  # pragma: no cover - only when the shards package is incomplete
        raise ImportError(
            "the trainer reads data through avuie.shards.loader.AVStream, which is missing"
        ) from exc
    try:
        return AVStream(data, split=split, seed=seed, shuffle=shuffle, token=token, **kw)
    except OSError as error:  # a missing path, or a file that cannot be read
        message = str(error) if str(data) in str(error) else f"cannot read data {data}: {error}"
        raise DataUnavailable(message) from error
    except ValueError as error:
        if is_unauthorized(error):
            raise DataUnavailable(str(error), unauthorized=True) from error
        raise
    except Exception as error:
        if type(error).__module__.split(".")[0] == "httpx":  # connection refused, DNS failure, timeout
            raise DataUnavailable(f"cannot reach data server {data}: {error}") from error
        raise
