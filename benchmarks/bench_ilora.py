"""I-LoRA cost on CPU: I-LoRA (H=3) against peft LoRA at the same rank, and batched heads against a per-head loop.

    python benchmarks/bench_ilora.py [--rank 16] [--heads 3] [--batch 4] [--seq 256] [--steps 8] [--threads 2]

Model: a random Qwen2 causal LM of about 20M parameters (hidden 512, 6 layers), fp32; adapters on q,k,v,o,gate,
up,down; backbone frozen; AdamW. A training step is forward + backward + optimizer step. Each variant runs in
its own process (so that peak memory is its own): step time is the fastest of the timed steps after 2 warm-ups
(the least disturbed by other work on a shared machine; the median is printed too);
peak memory is the growth of the process's peak RSS over the training steps, and "saved" is the bytes autograd
keeps for backward in one step (exact, counted with saved-tensor hooks). Prints a table and the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("ilora", "ilora_loop", "peft_lora")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def load_ilora():
    """avuie.trainer.ilora, or the file itself when the package is not installed (it needs only torch)."""
    try:
        from avuie.trainer import ilora
    except ImportError:
        import importlib.util

        spec = importlib.util.spec_from_file_location("ilora", ROOT / "trainer" / "ilora.py")
        ilora = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ilora)
    return ilora


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_variant(variant: str, args) -> dict:
    """Build the model with one kind of adapter, train `steps` steps, return the measurements."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=4096,
        hidden_size=512,
        intermediate_size=1408,
        num_hidden_layers=6,
        num_attention_heads=8,
        num_key_value_heads=4,
        max_position_embeddings=args.seq,
    )
    model = Qwen2ForCausalLM(cfg)
    base_params = sum(p.numel() for p in model.parameters())
    if variant == "peft_lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model, LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.1, target_modules=TARGETS)
        )
    else:
        ilora = load_ilora()
        ilora.inject_ilora(
            model,
            ilora.ILoRAConfig(
                r=args.rank,
                alpha=2 * args.rank,
                num_heads=args.heads,
                dropout=0.1,
                target_modules=[rf".*\.{t}" for t in TARGETS],
            ),
        )
        for _, layer in ilora.iter_ilora_layers(model):
            torch.nn.init.normal_(layer.lora_B, std=0.01)
            if variant == "ilora_loop":
                layer.forward = layer.forward_head_loop
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq))
    saved = [0]

    def pack(t):
        """Count the bytes autograd saves for backward."""
        saved[0] += t.numel() * t.element_size()
        return t

    def step(count_saved: bool = False):
        """One training step (forward, backward, AdamW)."""
        if count_saved:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = model(input_ids=ids, labels=ids).loss
        else:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    step(count_saved=True)  # warm-ups (the second one measures what autograd saves)
    rss_before = peak_rss_bytes()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {
        "variant": variant,
        "base_params": base_params,
        "trainable": sum(p.numel() for p in params),
        "step_s": min(times),
        "median_step_s": statistics.median(times),
        "peak_rss_growth_mb": (peak_rss_bytes() - rss_before) / 2**20,
        "peak_rss_mb": peak_rss_bytes() / 2**20,
        "saved_mb": saved[0] / 2**20,
        "tokens_per_s": args.batch * args.seq / min(times),
    }


def main() -> None:
    """Run every variant in a subprocess and print the table and ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--variant", choices=VARIANTS, help=argparse.SUPPRESS
    )  # internal: one variant, JSON out
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args)))
        return
    rows = {}
    passthrough = [f"--{k}={getattr(args, k)}" for k in ("rank", "heads", "batch", "seq", "steps", "threads")]
    for variant in VARIANTS:
        out = subprocess.run(
            [sys.executable, __file__, "--variant", variant, *passthrough],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        rows[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"model: {rows['ilora']['base_params'] / 1e6:.1f}M params, batch {args.batch} x {args.seq} tokens, "
        f"rank {args.rank}, I-LoRA heads {args.heads}, {args.threads} threads, fp32 CPU"
    )
    print(
        f"{'variant':<12} {'trainable':>10} {'step s':>8} {'median s':>9} {'tok/s':>8} {'saved MB':>9} {'peak RSS MB':>12} {'RSS growth MB':>14}"
    )
    for r in rows.values():
        print(
            f"{r['variant']:<12} {r['trainable']:>10,} {r['step_s']:>8.3f} {r['median_step_s']:>9.3f} {r['tokens_per_s']:>8.0f} "
            f"{r['saved_mb']:>9.1f} {r['peak_rss_mb']:>12.0f} {r['peak_rss_growth_mb']:>14.1f}"
        )
    a, loop, peft = rows["ilora"], rows["ilora_loop"], rows["peft_lora"]
    ratios = {
        "step_time ilora / peft_lora": a["step_s"] / peft["step_s"],
        "saved_activations ilora / peft_lora": a["saved_mb"] / peft["saved_mb"],
        "peak_rss ilora / peft_lora": a["peak_rss_mb"] / peft["peak_rss_mb"],
        "trainable ilora / peft_lora": a["trainable"] / peft["trainable"],
        "step_time head_loop / batched": loop["step_s"] / a["step_s"],
        "saved_activations head_loop / batched": loop["saved_mb"] / a["saved_mb"],
    }
    for name, value in ratios.items():
        print(f"{name:<40} {value:6.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "rows": rows, "ratios": ratios}, indent=2
            )
        )


if __name__ == "__main__":
    main()
