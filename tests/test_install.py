"""Install like a library: the built wheel installs `avuie[train]` into an environment that already has a torch
and keeps that torch (the extras give torch as a range, never an exact pin).

The "existing torch" is pip's record of an installed torch 2.14.1+cu128 (a dist-info, the only thing pip's
resolver reads to decide whether to keep or replace a package) placed in a fresh venv; the venv sees this
repo's .venv packages through a .pth file, so nothing is downloaded. The same resolution with the old exact pin
(`torch==2.13.0`) wants to replace that torch: the check can fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OTHER_TORCH = "2.14.1+cu128"


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """Run a command outside the repository (so `python -c` does not import the source tree)."""
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=300, cwd=ROOT.parent)
    if ok:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    src = out.parent / "source"  # a copy: building writes build/ and *.egg-info/ beside the sources
    top = {
        ".venv",
        ".git",
        "build",
        "dist",
        "runs",
        "out",
        "avuie-out",
    }  # at the root only: avuie/build is code

    def skip(folder: str, names: list[str]) -> set[str]:
        here = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        return here | (top & set(names) if Path(folder) == ROOT else set())

    shutil.copytree(ROOT, src, ignore=skip)
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-build-isolation",
        "--no-deps",
        str(src),
        "-w",
        str(out),
    )
    return next(out.glob("avuie-*.whl"))


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Path:
    """A fresh venv that 'already holds' torch OTHER_TORCH and sees the repo venv's other packages."""
    venv = tmp_path_factory.mktemp("userenv") / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    python = venv / "bin" / "python"
    site = Path(
        run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    )
    (site / "zz_repo_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    info = site / f"torch-{OTHER_TORCH}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: torch\nVersion: {OTHER_TORCH}\n")
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text("")
    return python


def torch_version(python: Path) -> str:
    listed = json.loads(run(str(python), "-m", "pip", "list", "--format", "json").stdout)
    return next(p["version"] for p in listed if p["name"] == "torch")


def resolve(python: Path, wheel: Path, *requirements: str) -> subprocess.CompletedProcess:
    report = wheel.parent / "report.json"
    done = run(str(python), "-m", "pip", "install", "--dry-run", "--report", str(report), "--no-index",
               "--find-links", str(wheel.parent), "--find-links", "/opt/wheels", *requirements, ok=False)  # fmt: skip
    done.installs = (
        [i["metadata"]["name"] for i in json.loads(report.read_text())["install"]]
        if done.returncode == 0
        else None
    )
    return done


def test_wheel_declares_torch_as_a_range(wheel):
    import zipfile

    meta = zipfile.ZipFile(wheel).read("avuie-0.1.0.dist-info/METADATA").decode()
    torch_reqs = [line for line in meta.splitlines() if line.startswith("Requires-Dist: torch")]
    specs = [line.split(";")[0] for line in torch_reqs]
    assert specs and all("==" not in s and "<3" in s and ">=2.13" in s for s in specs), torch_reqs


def test_install_into_an_env_with_another_torch_keeps_it(wheel, env):
    assert torch_version(env) == OTHER_TORCH
    dry = resolve(env, wheel, f"avuie[train] @ {wheel.as_uri()}")
    assert dry.returncode == 0 and dry.installs == ["avuie"], dry.stderr[-2000:]
    pinned = resolve(env, wheel, f"avuie[train] @ {wheel.as_uri()}", "torch==2.13.0")  # the old exact pin
    assert pinned.installs is None or "torch" in pinned.installs  # would replace (or fail to keep) the torch
    run(str(env), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheel.parent),
        f"avuie[train] @ {wheel.as_uri()}")  # fmt: skip
    assert torch_version(env) == OTHER_TORCH  # kept
    where = run(str(env), "-c", "import avuie.trainer.ilora as m; print(m.__file__)").stdout
    assert str(Path(env).parent.parent) in where  # the installed wheel, not the repo's editable copy
