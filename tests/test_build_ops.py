"""Issue 13 items 3-4: shards planned by written samples, and the operator's side of `avuie build` (media root,
scan, JSON progress, skipped shards, the resume command, reasoning counters across a resume, the YAML file)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.shards import layout
from typer.testing import CliRunner

from avuie.cli import app
from avuie.samples import ensure_sample
from tests.buildkit import build_state, read_back
from tests.reasoning_kit import FakeOpenAIServer

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def avuie(*args: str) -> tuple[int, str]:
    """Run the CLI in-process; (exit code, output with rich's box characters and line wrapping removed)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    """avuie in a subprocess (stdout a pipe, as in a log or CI)."""
    return subprocess.run(
        [sys.executable, "-m", "avuie", *args], cwd=ROOT, capture_output=True, text=True, **kw
    )


# ---- 3. shards planned by written samples ---------------------------------------------------------------------------
def test_shards_are_full_and_numbered_without_gaps(real_root, tmp_path):
    out = tmp_path / "refavs"
    code, output = avuie("build", "--source", "ref_avs", "--raw", str(real_root / "ref_avs"), "--out", str(out),
                         "--split", "test_u", "--shard-size", "4")  # fmt: skip
    assert code == 0, output
    stats = json.loads((out / "stats.json").read_text())["splits"]["test_u"]
    assert (stats["in"], stats["written"], stats["rejected"]) == (1656, 6, 1650)  # 1650 clips are not here
    tars = layout.list_tars(out)
    assert [t.name for t in tars] == [f"ref_avs-test_u-{k:05d}.tar" for k in range(2)]  # {00000..00001}
    assert len(read_back(out)) == 6
    markers = [json.loads(m.read_text()) for m in layout.list_done(out)]
    assert [len(m["manifest"]) for m in markers] == [4, 2]  # full shards, the last one holds the rest
    assert all(m["in"] == len(m["manifest"]) + len(m["rejects"]) for m in markers)
    assert sum(m["in"] for m in markers) == 1656
    build_state(out)


# ---- 4. operator ergonomics ---------------------------------------------------------------------------------------
def test_media_stored_away_from_the_annotations(tmp_path):
    sample = ensure_sample("ave")
    raw, media = tmp_path / "annotations" / "AVE_Dataset", tmp_path / "videos"
    raw.mkdir(parents=True)
    for f in sample.glob("*.txt"):
        shutil.copy(f, raw / f.name)
    shutil.copytree(sample / "AVE", media)  # flat: <video id>.mp4
    out = tmp_path / "ave"
    code, output = avuie("build", "--source", "ave", "--raw", str(raw), "--out", str(out))
    assert code == 0 and json.loads((out / "stats.json").read_text())["totals"]["written"] == 0
    code, output = avuie(
        "build", "--source", "ave", "--raw", str(raw), "--media-root", str(media), "--out", str(out)
    )
    assert code == 0, output
    assert json.loads((out / "stats.json").read_text())["totals"]["written"] == 6
    sample_json = read_back(out)[0]["sample"]
    assert all(
        not k.startswith("/") for k in sample_json["provenance"]["raw_checksums"]
    )  # relative to the root
    code, output = avuie(
        "build", "--source", "ave", "--media-root", str(tmp_path / "nope"), "--out", str(out)
    )
    assert code == 2 and "not a folder" in output


def test_scan_reports_buildable_samples_missing_examples_and_missing_split_files(real_root, tmp_path):
    code, output = avuie("scan", "--source", "ave", "--raw", str(real_root / "ave" / "AVE_Dataset"), "--json")
    assert code == 0, output
    report = json.loads(output)
    test = report["splits"]["test"]
    assert test["buildable"] == 1 and test["media_missing"] == 401
    assert len(test["missing_examples"]) == 5 and all(p.endswith(".mp4") for p in test["missing_examples"])
    raw = tmp_path / "avqa"
    shutil.copytree(real_root / "music_avqa", raw)
    for f in (raw / "data" / "json").glob("avqa-train*.json"):
        f.unlink()  # MUSIC-AVQA without its train file
    code, output = avuie("scan", "--source", "avqa", "--raw", str(raw), "--json")
    assert code == 0, output
    report = json.loads(output)
    assert "train" in report["missing_splits"] and "train" not in report["splits"]
    code, output = avuie("scan", "--source", "avqa", "--raw", str(raw))
    assert "no entries for split train" in output
    code, output = avuie(
        "build", "--source", "avqa", "--raw", str(raw), "--out", str(tmp_path / "o"), "--limit", "2"
    )
    assert code == 0 and "no entries for split(s) train" in output, output  # the build says so too


def test_progress_is_json_lines_off_a_terminal_and_a_rerun_says_what_it_skipped(tmp_path):
    out = tmp_path / "ave"
    proc = cli("build", "--source", "ave", "--out", str(out), "--shard-size", "2")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [e["event"] for e in events if e["event"] != "notice"]  # notices: the bundled sample is used
    assert kinds[0] == "start" and kinds[-1] == "done" and "progress" in kinds
    last = [e for e in events if e["event"] == "progress"][-1]
    assert last["done"] == last["total"] == 6 and last["samples_per_s"] > 0 and last["eta_s"] == 0
    assert {"elapsed_s", "source"} <= set(last)
    assert events[-1]["written"] == 6 and events[-1]["shards_skipped"] == 0
    proc = cli("build", "--source", "ave", "--out", str(out), "--shard-size", "2", "--progress", "none")
    assert proc.returncode == 0 and proc.stdout == ""
    assert "skipped 4 shards already built" in " ".join(proc.stderr.split())
    proc = cli("build", "--source", "ave", "--out", str(out), "--progress", "bogus")
    assert proc.returncode == 2 and "json, bar or none" in " ".join(proc.stderr.split())


def _raw_with_clips(root: Path, n: int) -> Path:
    from avuie.media.synth import make_video

    ds = root / "AVE_Dataset"
    (ds / "AVE").mkdir(parents=True)
    rows = []
    for i in range(n):
        make_video(ds / "AVE" / f"clip{i:07d}.mp4", duration=10, size=(96, 72), fps=5, freq=200 + 50 * i)
        rows.append(f"Bark&clip{i:07d}&good&{i % 5}&{5 + i % 5}")
    (ds / "trainSet.txt").write_text("\n".join(rows) + "\n")
    return ds


def _stop_after_first_piece(args: list[str], out: Path, source: str = "ave") -> subprocess.CompletedProcess:
    proc = subprocess.Popen(
        [sys.executable, "-m", "avuie", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    pieces = layout.stage_dir(out, source) / "pieces"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not layout.staged_markers(pieces) and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def test_sigterm_prints_the_command_that_resumes(tmp_path):
    raw = _raw_with_clips(tmp_path / "raw", 6)
    out = tmp_path / "ave"
    args = [
        "build",
        "--source",
        "ave",
        "--raw",
        str(raw),
        "--out",
        str(out),
        "--shard-size",
        "1",
        "--workers",
        "1",
    ]
    stopped = _stop_after_first_piece(args, out)
    assert stopped.returncode == 143, stopped.stderr
    said = " ".join(stopped.stderr.split())
    assert "Resume with:" in said and f"avuie build --source ave --raw {raw}" in said
    assert json.loads(stopped.stdout.splitlines()[-1])["event"] == "interrupted"
    assert not layout.list_tars(out)  # nothing half-visible
    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "stats.json").read_text())["shards_skipped"] >= 1
    assert len(build_state(out)) == 6


def test_reasoning_counters_survive_a_resumed_run(tmp_path):
    out = tmp_path / "ave"
    with FakeOpenAIServer(latency=0.2) as server:
        args = ["build", "--source", "ave", "--out", str(out), "--shard-size", "1", "--reasoning", "openai",
                "--model", "fake-omni", "--base-url", server.base_url, "--concurrency", "1"]  # fmt: skip
        stopped = _stop_after_first_piece(args, out)
        assert stopped.returncode == 143, stopped.stderr
        first = server.requests
        proc = cli(*args, "--progress", "none")
        assert proc.returncode == 0, proc.stderr
    stats = json.loads((out / "stats.json").read_text())
    reasoning = stats["reasoning"]
    assert reasoning["chains"]["model"] + reasoning["chains"]["fallback"] == 6  # both runs' chains
    assert reasoning["requests"] == server.requests >= 6 and first >= 1
    assert "interrupted" not in stats
    said = " ".join(proc.stderr.split())
    assert f"reasoning: model {reasoning['chains']['model']}" in said and "cache_hits" in said


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_one_yaml_build_file(tmp_path):
    media = tmp_path / "videos"
    shutil.copytree(ensure_sample("ave") / "AVE", media)
    config = _write(
        tmp_path / "build.yaml",
        f"""
out: built            # relative to this file
executor: local
progress: none
defaults:
  shard_size: 2
reasoning:
  engine: template
sources:
  ave:
    raw: {ensure_sample("ave")}
    media_root: videos
    splits: [train, test]
  meld:
    limit: 1
    shard_size: 8
""",
    )
    code, output = avuie("build", "--config", str(config))
    assert code == 0, output
    out = tmp_path / "built"
    stats = json.loads((out / "stats.json").read_text())
    assert set(stats["sources"]) == {"ave", "meld"}
    assert set(stats["sources"]["ave"]["splits"]) == {"train", "test"}
    assert stats["sources"]["meld"]["totals"]["written"] == 3  # one per split
    info = json.loads((out / "build.json").read_text())["sources"]
    assert info["ave"]["config"]["shard_size"] == 2 and info["meld"]["config"]["shard_size"] == 8
    assert info["ave"]["config"]["media_root"] == str(media)
    rows = pq.read_table(out / "manifest.parquet").to_pylist()
    assert len(rows) == 5 + 3
    build_state(out)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources:\n  ave:\n    shard_sise: 4\n", "sources.ave.shard_sise: Extra inputs are not permitted"),
        ("sources:\n  ave: {}\nworkerz: 2\n", "workerz: Extra inputs are not permitted"),
        ("sources:\n  ave: {}\naddress: auto\n", "address is the Ray cluster: set executor: ray with it"),
        ("sources:\n  ave: {}\nexecutor: spark\n", "executor: Input should be 'local' or 'ray'"),
        ("sources: {}\n", "sources: Dictionary should have at least 1 item"),
        ("sources: [ave\n", "is not valid YAML"),
    ],
)
def test_a_bad_build_file_is_refused_naming_the_key(tmp_path, text, message):
    code, output = avuie("build", "--config", str(_write(tmp_path / "b.yaml", text)))
    assert code == 2 and message in output, output
    assert "Traceback" not in output
