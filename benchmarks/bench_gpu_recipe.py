"""The recipe's own `train()` on a random Qwen2.5-Omni thinker: tokens/s, MFU, data wait, GPU busy, memory, profile.

    python benchmarks/bench_gpu_recipe.py                                  # 7B release shapes, one GPU, bf16
    python benchmarks/bench_gpu_recipe.py --preset small --device cpu      # reduced width (vocab kept), CPU, fp32

Builds the thinker with the Qwen2.5-Omni-7B release's shapes (LLM 3584 wide, 28 layers, 28/4 GQA heads, MLP
18944, vocab 152064; vision 32 blocks 1280 wide, MLP 3420, 16 heads, window 112, full attention in blocks
7/15/23/31; audio 32 layers, d_model 1280, 20 heads, FFN 5120, 128 mel bins, n_window 100) directly on the
device, random weights, and runs the recipe (`trainer.recipe.Recipe`, I-LoRA r=128 H=3 with the Crab+
placement) for --steps steps per run on --data (default: the demo's build, `avuie-out`). Runs (7B preset):
batch 2 and batch 8, packing off and on; small preset: also the unchunked loss and activation checkpointing,
to measure those costs. One step per run is profiled with torch.profiler.

Per run it prints and writes (JSON under benchmarks/results/): tokens/s (median of the logged steps after the
first), MFU = 6 * params * tokens/s / peak and 4 * params * tokens/s / peak (a frozen backbone does no weight-
gradient matmuls; peak 790e12 bf16 FLOP/s on an H200, --peak to change), the data-wait share of the step, the
device-busy share of the profiled step (kernel time / wall time, CUDA only), peak memory
(torch.cuda.max_memory_allocated; CPU: none), bytes saved for backward in one step, device syncs in one step
(aten::item / _local_scalar_dense calls), attention calls in one step, and the profile's top 15 operators.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {
    "7b": {
        "text": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                     num_key_value_heads=4, vocab_size=152064),
        "vision": dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                       window_size=112, fullatt_block_indexes=[7, 15, 23, 31]),
        "audio": dict(encoder_layers=32, d_model=1280, encoder_attention_heads=20, encoder_ffn_dim=5120,
                      output_dim=3584, n_window=100),
        "config": "crab_plus_omni7b", "frame_size": 224,
        "runs": [dict(batch=2, pack=False), dict(batch=8, pack=False), dict(batch=8, pack=True)],
    },
    "small": {
        "text": dict(hidden_size=256, intermediate_size=704, num_hidden_layers=4, num_attention_heads=8,
                     num_key_value_heads=2, vocab_size=152064),
        "vision": dict(depth=4, hidden_size=128, intermediate_size=342, num_heads=4, out_hidden_size=256,
                       window_size=112, fullatt_block_indexes=[1, 3]),
        "audio": dict(encoder_layers=4, d_model=128, encoder_attention_heads=4, encoder_ffn_dim=512,
                      output_dim=256, n_window=100),
        "config": "tiny", "frame_size": 56,
        "runs": [dict(batch=2, pack=False), dict(batch=2, pack=True), dict(batch=2, pack=False, loss_chunk=0),
                 dict(batch=2, pack=False, checkpointing=True), dict(batch=2, pack=False, checkpointing="llm")],
    },
}  # fmt: skip
SYNC_OPS = ("aten::item", "aten::_local_scalar_dense")
# where an .item() happens: the recipe labels the model's forward and its deliberate work on CPU tensors
LABELS = {"avuie::model_forward": "model", "avuie::host_side": "host", "Optimizer.step": "optimizer"}
ATTENTION_OPS = (
    "aten::scaled_dot_product_attention",
    "aten::_flash_attention_forward",
    "aten::_efficient_attention_forward",
)


def build_bundle(preset: dict, device: str, dtype, folder: Path, attn: str = "auto"):
    """A random thinker of the preset's shapes built on `device`, wrapped as the recipe's Bundle."""
    import torch
    from avuie.trainer.bundle import OMNI_MEDIA_TOKENS, Bundle, build_offline_tokenizer, token_table
    from avuie.trainer.omni import OmniPrep, attention_backend, thinker_config
    from avuie.trainer.placement import CRAB_PLUS
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    tok = build_offline_tokenizer(folder)
    config = thinker_config(tok, preset["text"], preset["vision"], preset["audio"])
    config._attn_implementation = attention_backend(attn)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5OmniThinkerForConditionalGeneration(config).to(dtype)
    ids = token_table(tok, OMNI_MEDIA_TOKENS)
    prep = OmniPrep(ids, frame_size=preset["frame_size"])
    return Bundle("omni", model, tok, prep, ids, "You are a helpful assistant.", list(CRAB_PLUS))


def strip_adapters(bundle, head) -> None:
    """Undo what a run did to the shared model: I-LoRA layers back to their base, the output head back."""
    from avuie.trainer.ilora import iter_ilora_layers

    for name, layer in list(iter_ilora_layers(bundle.model)):
        parent, _, child = name.rpartition(".")
        setattr(bundle.model.get_submodule(parent), child, layer.base)
    bundle.model.lm_head = head


def make_recipe_class():
    """The recipe with a prebuilt model and one profiled step (its other stages are the recipe's own)."""
    import torch
    from avuie.trainer.recipe import Recipe

    class BenchRecipe(Recipe):  # noqa: D101 - see make_recipe_class
        def __init__(self, cfg, data, out, bundle, profile_at: int):
            super().__init__(cfg, data, out)
            self.prebuilt, self.profile_at, self.prof, self.saved = bundle, profile_at, None, 0

        def load_bundle(self):
            return self.prebuilt, {"paradigm": "omni", "path": "(random, built in memory by the benchmark)"}

        def train_step(self, autocast, window):
            if self.step != self.profile_at:
                return super().train_step(autocast, window)
            seen: set[int] = set()
            frozen = {p.untyped_storage().data_ptr() for p in self.bundle.model.parameters()}

            def pack(t):
                ptr = t.untyped_storage().data_ptr()
                if ptr not in frozen and ptr not in seen:
                    seen.add(ptr)
                    self.saved += t.untyped_storage().nbytes()
                return t

            acts = [torch.profiler.ProfilerActivity.CPU]
            if self.d.device.type == "cuda":
                acts.append(torch.profiler.ProfilerActivity.CUDA)
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.profiler.profile(activities=acts) as prof:
                with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                    super().train_step(autocast, window)
                if self.d.device.type == "cuda":
                    torch.cuda.synchronize()
            self.prof, self.prof_wall = prof, time.perf_counter() - t0

    return BenchRecipe


def profile_summary(prof, wall: float, cuda: bool) -> dict:
    """Top-15 operators by self time, device-busy share, sync and attention calls of the profiled step."""
    events = prof.key_averages()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    top = sorted(events, key=lambda e: getattr(e, key), reverse=True)[:15]
    busy = sum(e.self_device_time_total for e in events) / 1e6 / wall if cuda else None
    syncs = {"model": 0, "optimizer": 0, "host": 0, "recipe": 0}
    for e in prof.events():
        if e.name not in SYNC_OPS or (e.cpu_parent and e.cpu_parent.name in SYNC_OPS):
            continue
        parent, where = e.cpu_parent, "recipe"
        while parent is not None and where == "recipe":
            name = parent.name.split("#")[0]
            where = "model" if name.startswith("autograd::engine") else LABELS.get(name, "recipe")
            parent = parent.cpu_parent
        syncs[where] += 1
    return {
        "top_ops": [{"name": e.key, "self_ms": getattr(e, key) / 1e3, "calls": e.count} for e in top],
        "device_busy_share": busy,
        "syncs": syncs,
        "attention_calls": sum(e.count for e in events if e.key in ATTENTION_OPS),
        "profiled_step_s": wall,
    }


def one_run(args, preset, bundle, run: dict, workdir: Path, n_params: int) -> dict:
    """Train --steps steps with one run's settings through the recipe; return its figures."""
    import torch
    from avuie.trainer.config import load_config

    sets = [f"train.max_steps={args.steps}", "train.log_every=1", "train.save_every=0", "train.warmup_ratio=0",
            f"data.batch_size={run['batch']}", f"data.pack={str(run['pack']).lower()}", "train.grad_accum=1",
            f"data.num_workers={args.workers}", f"train.gradient_checkpointing={str(run.get('checkpointing', args.preset == '7b')).lower()}",
            f"train.loss_chunk={run.get('loss_chunk', 1024)}", "data.max_length=4096"]  # fmt: skip
    cfg = load_config(preset["config"], sets + args.set)
    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    recipe = make_recipe_class()(
        cfg, args.data, workdir / f"run{len(list(workdir.iterdir()))}", bundle, args.steps - 2
    )
    lines = [line for line in recipe.run_all() if "loss" in line]
    strip_adapters(bundle, recipe.head)
    rates = [line["tokens_per_s"] for line in lines[1:]] or [lines[0]["tokens_per_s"]]
    tps = statistics.median(rates)
    out = {"run": run, "tokens_per_s": tps, "data_wait_share": statistics.median(x["data_wait_share"] for x in lines),
           "loss_first_last": [lines[0]["loss"], lines[-1]["loss"]],
           "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
           "saved_for_backward_mib": recipe.saved / 2**20, **profile_summary(recipe.prof, recipe.prof_wall, cuda)}  # fmt: skip
    if args.peak:
        out["mfu_6n"], out["mfu_4n"] = 6 * n_params * tps / args.peak, 4 * n_params * tps / args.peak
    return out


def default_data() -> str:
    """The demo's build (avuie-out), built from the bundled samples when it is not there yet."""
    out = ROOT / "avuie-out"
    if not out.exists():
        from avuie.demo import build_all

        build_all(out)
    return str(out)


def print_run(r: dict) -> None:
    """One run's figures and its top operators."""
    mfu = f"MFU(6N) {r['mfu_6n']:.1%} MFU(4N) {r['mfu_4n']:.1%} " if "mfu_6n" in r else ""
    busy = f"device busy {r['device_busy_share']:.1%} " if r["device_busy_share"] is not None else ""
    mem = f"peak {r['peak_memory_gib']:.1f} GiB " if r["peak_memory_gib"] is not None else ""
    print(f"\n{r['run']}: {r['tokens_per_s']:.0f} tokens/s {mfu}data wait {r['data_wait_share']:.1%} {busy}{mem}"
          f"saved {r['saved_for_backward_mib']:.0f} MiB; in one step ({r['profiled_step_s']:.2f} s): "
          f".item() calls: {r['syncs']['model']} in the model (forward, backward), {r['syncs']['optimizer']} in AdamW (its "
          f"CPU step counts), {r['syncs']['host']} on CPU batches, {r['syncs']['recipe']} elsewhere in the step; "
          f"{r['attention_calls']} attention calls")  # fmt: skip
    for op in r["top_ops"]:
        print(f"    {op['self_ms']:10.1f} ms {op['calls']:6d}x  {op['name']}")


def main(argv: list[str] | None = None) -> dict:
    """Parse arguments, run every configuration of the preset, print, write the JSON; returns the results."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="7b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--data", help="build folder or shard server URL (default: the demo build, avuie-out)"
    )
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument(
        "--attn", default="auto", help="attention: auto (flash_attention_2 if importable), sdpa, eager"
    )
    parser.add_argument("--runs", type=int, default=None, help="only the preset's first N runs")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--peak", type=float, default=None, help="peak FLOP/s for MFU (default 790e12 on CUDA)"
    )
    parser.add_argument("--set", action="append", default=[], help="extra config overrides, e.g. ilora.r=64")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    import torch

    args.data = args.data or default_data()
    args.peak = args.peak or (790e12 if args.device == "cuda" else None)
    preset = PRESETS[args.preset]
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bundle = build_bundle(preset, args.device, dtype, workdir / "tokenizer", args.attn)
        n_params = sum(p.numel() for p in bundle.model.parameters())
        (workdir / "runs").mkdir()
        runs = preset["runs"][: args.runs]
        results = [one_run(args, preset, bundle, run, workdir / "runs", n_params) for run in runs]
    device = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    report = {
        "preset": args.preset,
        "device": device,
        "params": n_params,
        "steps": args.steps,
        "runs": results,
    }
    print(f"{args.preset} thinker, {n_params / 1e9:.2f} B parameters, {device}, {args.steps} steps per run")
    for r in results:
        print_run(r)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"gpu_recipe_{args.preset}_{args.device}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nwrote {path}")
    return report


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
