"""The I-LoRA training recipe, in one file: setup, train, checkpoint, cleanup (torchtune style).

    avuie train --config tiny --data OUT --out runs/tiny [--max-steps N]
    torchrun --nproc_per_node 8 -m avuie train --config crab_plus_omni7b --data http://host:8000 --out runs/crab

Per optimizer step: `grad_accum` micro-batches from the streaming loader; the loss is the mean over every
response token of the step on all ranks (token-weighted, so accumulation and DDP give the same gradient as one
big batch); AdamW, cosine schedule with linear warmup, gradient clipping; bf16 autocast on GPU, fp32 on CPU.
Several processes: DDP, or FSDP2 (`fully_shard` per transformer block) with `train.distributed: fsdp`.

--data is resolved (shards listed, server reached) before RUN/ is made or a model is loaded. RUN/ holds
config.yaml (resolved; data.source records the data, a data.token is written as "***"), log.jsonl (one line
per logged step: loss, lr, grad norm, tokens/s and, per source and family, the mean router weight of each
I-LoRA head and its entropy over the LLM layers) and checkpoints/step_XXXXXX/ (adapter, optimizer, scheduler, per-rank RNG and loader state). A rerun with the same
RUN resumes from checkpoints/latest exactly: the losses after the resume equal those of an uninterrupted run.
A resume with another train.max_steps (or lr, warmup) continues on the new schedule: the learning rate of the
next step is lr * factor(step) of the new schedule; the console and the next log line ("schedule_changed") say
so, and other data than the recorded data.source gets a warning.
"""

from __future__ import annotations

import json
import math
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch import nn

from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, seed_everything
from .data import IGNORE, Collator, data_source, open_stream
from .ilora import ILoRAConfig, inject_ilora, record_routing, trainable_parameter_count
from .models import build_bundle
from .parallel import Dist, Parallel, barrier, clip_gradients, setup_distributed

LOG_FILE, CONFIG_FILE = "log.jsonl", "config.yaml"


def cosine_with_warmup(optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warmup over `warmup` steps, then cosine decay to 0 at `total`."""

    def factor(step: int) -> float:
        """Multiplier of the base learning rate at `step`."""
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# data.* keys passed to AVStream as they are (see avuie.shards.loader.AVStream)
STREAM_OPTIONS = ("weights", "mix_by", "temperature", "lanes", "window_bytes", "cache_dir", "cache_bytes")


def open_train_stream(data: str, data_cfg: dict, seed: int, d: Dist):
    """This rank's AVStream over `data` (shards resolved now); raises DataUnavailable / ValueError."""
    kw = {k: data_cfg[k] for k in STREAM_OPTIONS if data_cfg.get(k) is not None}
    return open_stream(
        data,
        data_cfg.get("split", "train"),
        seed=seed,
        shuffle=bool(data_cfg.get("shuffle", True)),
        token=data_cfg.get("token"),
        rank=d.rank,
        world_size=d.world,
        **kw,
    )


def apply_schedule(scheduler: torch.optim.lr_scheduler.LambdaLR, base_lr: float) -> list[float]:
    """Set every param group's lr to base_lr * lambda(last_epoch) of this scheduler; returns the lrs.

    After `load_state_dict` the optimizer holds the lrs of the schedule it was saved with; a resume with another
    max_steps (or lr) must continue on the new schedule.
    """
    scheduler.base_lrs = [base_lr for _ in scheduler.base_lrs]
    lrs = [
        base * fn(scheduler.last_epoch)
        for base, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
    ]
    for group, lr in zip(scheduler.optimizer.param_groups, lrs, strict=True):
        group["lr"], group["initial_lr"] = lr, base_lr
    scheduler._last_lr = list(lrs)
    return lrs


def read_run_config(run: Path) -> dict:
    """The resolved config a run recorded (RUN/config.yaml), or {} when there is none."""
    path = Path(run) / CONFIG_FILE
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def say(message: str) -> None:
    """A note for the person at the console (stderr, so stdout stays the command's result)."""
    print(message, file=sys.stderr, flush=True)


class BatchSource:
    """Endless micro-batches from an AVStream (see open_train_stream), epoch after epoch; knows how far it got."""

    def __init__(self, stream, data_cfg: dict, collator: Collator, seed: int):
        self.stream = stream
        batch_size = int(data_cfg.get("batch_size", 1))
        # workers take blocks of one batch in turn, so batches arrive in the rank stream's order (see AVStream)
        self.stream.block_size = batch_size
        self.loader = torch.utils.data.DataLoader(
            self.stream,
            batch_size=batch_size,
            collate_fn=collator,
            num_workers=int(data_cfg.get("num_workers", 0)),
            generator=torch.Generator().manual_seed(seed),  # making an iterator leaves the global RNG alone
        )
        self.epoch, self.consumed, self.skipped, self._it = 0, 0, 0, None

    def next(self) -> tuple[dict[str, torch.Tensor], list[dict]]:
        """The next (inputs, meta) micro-batch of kept samples; starts the next epoch when one ends."""
        empty_epochs = 0
        while empty_epochs < 2:
            if self._it is None:
                self._it = iter(self.loader)
            try:
                inputs, meta = next(self._it)
            except StopIteration:
                self.epoch, self.consumed, self._it = self.epoch + 1, 0, None
                self.stream.set_epoch(self.epoch)
                empty_epochs += 1
                continue
            self.consumed += len(meta)  # skipped samples count as consumed: resume continues after them
            kept = [m for m in meta if not m.get("skipped")]
            self.skipped += len(meta) - len(kept)
            if inputs is not None:
                return inputs, kept
        raise RuntimeError(
            "the data stream yields no usable samples for this rank (empty split, or all too long?)"
        )

    def state_dict(self) -> dict:
        """Epoch and samples consumed in it by this rank."""
        return {"epoch": self.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved position: same epoch order, the first `consumed` samples skipped (not read)."""
        self.epoch, self.consumed, self._it = int(state["epoch"]), int(state["consumed"]), None
        self.stream.set_epoch(self.epoch)
        self.stream.load_state_dict(
            {**self.stream.state_dict(), "epoch": self.epoch, "consumed": self.consumed}
        )


def token_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(sum of next-token cross-entropy over labelled positions, number of them), computed in float32."""
    targets = labels[:, 1:]
    keep = targets != IGNORE
    picked = logits[:, :-1][keep].float()
    return nn.functional.cross_entropy(picked, targets[keep], reduction="sum"), int(keep.sum())


class RouterStats:
    """Per source and family: the mean router weight of each head and the mean gate entropy since the last log."""

    def __init__(self):
        self.rows: list[tuple[str, str, list[float], float]] = []

    def add(self, meta: list[dict], per_sample: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        """Keep one micro-batch's per-sample (gates [B,H], entropy [B]) under each sample's source and family."""
        if per_sample is None:
            return
        gates, entropy = (t.cpu().tolist() for t in per_sample)
        for m, g, e in zip(meta, gates, entropy, strict=True):
            self.rows.append((str(m.get("source")), str(m.get("family")), g, e))

    def summary(self, d: Dist) -> dict:
        """Gathered over ranks: {"source": {name: {"gate": [..H], "entropy": x, "n": k}}, "family": {...}}."""
        rows = self.rows
        if d.world > 1:
            gathered: list = [None] * d.world
            dist.all_gather_object(gathered, rows)
            rows = [r for part in gathered for r in part]
        self.rows = []
        out: dict[str, dict] = {"source": {}, "family": {}}
        for field, idx in (("source", 0), ("family", 1)):
            groups: dict[str, list] = {}
            for row in rows:
                groups.setdefault(row[idx], []).append(row)
            for name, group in sorted(groups.items()):
                gates = np.mean([r[2] for r in group], axis=0)
                out[field][name] = {
                    "gate": [round(float(x), 5) for x in gates],
                    "entropy": round(float(np.mean([r[3] for r in group])), 5),
                    "n": len(group),
                }
        return out


def old_schedule(previous: dict) -> dict | None:
    """The schedule of a run's recorded config (for checkpoints that predate the saved schedule)."""
    tcfg = previous.get("train") or {}
    if "max_steps" not in tcfg:
        return None
    total = int(tcfg["max_steps"])
    warmup = int(tcfg.get("warmup_steps", round(float(tcfg.get("warmup_ratio", 0.0)) * total)))
    return {"max_steps": total, "warmup_steps": warmup, "lr": float(tcfg.get("lr", 1e-4))}


def schedule_change(old: dict | None, new: dict, step: int) -> dict | None:
    """{"at_step", "from", "to", "message"} when the resumed run's schedule differs from the saved one, else None."""
    if not old:
        return None
    keys = [k for k in ("max_steps", "warmup_steps", "lr") if k in old and old[k] != new[k]]
    if not keys:
        return None
    parts = ", ".join(f"{k} {old[k]} -> {new[k]}" for k in keys)
    return {
        "at_step": step,
        "from": {k: old[k] for k in keys},
        "to": {k: new[k] for k in keys},
        "message": f"schedule changed ({parts}); the learning rate follows the new schedule from step {step + 1}",
    }


def train(cfg: dict, data: str, out: str | Path) -> list[dict]:
    """Run the recipe; returns the logged lines (on rank 0; other ranks return [])."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    d = setup_distributed()
    run = Path(out)
    tcfg, dcfg = cfg["train"], cfg["data"]
    seed = int(tcfg.get("seed", 0))
    # -- data first: resolve the shards before a run folder is made or a model is loaded
    stream = open_train_stream(data, dcfg, seed, d)
    previous = read_run_config(run)
    if d.main and previous and latest_checkpoint(run) is not None and tcfg.get("resume", True):
        recorded = previous.get("data", {}).get("source")
        if recorded and recorded != data_source(data):
            say(
                f"warning: --data {data_source(data)} differs from the data {run} was trained on ({recorded}); "
                "resuming anyway, but the loader position saved in the checkpoint refers to the recorded data"
            )
    if d.main:
        run.mkdir(parents=True, exist_ok=True)
    barrier(d)
    # -- model: build (rank 0 first, so a tiny base is written once), place I-LoRA, freeze the backbone
    for turn in (True, False):
        if d.main == turn:
            seed_everything(seed)
            bundle, model_cfg = build_bundle(cfg["model"], run, seed)
        barrier(d)
    icfg = dict(cfg["ilora"])
    icfg["target_modules"] = icfg.get("target_modules") or bundle.ilora_patterns
    ilora = ILoRAConfig.from_dict(icfg)
    seed_everything(seed)
    inject_ilora(bundle.model, ilora)
    bundle.mark_trainable()
    if tcfg.get("gradient_checkpointing"):
        bundle.enable_checkpointing()
    bundle.model.to(d.device).train()
    par = Parallel(bundle.model, tcfg.get("distributed", "ddp"), d)
    model = par.model
    resolved_data = {**dcfg, "source": data_source(data)}
    if resolved_data.get("token"):
        resolved_data["token"] = "***"  # never written: pass it again (--token / AVUIE_SERVE_TOKEN)
    resolved = {**cfg, "model": model_cfg, "ilora": ilora.to_dict(), "data": resolved_data}
    if d.main:
        (run / CONFIG_FILE).write_text(yaml.safe_dump(resolved, sort_keys=False))
    # -- optimizer, schedule, batches
    total = int(tcfg.get("max_steps", 1000))
    params = [p for p in bundle.model.parameters() if p.requires_grad]  # after sharding: DTensors under FSDP
    optimizer = torch.optim.AdamW(
        params,
        lr=float(tcfg.get("lr", 1e-4)),
        betas=tuple(tcfg.get("betas", (0.9, 0.999))),
        weight_decay=float(tcfg.get("weight_decay", 0.0)),
    )
    warmup = int(tcfg.get("warmup_steps", round(float(tcfg.get("warmup_ratio", 0.0)) * total)))
    scheduler = cosine_with_warmup(optimizer, warmup, total)
    schedule = {"max_steps": total, "warmup_steps": warmup, "lr": float(tcfg.get("lr", 1e-4))}
    collator = Collator(
        bundle.tokenizer,
        bundle.prep,
        bundle.media_tokens,
        bundle.system_prompt,
        int(dcfg.get("max_length", 4096)),
        train=True,
    )
    source = BatchSource(stream, dcfg, collator, seed)
    seed_everything(seed + d.rank)  # dropout masks differ per rank, reproducibly
    step, resume_note = 0, None
    ckpt = latest_checkpoint(run) if tcfg.get("resume", True) else None
    if ckpt is not None:
        step, saved = load_checkpoint(ckpt, model, optimizer, scheduler, source, d)
        apply_schedule(scheduler, schedule["lr"])  # continue on this run's schedule, not the saved one
        resume_note = schedule_change(saved or old_schedule(previous), schedule, step)
        if resume_note and d.main:
            say(f"resuming {run} at step {step}: {resume_note['message']}")
    # -- the loop
    accum, clip = int(tcfg.get("grad_accum", 1)), float(tcfg.get("clip_grad", 0.0))
    log_every, save_every = int(tcfg.get("log_every", 1)), int(tcfg.get("save_every", 0))
    stop = min(total, int(tcfg.get("stop_after") or total))
    if step >= stop and d.main:
        say(f"{run} is at step {step} already (train.max_steps {total}): nothing to train")
    use_bf16 = tcfg.get("precision", "auto") in ("auto", "bf16") and d.device.type == "cuda"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else nullcontext()
    router, lines, window = (
        RouterStats(),
        [],
        {"loss": 0.0, "tokens": 0, "seen": 0, "skipped": 0, "time": 0.0, "steps": 0},
    )
    trainable, n_all = trainable_parameter_count(bundle.model)
    progress = Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.fields[info]}"),
        TimeRemainingColumn(),
        disable=not d.main,
    )
    with progress:
        task = progress.add_task(
            "train", total=stop, completed=step, info=f"{trainable:,}/{n_all:,} params trainable"
        )
        while step < stop:
            t0 = time.perf_counter()
            skipped_before = source.skipped
            micro = [source.next() for _ in range(accum)]
            counts = torch.tensor(
                [
                    sum(int((b["labels"][:, 1:] != IGNORE).sum()) for b, _ in micro),
                    sum(int(b["attention_mask"].sum()) for b, _ in micro),
                    sum(len(m) for _, m in micro),
                    source.skipped - skipped_before,
                ],
                dtype=torch.float64,
                device=d.device,  # collectives run on the device (NCCL needs CUDA tensors)
            )
            if d.world > 1:
                dist.all_reduce(counts)
            label_tokens = max(1.0, float(counts[0]))
            loss_total = torch.zeros((), dtype=torch.float64, device=d.device)
            for i, (inputs, meta) in enumerate(micro):
                inputs = {k: v.to(d.device) for k, v in inputs.items()}
                last = i == accum - 1
                with par.micro_step(last):
                    with autocast:
                        with record_routing(bundle.model, inputs["attention_mask"], bundle.llm_prefix) as rec:
                            logits = bundle.forward(model, inputs)
                        loss_sum, _ = token_loss_sum(logits, inputs["labels"])
                    (loss_sum * d.world / label_tokens).backward()
                router.add(meta, rec.per_sample())
                loss_total += loss_sum.detach().double()
            par.finish_gradients()
            grad_norm = clip_gradients(params, clip, d)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if d.world > 1:
                dist.all_reduce(loss_total)
            window["loss"] += float(loss_total) / label_tokens
            window["tokens"] += int(counts[1])
            window["seen"] += int(counts[2])
            window["skipped"] += int(counts[3])
            window["time"] += time.perf_counter() - t0
            window["steps"] += 1
            if step % log_every == 0 or step == stop:
                line = {
                    "step": step,
                    "epoch": source.epoch,
                    "loss": window["loss"] / window["steps"],
                    "lr": lr,
                    "grad_norm": float(grad_norm),
                    "tokens": window["tokens"],
                    "samples": window["seen"],
                    "skipped_too_long": window["skipped"],
                    "tokens_per_s": window["tokens"] / max(window["time"], 1e-9),
                    "router": router.summary(d),
                }
                if resume_note:  # the first line after a resume that changed the schedule says so
                    line["schedule_changed"], resume_note = resume_note, None
                if d.main:
                    with open(run / LOG_FILE, "a") as fh:
                        fh.write(json.dumps(line) + "\n")
                    lines.append(line)
                window = dict.fromkeys(window, 0)
                progress.update(
                    task, info=f"loss {line['loss']:.4f} lr {lr:.2e} {line['tokens_per_s']:.0f} tok/s"
                )
            progress.update(task, completed=step)
            if (save_every and step % save_every == 0) or step == stop:
                keep = int(tcfg.get("keep_checkpoints", 2))
                save_checkpoint(
                    run,
                    step,
                    model,
                    optimizer,
                    scheduler,
                    source,
                    ilora,
                    d,
                    keep,
                    bundle.extra_prefixes,
                    schedule,
                )
    barrier(d)
    if dist.is_initialized():
        dist.destroy_process_group()
    return lines


def read_log(run: str | Path) -> list[dict]:
    """The JSONL log lines of a run."""
    path = Path(run) / LOG_FILE
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )
