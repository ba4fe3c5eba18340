"""`avuie build --executor ray --address HOST:PORT` joins a Ray cluster started separately (`ray start --head`, as
an operator does), from a separate `avuie` process: the output equals the local build byte for byte, and an
address where no cluster listens is a clear error that writes nothing."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from avuie.samples import ensure_sample
from tests.cloudkit import build_state, files_of

AVUIE = [sys.executable, "-m", "avuie"]
BUILD = ["build", "--source", "ave", "--shard-size", "2", "--progress", "none"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _env() -> dict[str, str]:
    return os.environ | {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def head():
    """A Ray head node with 2 CPUs in its own process group (stopped by signalling that group only, not with
    `ray stop`, which would stop every Ray on the machine); yields its address."""
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent))
    assert ray_cli, "the ray extra installs the `ray` command beside python"
    port, scratch = _free_port(), tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths
    process = subprocess.Popen(
        [ray_cli, "start", "--head", "--block", "--num-cpus", "2", "--port", str(port)]
        + ["--node-ip-address", "127.0.0.1", "--include-dashboard", "false", "--temp-dir", scratch],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, "ray start --head exited"
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("the Ray head did not listen within 120 s")
        yield address
    finally:
        os.killpg(
            process.pid, signal.SIGKILL
        )  # a throwaway head: `ray start --block` takes 30 s over SIGTERM
        process.wait()
        subprocess.run(["pkill", "-KILL", "-f", scratch], check=False)  # this head's own raylets and workers
        shutil.rmtree(scratch, ignore_errors=True)


def test_a_build_joins_a_separately_started_cluster_and_equals_the_local_build(head, tmp_path):
    raw = str(ensure_sample("ave"))
    local = subprocess.run(
        [*AVUIE, *BUILD, "--raw", raw, "--out", str(tmp_path / "local")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert local.returncode == 0, local.stderr
    joined = subprocess.run(
        [
            *AVUIE,
            *BUILD,
            "--raw",
            raw,
            "--out",
            str(tmp_path / "ray"),
            "--executor",
            "ray",
            "--address",
            head,
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert joined.returncode == 0, joined.stderr
    want = build_state(files_of(tmp_path / "local"))
    assert len(want["tars"]) >= 3 and build_state(files_of(tmp_path / "ray")) == want


def test_an_address_without_a_cluster_is_a_clear_error(tmp_path):
    nobody = f"127.0.0.1:{_free_port()}"
    result = subprocess.run(
        [*AVUIE, *BUILD, "--out", str(tmp_path / "out"), "--executor", "ray", "--address", nobody],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,  # not ray.init's minutes of retries
    )
    assert result.returncode != 0
    assert "cannot start or reach the Ray cluster" in result.stderr + result.stdout
    assert not list((tmp_path / "out").rglob("*.tar"))
