"""The I-LoRA training recipe, as stages over a typed config (trainer/config.py):

    setup -> data -> model -> optimise (+ resume) -> the loop: step, log, validate, checkpoint

    avuie train --config tiny --data OUT --out runs/tiny [--max-steps N]
    torchrun --nproc_per_node 8 -m avuie train --config crab_plus_omni7b --data http://host:8000 --out runs/crab

Per optimizer step: `grad_accum` micro-batches from the streaming loader (shards.loader.StatefulLoader, as for
every other reader); the loss is the mean over every response token of the step on all ranks (token-weighted,
so accumulation, DDP and packing give the same gradient as one big batch); AdamW, cosine schedule with linear
warmup, gradient clipping; bf16 autocast on GPU, fp32 on CPU. Several processes: DDP, or FSDP2 (`fully_shard`
per transformer block) with `train.distributed: fsdp`.

--data is resolved (shards listed, server reached) before RUN/ is made or a model is loaded. RUN/ holds
config.yaml (resolved; data.source records the data, a data.token is written as "***"), log.jsonl (one line
per logged step: loss, lr, grad norm, tokens/s, data wait and, per source and family, the mean router weight of
each I-LoRA head and its entropy over the LLM layers; `val_loss` lines every train.eval_every steps),
tensorboard/ when train.tensorboard, and checkpoints/step_XXXXXX/. A rerun with the same RUN resumes from
checkpoints/latest exactly: the losses after the resume equal those of an uninterrupted run. A resume with
another schedule continues on the new one (trainer/schedule.py); other data than the recorded data.source
gets a warning.
"""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
import yaml

from .checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint, seed_everything
from .config import Config, validate_config
from .data import Collator, data_source, open_stream
from .ilora import ILoRAConfig, adapter_names, inject_ilora, record_routing, trainable_parameter_count
from .logs import Bar, RunLog, read_log, summary_writer_class  # noqa: F401  (read_log: the public way to read a run's log)
from .models import build_bundle
from .parallel import Dist, Parallel, barrier, clip_gradients, setup_distributed
from .schedule import apply_schedule, cosine_with_warmup, old_schedule, schedule_change
from .steps import BatchSource, RouterStats, label_index, token_loss_sum

CONFIG_FILE = "config.yaml"
# data.* keys passed to AVStream as they are, when set (see avuie.shards.loader.AVStream)
STREAM_OPTIONS = ("weights", "temperature", "lanes", "window_bytes", "cache_dir", "cache_bytes")
MODEL_FORWARD = "avuie::model_forward"  # profiler labels (benchmarks/bench_gpu_recipe.py reads them)
HOST_SIDE = "avuie::host_side"


def read_run_config(run: Path) -> dict:
    """The resolved config a run recorded (RUN/config.yaml), or {} when there is none."""
    path = Path(run) / CONFIG_FILE
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def say(message: str) -> None:
    """A note for the person at the console (stderr, so stdout stays the command's result)."""
    print(message, file=sys.stderr, flush=True)


def open_split(data: str, cfg: Config, split, seed: int, d: Dist, shuffle: bool):
    """This rank's AVStream over `split` of `data` (shards resolved now); raises DataUnavailable / ValueError."""
    dcfg = cfg.data
    kw = {k: getattr(dcfg, k) for k in STREAM_OPTIONS if getattr(dcfg, k) is not None}
    return open_stream(
        data, split, seed=seed, shuffle=shuffle, token=dcfg.token, rank=d.rank, world_size=d.world,
        mix_by=dcfg.mix_by, **kw,
    )  # fmt: skip


class Recipe:
    """One training run. `run()` goes through the stages; each stage is a method (see the module docstring)."""

    def __init__(self, cfg: Config | dict, data: str, out: str | Path):
        self.cfg, self.data, self.run = validate_config(cfg), data, Path(out)
        self.tcfg, self.dcfg = self.cfg.train, self.cfg.data
        self.step, self.resume_note, self.lines = 0, None, []

    # ------------------------------------------------------------------ stages
    def setup(self) -> None:
        """Processes, data streams (resolved before anything is written), the run folder and its log."""
        self.d = d = setup_distributed()
        seed = self.tcfg.seed
        self.stream = open_split(self.data, self.cfg, self.dcfg.split, seed, d, self.dcfg.shuffle)
        self.eval_stream = None
        if self.tcfg.eval_every:
            if not self.dcfg.eval_split:
                raise ValueError("train.eval_every is set but data.eval_split (a held-out split) is not")
            self.eval_stream = open_split(self.data, self.cfg, self.dcfg.eval_split, seed, d, False)
        self.previous = read_run_config(self.run)
        recorded = self.previous.get("data", {}).get("source")
        resuming = self.previous and latest_checkpoint(self.run) is not None and self.tcfg.resume
        if d.main and resuming and recorded and recorded != data_source(self.data):
            say(
                f"warning: --data {data_source(self.data)} differs from the data {self.run} was trained on "
                f"({recorded}); resuming anyway, but the loader position saved in the checkpoint refers to "
                "the recorded data"
            )
        if self.tcfg.tensorboard:
            summary_writer_class()  # a missing tensorboard is an error before anything is written
        if d.main:
            self.run.mkdir(parents=True, exist_ok=True)
        self.log = RunLog(self.run, self.tcfg.tensorboard) if d.main else None
        barrier(d)

    def build_model(self) -> None:
        """Base model (rank 0 first, so a tiny base is written once), I-LoRA placed, backbone frozen, wrapped."""
        d, seed = self.d, self.tcfg.seed
        for turn in (True, False):
            if d.main == turn:
                seed_everything(seed)
                self.bundle, resolved_model = self.load_bundle()
            barrier(d)
        bundle = self.bundle
        icfg = self.cfg.ilora.model_dump()
        icfg["target_modules"] = icfg.get("target_modules") or bundle.ilora_patterns
        self.ilora = ILoRAConfig.from_dict(icfg)
        seed_everything(seed)
        inject_ilora(bundle.model, self.ilora)
        self.adapter_names = adapter_names(bundle.model)
        bundle.mark_trainable()
        if self.tcfg.gradient_checkpointing:
            bundle.enable_checkpointing(self.tcfg.gradient_checkpointing)
        self.head = bundle.detach_head()  # the loss projects only labelled positions (chunked)
        bundle.model.to(d.device).train()
        self.head.to(d.device)
        self.par = Parallel(bundle.model, self.tcfg.distributed, d)
        self.llm_prefix = bundle.llm_prefix
        self.write_config(resolved_model)

    def load_bundle(self):
        """(Bundle, resolved model section) of the config's `model:` (a benchmark may build its own model)."""
        return build_bundle(self.cfg.model.model_dump(exclude_none=True), self.run, self.tcfg.seed)

    def write_config(self, resolved_model: dict) -> None:
        """RUN/config.yaml: the config as resolved (model paths, placement, data source; never the token)."""
        data = {**self.dcfg.model_dump(exclude_none=True), "source": data_source(self.data)}
        if data.get("token"):
            data["token"] = "***"  # never written: pass it again (--token / AVUIE_SERVE_TOKEN)
        resolved = {
            **self.cfg.to_dict(),
            "model": resolved_model,
            "ilora": self.ilora.to_dict(),
            "data": data,
        }
        if self.d.main:
            (self.run / CONFIG_FILE).write_text(yaml.safe_dump(resolved, sort_keys=False))

    def build_data(self) -> None:
        """The collator (packing per data.pack) and the batch source over the shared StatefulLoader."""
        b, dcfg = self.bundle, self.dcfg
        self.collator = Collator(
            b.tokenizer, b.prep, b.media_tokens, b.system_prompt, dcfg.max_length, train=True, pack=dcfg.pack
        )
        pin = self.d.device.type == "cuda"
        self.source = BatchSource(
            self.stream, dcfg.batch_size, dcfg.num_workers, self.collator, self.tcfg.seed, pin
        )

    def build_optimiser(self) -> None:
        """AdamW on the trainable tensors, the warmup + cosine schedule; resume from the latest checkpoint."""
        t = self.tcfg
        self.params = [p for p in self.bundle.model.parameters() if p.requires_grad]  # DTensors under FSDP
        self.optimizer = torch.optim.AdamW(self.params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay)
        warmup = t.warmup_steps if t.warmup_steps is not None else round(t.warmup_ratio * t.max_steps)
        self.scheduler = cosine_with_warmup(self.optimizer, warmup, t.max_steps)
        self.schedule = {"max_steps": t.max_steps, "warmup_steps": warmup, "lr": t.lr}
        seed_everything(t.seed + self.d.rank)  # dropout masks differ per rank, reproducibly
        ckpt = latest_checkpoint(self.run) if t.resume else None
        if ckpt is None:
            return
        self.step, saved = load_checkpoint(
            ckpt, self.par.model, self.optimizer, self.scheduler, self.source, self.d, self.adapter_names
        )
        apply_schedule(self.scheduler, t.lr)  # continue on this run's schedule, not the saved one
        self.resume_note = schedule_change(saved or old_schedule(self.previous), self.schedule, self.step)
        if self.resume_note and self.d.main:
            say(f"resuming {self.run} at step {self.step}: {self.resume_note['message']}")

    # ------------------------------------------------------------------ the step
    def to_device(self, inputs: dict) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """(inputs on the device, labelled flat positions, their targets); copies are non-blocking."""
        index, targets = label_index(inputs["labels"])
        dev = self.d.device
        moved = {k: v.to(dev, non_blocking=True) for k, v in inputs.items()}
        return moved, index.to(dev, non_blocking=True), targets.to(dev, non_blocking=True)

    def micro_counts(self, micro: list) -> torch.Tensor:
        """[label tokens, tokens, samples] of the step's micro-batches, summed over ranks (CPU numbers)."""
        counts = torch.tensor(
            [
                sum(int((b["labels"][:, 1:] != -100).sum()) for b, _ in micro),
                sum(int(b["attention_mask"].sum()) for b, _ in micro),
                sum(len(m) for _, m in micro),
            ],
            dtype=torch.float64,
            device=self.d.device,  # collectives run on the device (NCCL needs CUDA tensors)
        )
        if self.d.world > 1:
            dist.all_reduce(counts)
        return counts

    def train_step(self, autocast, window: dict) -> None:
        """One optimizer step over grad_accum micro-batches; adds its numbers (device tensors) to `window`."""
        t0 = time.perf_counter()
        with torch.profiler.record_function(HOST_SIDE):  # data loading (in the workers when num_workers > 0)
            micro = [self.source.next() for _ in range(self.tcfg.grad_accum)]
        window["wait"] += time.perf_counter() - t0
        with torch.profiler.record_function(HOST_SIDE):  # counts from the CPU copies: no device sync
            counts = self.micro_counts(micro)
        label_tokens = counts[0].clamp_min(1.0)
        loss_total = torch.zeros((), dtype=torch.float64, device=self.d.device)
        for i, (inputs, meta) in enumerate(micro):
            with torch.profiler.record_function(HOST_SIDE):
                batch, index, targets = self.to_device(inputs)
            samples = batch["pack_index"].shape[0] if "pack_index" in batch else batch["input_ids"].shape[0]
            with self.par.micro_step(i == len(micro) - 1), autocast:
                with record_routing(self.bundle.model, batch["segments"], self.llm_prefix, samples) as rec:
                    with torch.profiler.record_function(MODEL_FORWARD):  # profiles tell model from recipe
                        hidden = self.bundle.forward(self.par.model, batch, self.mask_dtype)
                loss_sum = token_loss_sum(hidden, self.head, index, targets, self.tcfg.loss_chunk)
                (loss_sum * self.d.world / label_tokens).backward()
            self.router.add(meta, rec.per_sample())
            loss_total += loss_sum.detach().double()
        self.par.finish_gradients()
        window["grad_norm"] = clip_gradients(self.params, self.tcfg.clip_grad, self.d)
        window["lr"] = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.d.world > 1:
            dist.all_reduce(loss_total)
        window["loss"] += loss_total / label_tokens
        window["tokens"] += counts[1]
        window["samples"] += counts[2]
        window["time"] += time.perf_counter() - t0
        window["steps"] += 1
        self.step += 1

    @torch.no_grad()
    def evaluate(self, autocast) -> float:
        """Token-weighted loss on data.eval_samples samples of the held-out split (all ranks together)."""
        b = self.bundle
        collator = Collator(b.tokenizer, b.prep, b.media_tokens, b.system_prompt, self.dcfg.max_length, True)
        source = BatchSource(self.eval_stream, self.dcfg.batch_size, 0, collator, self.tcfg.seed)
        self.bundle.model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=self.d.device)
        seen = 0
        while seen < self.dcfg.eval_samples and source.epoch == 0:
            inputs, meta = source.next()
            batch, index, targets = self.to_device(inputs)
            with autocast:
                hidden = self.bundle.forward(self.par.model, batch, self.mask_dtype)
                total[0] += token_loss_sum(hidden, self.head, index, targets, self.tcfg.loss_chunk).double()
            total[1] += targets.numel()
            seen += len(meta)
        self.bundle.model.train()
        if self.d.world > 1:
            dist.all_reduce(total)
        return float(total[0] / total[1].clamp_min(1.0))

    # ------------------------------------------------------------------ log and checkpoint
    def log_line(self, window: dict) -> dict:
        """The log line of the steps since the last one (the only place the step's numbers reach the host)."""
        line = {
            "step": self.step,
            "epoch": self.source.epoch,
            "loss": float(window["loss"]) / window["steps"],
            "lr": window["lr"],
            "grad_norm": float(window["grad_norm"]),
            "tokens": int(window["tokens"]),
            "samples": int(window["samples"]),
            "skipped_too_long": self.source.skipped - window["skipped_before"],
            "tokens_per_s": float(window["tokens"]) / max(window["time"], 1e-9),
            "data_wait_share": window["wait"] / max(window["time"], 1e-9),
            "router": self.router.summary(self.d),
        }
        if self.resume_note:  # the first line after a resume that changed the schedule says so
            line["schedule_changed"], self.resume_note = self.resume_note, None
        return line

    def write(self, line: dict) -> None:
        """Write a line to the run's log (rank 0)."""
        if self.d.main:
            self.log.write(line)
            self.lines.append(line)

    def checkpoint(self) -> None:
        """checkpoints/step_XXXXXX (adapter under canonical names, optimizer, schedule, RNG, loader)."""
        save_checkpoint(
            self.run, self.step, self.par.model, self.optimizer, self.scheduler, self.source, self.ilora,
            self.d, self.tcfg.keep_checkpoints, self.bundle.extra_prefixes, self.schedule, self.adapter_names,
        )  # fmt: skip

    # ------------------------------------------------------------------ the loop
    def new_window(self) -> dict:
        """Sums since the last log line."""
        sums = {
            k: torch.zeros((), dtype=torch.float64, device=self.d.device)
            for k in ("loss", "tokens", "samples")
        }
        return {**sums, "time": 0.0, "wait": 0.0, "steps": 0, "skipped_before": self.source.skipped}

    def loop(self) -> None:
        """Train until train.max_steps (or train.stop_after): step, log, validate, checkpoint."""
        t, d = self.tcfg, self.d
        stop = min(t.max_steps, t.stop_after or t.max_steps)
        if self.step >= stop and d.main:
            say(
                f"{self.run} is at step {self.step} already (train.max_steps {t.max_steps}): nothing to train"
            )
        use_bf16 = t.precision in ("auto", "bf16") and d.device.type == "cuda"
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else nullcontext()
        self.mask_dtype = torch.bfloat16 if use_bf16 else next(self.head.parameters()).dtype
        self.router, window = RouterStats(), self.new_window()
        trainable, n_all = trainable_parameter_count(self.bundle.model)
        with Bar("train", total=stop, disable=not d.main) as bar:
            bar.update(self.step, info=f"{trainable:,}/{n_all:,} params trainable")
            while self.step < stop:
                self.train_step(autocast, window)
                if self.step % t.log_every == 0 or self.step == stop:
                    line = self.log_line(window)
                    self.write(line)
                    window = self.new_window()
                    bar.info(f"loss {line['loss']:.4f} lr {line['lr']:.2e} {line['tokens_per_s']:.0f} tok/s")
                if t.eval_every and (self.step % t.eval_every == 0 or self.step == stop):
                    self.write({"step": self.step, "val_loss": self.evaluate(autocast)})
                bar.update(self.step)
                if (t.save_every and self.step % t.save_every == 0) or self.step == stop:
                    self.checkpoint()

    def run_all(self) -> list[dict]:
        """All stages; returns the logged lines (on rank 0; other ranks return [])."""
        self.setup()
        self.build_model()
        self.build_data()
        self.build_optimiser()
        try:
            self.loop()
        finally:
            if self.log is not None:
                self.log.close()
        barrier(self.d)
        if dist.is_initialized():
            dist.destroy_process_group()
        return self.lines


def train(cfg: Config | dict, data: str, out: str | Path) -> list[dict]:
    """Run the recipe on `data` into the run folder `out`; returns the logged lines (rank 0)."""
    return Recipe(cfg, data, out).run_all()
