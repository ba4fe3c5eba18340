"""I-LoRA on one GPU: bf16 step time, tokens/s and peak memory of a random-init 7B-size LLM with I-LoRA r=128, H=3.

    python benchmarks/bench_gpu_ilora.py [--batch 4] [--seq 1024] [--steps 10] [--variants ilora,ilora_loop,peft_lora]
    python benchmarks/bench_gpu_ilora.py --preset tiny --device cpu      # a quick check of the script on a CPU

The model is the Qwen2.5-7B LLM shape (the Qwen2.5-Omni-7B thinker's language model: hidden 3584, 28 layers,
GQA 28/4 heads, MLP 18944, vocab 152064) built directly on the GPU in bf16 with random weights; I-LoRA
(fp32 weights) on q,k,v,o,gate,up,down as in Crab+; the backbone frozen; AdamW (fused) on the adapters; bf16
autocast; gradient checkpointing (turn off with --no-checkpointing). A step = forward + backward + optimizer step
on batch x seq random tokens. Variants: `ilora` (all heads in one matmul), `ilora_loop` (a Python loop over
heads), `peft_lora` (peft LoRA at the same rank). Reports the median step time after --warmup steps, tokens/s
and torch.cuda.max_memory_allocated over the timed steps; prints a table and JSON and writes the JSON to
benchmarks/results/gpu_ilora_<device>.json (or --out).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PRESETS = {
    "7b": dict(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=32768,
        rope_theta=1e6,
    ),
    "tiny": dict(
        vocab_size=1024,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
    ),
}


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


def build(variant: str, args, device: torch.device):
    """The random-init LLM on `device` with the variant's adapters; returns (model, trainable params, counts)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    preset = dict(PRESETS[args.preset])
    rope_theta = preset.pop("rope_theta", 1e4)
    cfg = Qwen2Config(
        **preset,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        use_cache=False,
        tie_word_embeddings=False,
    )
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM._from_config(cfg, dtype=dtype, attn_implementation="sdpa")
    base = sum(p.numel() for p in model.parameters())
    if variant == "peft_lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.1, target_modules=TARGETS)
        model = get_peft_model(model, lora)  # peft keeps the adapter weights in fp32 (autocast_adapter_dtype)
    else:
        ilora = load_ilora()
        cfg_i = ilora.ILoRAConfig(
            r=args.rank,
            alpha=2 * args.rank,
            num_heads=args.heads,
            dropout=0.1,
            target_modules=[rf".*\.{t}" for t in TARGETS],
        )
        ilora.inject_ilora(model, cfg_i)
        for _, layer in ilora.iter_ilora_layers(model):
            torch.nn.init.normal_(layer.lora_B, std=1e-3)
            if variant == "ilora_loop":
                layer.forward = layer.forward_head_loop
    if args.checkpointing:
        kwargs = {"use_reentrant": False}  # transformers v5 renamed the method; older releases have the first
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    return model, params, base


def run_variant(variant: str, args, device: torch.device) -> dict:
    """Train warmup + steps steps of one variant; return timings and memory."""
    model, params, base = build(variant, args, device)
    opt = torch.optim.AdamW(params, lr=1e-4, fused=device.type == "cuda")
    ids = torch.randint(0, model.config.vocab_size, (args.batch, args.seq), device=device)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step() -> float:
        """One training step; returns the loss."""
        with autocast:
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    for _ in range(args.warmup):
        step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, loss = [], float("nan")
    for _ in range(args.steps):
        t0 = time.perf_counter()
        loss = step()  # float() synchronises
        sync()
        times.append(time.perf_counter() - t0)
    row = {
        "variant": variant,
        "base_params": base,
        "trainable_params": sum(p.numel() for p in params),
        "step_s_median": statistics.median(times),
        "step_s_min": min(times),
        "tokens_per_s": args.batch * args.seq / statistics.median(times),
        "last_loss": loss,
    }
    if device.type == "cuda":
        row["peak_mem_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        row["peak_reserved_gib"] = torch.cuda.max_memory_reserved(device) / 2**30
    return row  # the model and optimizer are freed with this frame; main() then empties the CUDA cache


def main() -> None:
    """Parse arguments, run the variants one after the other, print and save the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="7b")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rank", type=int, default=128)
    parser.add_argument("--heads", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--variants", default="ilora,ilora_loop,peft_lora")
    parser.add_argument("--no-checkpointing", dest="checkpointing", action="store_false")
    parser.add_argument(
        "--out", type=Path, help="JSON file (default benchmarks/results/gpu_ilora_<device>.json)"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    rows = []
    for variant in args.variants.split(","):
        try:
            rows.append(run_variant(variant.strip(), args, device))
        except torch.cuda.OutOfMemoryError as error:  # report and go on with the next variant
            rows.append({"variant": variant, "error": f"out of memory: {error}"[:300]})
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        print(json.dumps(rows[-1]), flush=True)
    print(
        f"\n{name}: preset {args.preset}, batch {args.batch} x seq {args.seq}, r={args.rank}, H={args.heads}, "
        f"checkpointing={args.checkpointing}, torch {torch.__version__}"
    )
    print(f"{'variant':<11} {'trainable':>13} {'step s':>8} {'tokens/s':>10} {'peak GiB':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['variant']:<11} {r['error']}")
            continue
        print(
            f"{r['variant']:<11} {r['trainable_params']:>13,} {r['step_s_median']:>8.3f} {r['tokens_per_s']:>10.0f} "
            f"{r.get('peak_mem_gib', float('nan')):>9.2f}"
        )
    ok = {r["variant"]: r for r in rows if "error" not in r}
    ratios = {}
    if "ilora" in ok and "peft_lora" in ok:
        ratios["step_time ilora / peft_lora"] = (
            ok["ilora"]["step_s_median"] / ok["peft_lora"]["step_s_median"]
        )
        if "peak_mem_gib" in ok["ilora"]:
            ratios["peak_mem ilora / peft_lora"] = (
                ok["ilora"]["peak_mem_gib"] / ok["peft_lora"]["peak_mem_gib"]
            )
    if "ilora" in ok and "ilora_loop" in ok:
        ratios["step_time head_loop / batched"] = (
            ok["ilora_loop"]["step_s_median"] / ok["ilora"]["step_s_median"]
        )
    for key, value in ratios.items():
        print(f"{key:<32} {value:6.2f}x")
    result = {
        "device": name,
        "torch": torch.__version__,
        "args": {k: str(v) for k, v in vars(args).items()},
        "rows": rows,
        "ratios": ratios,
    }
    out = args.out or ROOT / "benchmarks" / "results" / f"gpu_ilora_{device.type}_{args.preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
