"""Batched inference with a trained run: one {"id", "response"} JSON line per sample of a split.

    avuie predict --run RUN --data OUT --split test --to preds.jsonl

Rebuilds the base model from RUN/config.yaml (a tiny base is read back from RUN/base_model), places I-LoRA,
loads the latest checkpoint's adapter (and projectors), and generates greedily from left-padded prompts with
attention masks, reusing the KV cache (bf16 on a GPU), through the same StatefulLoader as training; one progress
bar, tokens/s at the end. The responses end with the final answer that `avuie.schemas.parse_answer` reads.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import yaml

from .bundle import Bundle
from .checkpoint import latest_checkpoint
from .config import Config, validate_config
from .data import Collator, open_stream
from .ilora import inject_ilora, load_ilora, read_ilora_config
from .logs import Bar
from .models import build_bundle
from .recipe import CONFIG_FILE


def load_run(
    run: str | Path, checkpoint: str | Path | None = None, device: str | None = None
) -> tuple[Bundle, Config]:
    """The bundle of a run with its adapter loaded (latest checkpoint unless `checkpoint`), in eval mode."""
    run = Path(run)
    if not (run / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{run} is not a training run (no {CONFIG_FILE})")
    cfg = validate_config(yaml.safe_load((run / CONFIG_FILE).read_text()), str(run / CONFIG_FILE))
    folder = Path(checkpoint) if checkpoint else latest_checkpoint(run)
    if folder is None or not folder.exists():
        raise FileNotFoundError(f"{run} has no checkpoint yet")
    bundle, _ = build_bundle(cfg.model.model_dump(exclude_none=True), run, cfg.train.seed)
    inject_ilora(bundle.model, read_ilora_config(folder))
    unused = load_ilora(bundle.model, folder)
    if unused:  # the modular projectors travel in the same file
        from safetensors.torch import load_file

        tensors = load_file(str(folder / "adapter_model.safetensors"))
        missing = bundle.model.load_state_dict({k: tensors[k] for k in unused}, strict=False).unexpected_keys
        if missing:
            raise ValueError(f"{folder}: tensors {missing[:3]} match nothing in the model")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    bundle.model.to(dev, dtype=torch.bfloat16 if dev.type == "cuda" else None).eval()
    return bundle, cfg


def prompt_loader(bundle: Bundle, cfg: Config, stream, batch_size: int, max_length: int | None):
    """The shared StatefulLoader over `stream` with the prompt collator (left padding, no response)."""
    from avuie.shards.loader import StatefulLoader

    collator = Collator(
        bundle.tokenizer, bundle.prep, bundle.media_tokens, bundle.system_prompt,
        max_length or cfg.data.max_length, train=False,
    )  # fmt: skip
    pin = next(bundle.model.parameters()).device.type == "cuda"
    return StatefulLoader(
        stream, batch_size=batch_size, num_workers=cfg.data.num_workers, collate_fn=collator,
        batch_len=lambda batch: len(batch[1]), pin_memory=pin,
    )  # fmt: skip


def generate_batches(bundle: Bundle, loader, max_new_tokens: int):
    """Yield (meta, response texts, new tokens) per batch: KV-cached greedy generation, bf16 on a GPU."""
    device = next(bundle.model.parameters()).device
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    eos = bundle.tokenizer.convert_tokens_to_ids("<|im_end|>")
    for inputs, meta in loader:
        inputs = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
        with autocast:
            new = bundle.generate(inputs, max_new_tokens, use_cache=True)
        texts = bundle.tokenizer.batch_decode(new, skip_special_tokens=True)
        done = (new == eos).cumsum(1) == 0  # tokens up to the first end token (padding after it not counted)
        yield meta, [t.strip() for t in texts], int(done.sum()) + int((new == eos).any(1).sum())


def predict(
    run: str | Path,
    data: str,
    split: str | list[str],
    to: str | Path,
    batch_size: int | None = None,
    max_new_tokens: int | None = None,
    limit: int | None = None,
    checkpoint: str | Path | None = None,
    max_length: int | None = None,
    token: str | None = None,
) -> dict:
    """Write one {"id", "response"} line per sample of `split` (one name or several) to `to`.

    Returns {"written", "new_tokens", "seconds", "tokens_per_s"}. `max_length` bounds the prompt (default: the
    run's data.max_length); a longer prompt raises PromptTooLong. `token`: the shard server's bearer token (a
    run never records it). The data is resolved before the model is loaded: a missing or unreachable `data`
    raises DataUnavailable (a ValueError) at once.
    """
    if not (Path(run) / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{run} is not a training run (no {CONFIG_FILE})")
    stream = open_stream(data, split, shuffle=False, token=token)
    bundle, cfg = load_run(run, checkpoint)
    loader = prompt_loader(bundle, cfg, stream, batch_size or cfg.predict.batch_size, max_length)
    total = min(limit, len(stream)) if limit else len(stream)
    names = split if isinstance(split, str) else ",".join(split)
    out, written, new_tokens, start = Path(to), 0, 0, time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as fh, Bar(f"predict {names}", total) as bar:
        for meta, texts, n_new in generate_batches(
            bundle, loader, max_new_tokens or cfg.predict.max_new_tokens
        ):
            for m, text in list(zip(meta, texts, strict=True))[: total - written]:
                fh.write(json.dumps({"id": m["id"], "response": text}) + "\n")
                written += 1
            new_tokens += n_new
            rate = new_tokens / max(time.perf_counter() - start, 1e-9)
            bar.update(written, info=f"{rate:.0f} tok/s")
            if written >= total:
                break
    seconds = time.perf_counter() - start
    return {"written": written, "new_tokens": new_tokens, "seconds": seconds,
            "tokens_per_s": new_tokens / max(seconds, 1e-9)}  # fmt: skip
