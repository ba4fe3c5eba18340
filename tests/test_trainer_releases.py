"""The transformers range of the `train` extra, tested at both ends: the venv holds the newest release, and
scripts/setup.sh puts the oldest (scripts/transformers-oldest.txt) in .venv/transformers-oldest, an overlay
used through PYTHONPATH beside the same torch.

Under the oldest release: the tiny config trains, the I-LoRA and packing tests pass; adapters trained under one
release load under the other and give the same logits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).parent))
from shardkit import write_build  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OVERLAY = ROOT / ".venv" / "transformers-oldest"
OLDEST = (ROOT / "scripts" / "transformers-oldest.txt").read_text().split()[0].split("==")[1]

pytestmark = pytest.mark.skipif(
    not (OVERLAY / "transformers").exists() and not os.environ.get("CI"),
    reason="no .venv/transformers-oldest overlay (run scripts/setup.sh)",
)  # in CI a missing overlay fails below instead of skipping


def old(*args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    """Run python with the oldest transformers in front of the venv's packages."""
    assert (OVERLAY / "transformers").exists(), "scripts/setup.sh did not install the oldest transformers"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(OVERLAY), str(ROOT)])}
    done = subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("releases")
    write_build(root, {"ave": {"train": [3]}, "s4": {"train": [2]}}, frames=3, size=32, audio_seconds=1.0)
    return root


def test_the_overlay_is_the_oldest_release():
    got = old("-c", "import transformers; print(transformers.__version__)").stdout.strip()
    assert got == OLDEST and transformers.__version__ != OLDEST


def test_ilora_and_packing_tests_pass_under_the_oldest_release():
    old(
        "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_ilora.py", "tests/test_trainer_packing.py"
    )


def probe(run: Path, data: Path, out: Path, under_oldest: bool) -> dict:
    args = ["tests/release_probe.py", str(run), str(data), str(out)]
    if under_oldest:
        old(*args)
    else:
        subprocess.run([sys.executable, *args], cwd=ROOT, check=True, capture_output=True)
    return torch.load(out)


@pytest.mark.parametrize("trained_under_oldest", [True, False])
def test_tiny_trains_and_its_adapter_loads_under_the_other_release(data, tmp_path, trained_under_oldest):
    run = tmp_path / "run"
    cmd = [
        "-m",
        "avuie",
        "train",
        "--config",
        "tiny",
        "--data",
        str(data),
        "--out",
        str(run),
        "--max-steps",
        "3",
    ]
    if trained_under_oldest:
        old(*cmd)
    else:
        subprocess.run([sys.executable, *cmd], cwd=ROOT, check=True, capture_output=True)
    assert (run / "checkpoints" / "step_000003" / "adapter_model.safetensors").exists()
    a = probe(run, data, tmp_path / "a.pt", under_oldest=True)
    b = probe(run, data, tmp_path / "b.pt", under_oldest=False)
    assert a["version"] == OLDEST and b["version"] == transformers.__version__
    torch.testing.assert_close(a["logits"], b["logits"], rtol=1e-4, atol=1e-4)
    assert a["logits"].abs().max() > 1  # real logits, not zeros
