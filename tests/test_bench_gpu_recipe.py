"""benchmarks/bench_gpu_recipe.py runs on CPU with its small preset: the recipe's own train() on a random thinker
(152k vocabulary), a profiled step, the figures and the JSON the GPU run writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from shardkit import write_build  # noqa: E402


def test_small_preset_on_cpu(tmp_path, capsys):
    import bench_gpu_recipe

    data = tmp_path / "data"
    write_build(data, {"ave": {"train": [4]}, "s4": {"train": [2]}}, frames=3, size=32, audio_seconds=1.0)
    argv = ["--preset", "small", "--device", "cpu", "--data", str(data), "--steps", "2", "--runs", "2",
            "--workers", "0", "--out", str(tmp_path / "results")]  # fmt: skip
    report = bench_gpu_recipe.main(argv)
    saved = json.loads((tmp_path / "results" / "gpu_recipe_small_cpu.json").read_text())
    assert saved == json.loads(json.dumps(report)) and report["params"] > 80e6  # the 152k vocabulary is kept
    plain, packed = report["runs"]
    assert packed["run"]["pack"] and not plain["run"]["pack"]
    for run in (plain, packed):
        assert (
            run["tokens_per_s"] > 0 and 0 <= run["data_wait_share"] < 1 and run["saved_for_backward_mib"] > 0
        )
        assert len(run["top_ops"]) == 15 and run["top_ops"][0]["self_ms"] >= run["top_ops"][-1]["self_ms"]
        assert run["syncs"]["recipe"] == 0  # the recipe's step never waits on a device value
        assert run["attention_calls"] > 0
    out = capsys.readouterr().out
    assert "tokens/s" in out and "aten::" in out and "wrote" in out
