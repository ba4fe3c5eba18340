"""Several processes on CPU: `torchrun --nproc_per_node 2` (gloo) runs 3 DDP steps, and 3 FSDP2 steps, of the
tiny recipe; both equal one process with the two ranks' batch (token-weighted loss, averaged gradients)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).parent))
from avuie.trainer.config import load_config  # noqa: E402
from avuie.trainer.recipe import read_log, train  # noqa: E402
from shardkit import write_build  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist_data")
    write_build(root, {"ave": {"train": [4, 4]}, "s4": {"train": [2]}}, frames=2, size=32, audio_seconds=1.0)
    return root


def torchrun(data: Path, out: Path, *sets: str) -> subprocess.CompletedProcess:
    torchrun_bin = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    cmd = [
        torchrun_bin,
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "avuie",
        "train",
        "--config",
        "tiny",
        "--data",
        str(data),
        "--out",
        str(out),
        "--max-steps",
        "3",
    ]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)


@pytest.fixture(scope="module")
def single(data, tmp_path_factory):
    """One process with batch 8 = the two ranks' batches of 4 together."""
    run = tmp_path_factory.mktemp("single")
    return train(
        load_config("tiny", ["train.max_steps=3", "data.batch_size=8", "data.lanes=0"]), str(data), run
    )


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_torchrun_two_ranks(data, single, tmp_path, mode):
    out = tmp_path / mode
    # lanes=0: the loader's sample-level order, in which 2 ranks with batch 4 read what one process with batch 8
    # reads (the default, shard-local order deals samples to ranks by runs instead)
    proc = torchrun(data, out, f"train.distributed={mode}", "data.lanes=0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    log = read_log(out)
    assert [x["step"] for x in log] == [1, 2, 3]
    assert [x["samples"] for x in log] == [x["samples"] for x in single] == [8, 2, 8]
    for a, b in zip(log, single, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    ckpt = out / "checkpoints" / "step_000003"
    assert {p.name for p in ckpt.iterdir()} >= {
        "adapter_model.safetensors",
        "rank0.pt",
        "rank1.pt",
        "trainer_state.pt",
    }
