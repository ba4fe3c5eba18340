"""I-LoRA cost against peft LoRA at the same rank (and the per-head loop, and plain-autograd I-LoRA).

    python benchmarks/bench_ilora.py [--rank 16] [--heads 3] [--batch 4] [--seq 256] [--steps 12] [--threads 2]
                                     [--device cpu|cuda] [--dtype float32|bfloat16] [--hidden 512 --layers 6]

Model: a random Qwen2 causal LM (default about 20M parameters: hidden 512, 6 layers), adapters on q,k,v,o,gate,
up,down, backbone frozen, AdamW. A step is forward + backward + optimizer step. All variants live in one process
and their steps are *alternated* (variant order rotated every round), so a busy shared machine slows them alike;
step time is the median over the timed rounds (after 2 warm-up rounds).

Memory, per variant: "saved" = the bytes autograd keeps for backward in one step, counted once per storage and
without the (frozen) model weights, measured with saved-tensor hooks; "state" = trainable parameters + their
gradients + AdamW moments; "step memory" = saved + state, the memory a step adds on top of the model (the
whole-process RSS hides it under torch and the weights). On CUDA also torch.cuda.max_memory_allocated during a
step minus the memory allocated before it. Variants: ilora (H heads, hand-written backward: the shipped layer),
ilora_h1 (one head), ilora_autograd (the same function with plain autograd ops), ilora_loop (a Python loop over
heads), peft_lora. Prints a table and the ratios; --json writes them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
VARIANTS = ("ilora", "ilora_h1", "ilora_autograd", "ilora_loop", "peft_lora")


def build(variant: str, args, torch):
    """The model of one variant (same base weights for all), its optimizer and its trainable tensors."""
    from avuie.trainer import ilora
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=4096, hidden_size=args.hidden, intermediate_size=args.hidden * 11 // 4,
        num_hidden_layers=args.layers, num_attention_heads=8, num_key_value_heads=4,
        max_position_embeddings=args.seq,
    )  # fmt: skip
    model = Qwen2ForCausalLM(cfg).to(args.device, getattr(torch, args.dtype))
    if variant == "peft_lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.1, target_modules=TARGETS)
        model = get_peft_model(model, lora)
    else:
        heads = 1 if variant == "ilora_h1" else args.heads
        pattern = [rf".*\.{t}" for t in TARGETS]
        icfg = ilora.ILoRAConfig(
            r=args.rank, alpha=2 * args.rank, num_heads=heads, dropout=0.1, target_modules=pattern
        )
        ilora.inject_ilora(model, icfg)
        for _, layer in ilora.iter_ilora_layers(model):
            layer.to(args.device)
            torch.nn.init.normal_(layer.lora_B, std=0.01)
            if variant == "ilora_loop":
                layer.forward = layer.forward_head_loop
            elif variant == "ilora_autograd":
                layer.forward = layer.forward_autograd
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    return model, torch.optim.AdamW(params, lr=1e-4), params


class Variant:
    """One variant's model and step, with the measurements of its steps."""

    def __init__(self, name: str, args, torch):
        self.name, self.args, self.torch = name, args, torch
        self.model, self.opt, self.params = build(name, args, torch)
        self.ids = torch.randint(0, 4096, (args.batch, args.seq), generator=torch.Generator().manual_seed(1))
        self.ids = self.ids.to(args.device)
        self.frozen = {p.untyped_storage().data_ptr() for p in self.model.parameters()}
        self.times: list[float] = []
        self.saved = 0
        self.gpu_peak = 0

    def step(self, count_saved: bool = False) -> None:
        """One training step; with count_saved, the unique bytes autograd saves (model weights left out)."""
        torch = self.torch
        seen: set[int] = set()

        def pack(t):
            ptr = t.untyped_storage().data_ptr()
            if ptr not in self.frozen and ptr not in seen:
                seen.add(ptr)
                self.saved += t.untyped_storage().nbytes()
            return t

        if count_saved:
            self.saved = 0
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = self.model(input_ids=self.ids, labels=self.ids).loss
        else:
            loss = self.model(input_ids=self.ids, labels=self.ids).loss
        loss.backward()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)

    def timed_step(self) -> None:
        """A step whose wall time (and, on CUDA, peak allocation) is recorded."""
        torch = self.torch
        cuda = self.args.device == "cuda"
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        self.step()
        if cuda:
            torch.cuda.synchronize()
            self.gpu_peak = max(self.gpu_peak, torch.cuda.max_memory_allocated() - before)
        self.times.append(time.perf_counter() - t0)

    def row(self) -> dict:
        """The variant's measurements."""
        trainable = sum(p.numel() for p in self.params)
        state = 4 * sum(p.numel() * p.element_size() for p in self.params)  # weight, grad, 2 AdamW moments
        median = statistics.median(self.times)
        return {
            "variant": self.name, "trainable": trainable, "median_step_s": median,
            "tokens_per_s": self.args.batch * self.args.seq / median, "saved_mb": self.saved / 2**20,
            "state_mb": state / 2**20, "step_memory_mb": (self.saved + state) / 2**20,
            "gpu_peak_mb": self.gpu_peak / 2**20 if self.gpu_peak else None,
        }  # fmt: skip


def measure(args) -> dict[str, dict]:
    """Build every variant, alternate their steps, return {variant: row}."""
    import torch

    torch.set_num_threads(args.threads)
    variants = [Variant(name, args, torch) for name in VARIANTS]
    for v in variants:
        v.step()
        v.step(count_saved=True)  # warm-ups; the second counts what autograd saves
    for round_ in range(args.steps):
        shift = round_ % len(variants)
        for v in variants[shift:] + variants[:shift]:
            v.timed_step()
    return {v.name: v.row() for v in variants}


def ratios_of(rows: dict[str, dict]) -> dict[str, float]:
    """The ratios the README quotes."""
    a, h1, ag, loop, peft = (rows[n] for n in VARIANTS)
    out = {
        "step_time ilora / peft_lora": a["median_step_s"] / peft["median_step_s"],
        "step_time ilora_h1 / peft_lora": h1["median_step_s"] / peft["median_step_s"],
        "step_time ilora_autograd / peft_lora": ag["median_step_s"] / peft["median_step_s"],
        "step_time head_loop / ilora": loop["median_step_s"] / a["median_step_s"],
        "saved ilora / peft_lora": a["saved_mb"] / peft["saved_mb"],
        "saved ilora_autograd / peft_lora": ag["saved_mb"] / peft["saved_mb"],
        "step_memory ilora / peft_lora": a["step_memory_mb"] / peft["step_memory_mb"],
        "step_memory ilora_h1 / peft_lora": h1["step_memory_mb"] / peft["step_memory_mb"],
        "trainable ilora / peft_lora": a["trainable"] / peft["trainable"],
    }
    if a["gpu_peak_mb"] and peft["gpu_peak_mb"]:
        out["gpu_peak ilora / peft_lora"] = a["gpu_peak_mb"] / peft["gpu_peak_mb"]
    return out


def main() -> None:
    """Parse arguments, measure, print the table and the ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name, default in (("rank", 16), ("heads", 3), ("batch", 4), ("seq", 256), ("steps", 12), ("threads", 2),
                          ("hidden", 512), ("layers", 6)):  # fmt: skip
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()
    rows = measure(args)
    print(f"batch {args.batch} x {args.seq} tokens, rank {args.rank}, I-LoRA heads {args.heads}, {args.threads} "
          f"threads, {args.dtype} {args.device}, medians of {args.steps} alternated steps")  # fmt: skip
    print(
        f"{'variant':<15} {'trainable':>10} {'median s':>9} {'tok/s':>8} {'saved MB':>9} {'step mem MB':>12} {'GPU peak MB':>12}"
    )
    for r in rows.values():
        gpu = f"{r['gpu_peak_mb']:>12.0f}" if r["gpu_peak_mb"] else f"{'-':>12}"
        print(f"{r['variant']:<15} {r['trainable']:>10,} {r['median_step_s']:>9.3f} {r['tokens_per_s']:>8.0f} "
              f"{r['saved_mb']:>9.1f} {r['step_memory_mb']:>12.1f} {gpu}")  # fmt: skip
    ratios = ratios_of(rows)
    for name, value in ratios.items():
        print(f"{name:<40} {value:6.3f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows, "ratios": ratios}
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
