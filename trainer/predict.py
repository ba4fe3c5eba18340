"""Batched inference with a trained run: one {"id", "response"} JSON line per sample of a split.

    avuie predict --run RUN --data OUT --split test --to preds.jsonl

Rebuilds the base model from RUN/config.yaml (a tiny base is read back from RUN/base_model), places I-LoRA,
loads the latest checkpoint's adapter (and projectors), and generates greedily from left-padded prompts with
attention masks. The responses end with the final answer that `avuie.schemas.parse_answer` reads.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import torch
import yaml

from .checkpoint import latest_checkpoint
from .data import Collator, open_stream
from .ilora import inject_ilora, load_ilora, read_ilora_config
from .models import Bundle, build_bundle
from .recipe import CONFIG_FILE


def load_run(
    run: str | Path, checkpoint: str | Path | None = None, device: str | None = None
) -> tuple[Bundle, dict]:
    """The bundle of a run with its adapter loaded (latest checkpoint unless `checkpoint`), in eval mode."""
    run = Path(run)
    if not (run / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{run} is not a training run (no {CONFIG_FILE})")
    cfg = yaml.safe_load((run / CONFIG_FILE).read_text())
    folder = Path(checkpoint) if checkpoint else latest_checkpoint(run)
    if folder is None or not folder.exists():
        raise FileNotFoundError(f"{run} has no checkpoint yet")
    bundle, _ = build_bundle(cfg["model"], run, int(cfg.get("train", {}).get("seed", 0)))
    inject_ilora(bundle.model, read_ilora_config(folder))
    unused = load_ilora(bundle.model, folder)
    if unused:  # the modular projectors travel in the same file
        from safetensors.torch import load_file

        tensors = load_file(str(folder / "adapter_model.safetensors"))
        missing = bundle.model.load_state_dict({k: tensors[k] for k in unused}, strict=False).unexpected_keys
        if missing:
            raise ValueError(f"{folder}: tensors {missing[:3]} match nothing in the model")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    bundle.model.to(dev).eval()
    return bundle, cfg


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
) -> int:
    """Write one {"id", "response"} line per sample of `split` (one name or several) to `to`; return the count.

    `max_length` bounds the prompt (default: the run's data.max_length); a longer prompt raises PromptTooLong.
    `token`: the shard server's bearer token (a run never records it). The data is resolved before the model
    is loaded: a missing or unreachable `data` raises DataUnavailable (a ValueError) at once.
    """
    from rich.progress import Progress

    if not (Path(run) / CONFIG_FILE).exists():
        raise FileNotFoundError(f"{run} is not a training run (no {CONFIG_FILE})")
    stream = open_stream(data, split, shuffle=False, token=token)
    bundle, cfg = load_run(run, checkpoint)
    pcfg, dcfg = cfg.get("predict", {}), cfg.get("data", {})
    batch_size = batch_size or int(pcfg.get("batch_size", 4))
    max_new_tokens = max_new_tokens or int(pcfg.get("max_new_tokens", 256))
    device = next(bundle.model.parameters()).device
    collator = Collator(
        bundle.tokenizer,
        bundle.prep,
        bundle.media_tokens,
        bundle.system_prompt,
        max_length or int(dcfg.get("max_length", 4096)),
        train=False,
    )
    loader = torch.utils.data.DataLoader(
        stream, batch_size=batch_size, collate_fn=collator, num_workers=int(dcfg.get("num_workers", 0))
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    out = Path(to)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(out, "w") as fh, Progress() as progress:
        names = split if isinstance(split, str) else ",".join(split)
        task = progress.add_task(f"predict {names}", total=limit)
        for inputs, meta in loader:
            inputs = {k: v.to(device) for k, v in inputs.items()}
            with autocast:
                new = bundle.generate(inputs, max_new_tokens)
            texts = bundle.tokenizer.batch_decode(new, skip_special_tokens=True)
            for m, text in zip(meta, texts, strict=True):
                if limit and written >= limit:
                    break
                fh.write(json.dumps({"id": m["id"], "response": text.strip()}) + "\n")
                written += 1
            progress.update(task, advance=len(meta))
            if limit and written >= limit:
                break
    return written
