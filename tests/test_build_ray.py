"""`avuie build --executor ray` on a local Ray cluster (2 CPUs, started here, shut down after): the same bytes as
the local executor (tar sha256s, markers, manifest and rejects rows), sources of a build file built concurrently,
a worker killed mid-slice (Ray runs the slice again; the output does not change), and remote media cut on the
workers."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
from avuie.builders.ave import AveBuilder
from typer.testing import CliRunner

from avuie.build.config import BuildConfig
from avuie.build.pipeline import build
from avuie.cli import app
from avuie.samples import ensure_sample
from tests.cloudkit import BUCKET, build_state, files_of, moto_s3, s3, s3_env

runner = CliRunner()
SOURCES = ("ave", "s4", "ref_avs")  # events, masks, and a source with a reject


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance with 2 CPUs (no dashboard), shut down after the module."""
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # no token file in the user's home for a throwaway cluster
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(
        sys.modules[__name__]
    )  # the test's builder travels to the workers
    yield ray
    ray.shutdown()
    if saved is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = saved


def _build_file(path: Path, out: Path, executor: str) -> Path:
    sources = "".join(f"  {s}: {{}}\n" for s in SOURCES)
    path.write_text(
        f"out: {out}\nexecutor: {executor}\nworkers: 2\ndefaults:\n  shard_size: 2\nsources:\n{sources}"
    )
    return path


def test_ray_build_file_equals_the_local_build(cluster, tmp_path):
    local = runner.invoke(
        app, ["build", "--config", str(_build_file(tmp_path / "l.yaml", tmp_path / "l", "local"))]
    )
    assert local.exit_code == 0, local.output
    result = runner.invoke(
        app, ["build", "--config", str(_build_file(tmp_path / "r.yaml", tmp_path / "r", "ray"))]
    )
    assert result.exit_code == 0, result.output
    want, got = build_state(files_of(tmp_path / "l")), build_state(files_of(tmp_path / "r"))
    assert (
        len(want["tars"]) >= 10
        and want["rejects"]
        and {r["source"] for r in want["manifest"]} == set(SOURCES)
    )
    assert got == want
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    done = {e["source"]: e for e in events if e["event"] == "done"}
    assert set(done) == set(SOURCES) and all(e["in"] == e["written"] + e["rejected"] for e in done.values())
    info = json.loads((tmp_path / "r" / "build.json").read_text())["sources"]
    assert {s: info[s]["config"]["executor"] for s in SOURCES} == dict.fromkeys(SOURCES, "ray")
    again = runner.invoke(app, ["build", "--config", str(tmp_path / "r.yaml"), "--progress", "json"])
    assert again.exit_code == 0 and "skipped" in again.output
    assert build_state(files_of(tmp_path / "r")) == want


class StallOnce(AveBuilder):
    """The AVE builder, except that the first target it makes stalls (after writing its process id) until the
    test kills that Ray worker."""

    def __init__(self, flags: str, **params) -> None:
        super().__init__(**params)
        self.flags = flags

    def make_target(self, record, cut):
        try:
            os.close(os.open(Path(self.flags) / "claimed", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return super().make_target(record, cut)
        (Path(self.flags) / "pid.tmp").write_text(str(os.getpid()))
        os.replace(Path(self.flags) / "pid.tmp", Path(self.flags) / "pid")
        time.sleep(120)  # killed long before
        raise AssertionError("the stalled worker was not killed")


def _kill_when_stalled(flags: Path, killed: list[int]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (flags / "pid").exists():
        time.sleep(0.05)
    if (flags / "pid").exists():
        pid = int((flags / "pid").read_text())
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)


def test_a_worker_killed_mid_slice_is_retried_and_the_output_is_unchanged(cluster, tmp_path):
    raw = ensure_sample("ave")
    want = build(BuildConfig(source="ave", raw=raw, out=tmp_path / "local", shard_size=2))
    flags = tmp_path / "flags"
    flags.mkdir()
    killed: list[int] = []
    killer = threading.Thread(target=_kill_when_stalled, args=(flags, killed))
    killer.start()
    config = BuildConfig(source="ave", raw=raw, out=tmp_path / "ray", shard_size=2, executor="ray")
    got = build(config, builder=StallOnce(str(flags)))
    killer.join()
    assert len(killed) == 1 and killed[0] != os.getpid()  # a worker process died mid-slice
    assert got["totals"] == want["totals"] == {"in": 6, "written": 6, "rejected": 0}
    assert build_state(files_of(tmp_path / "ray")) == build_state(files_of(tmp_path / "local"))


def test_ray_workers_fetch_remote_media(cluster, tmp_path, monkeypatch):
    with moto_s3() as endpoint:
        for key, value in s3_env(endpoint, tmp_path / "cache").items():
            monkeypatch.setenv(key, value)
        raw = ensure_sample("ave")
        s3(endpoint).put(f"{raw}/", f"{BUCKET}/raw/ave/", recursive=True)
        url = f"s3://{BUCKET}/raw/ave"
        args = ["build", "--source", "ave", "--shard-size", "2", "--progress", "none"]
        local = runner.invoke(app, [*args, "--raw", url, "--out", str(tmp_path / "local")])
        assert local.exit_code == 0, local.output
        remote = runner.invoke(
            app, [*args, "--raw", url, "--out", str(tmp_path / "ray"), "--executor", "ray"]
        )
        assert remote.exit_code == 0, remote.output
    want = build_state(files_of(tmp_path / "local"))
    assert build_state(files_of(tmp_path / "ray")) == want and len(want["manifest"]) == 6
