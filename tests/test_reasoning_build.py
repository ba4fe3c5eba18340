"""`avuie build --reasoning openai` and `avuie reason` end to end on the bundled AVE sample and a local server."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.shards.index import read_done, scan_local, tar_facts
from typer.testing import CliRunner

from avuie.build.validate import validate_build
from avuie.cli import app
from avuie.reasoning.check import check_reply
from tests.buildkit import read_back
from tests.openai_server import FakeOpenAIServer
from tests.reasoning_kit import kill_once_cached

runner = CliRunner()
CHURCH, BARK = "RUhOCu3LNXM", "0IklLP7_kBw"  # video ids of two bundled AVE samples


def build_args(out: Path, server: FakeOpenAIServer, *extra: str) -> list[str]:
    return [
        "build", "--source", "ave", "--out", str(out), "--shard-size", "2", "--reasoning", "openai",
        "--model", "fake-omni", "--base-url", server.base_url, "--timeout", "2", *extra,
    ]  # fmt: skip


def run(args: list[str], code: int = 0):
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    return result


def tar_digests(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in out.glob("shards/*/*.tar")
    }


def manifest_matches_samples(out: Path) -> list[dict]:
    """Check the manifest rows agree with the samples; return the samples."""
    samples = [it["sample"] for it in read_back(out)]
    rows = {r["id"]: r for r in pq.read_table(out / "manifest.parquet").to_pylist()}
    assert set(rows) == {s["id"] for s in samples}
    for s in samples:
        assert rows[s["id"]]["reasoning_kind"] == s["reasoning_info"]["kind"]
        assert rows[s["id"]]["content_hash"] == s["content_hash"]
    assert validate_build(out)["failures"] == []
    for tar in out.glob("shards/*/*.tar"):  # markers and manifest agree with the bytes (after rewrites too)
        scan = scan_local(tar)
        facts = tar_facts(read_done(tar), tar.name)
        assert (
            facts["table"] == scan.to_table()
            and facts["sha256"] == hashlib.sha256(tar.read_bytes()).hexdigest()
        )
        for entry in scan.samples:
            row = next(r for r in rows.values() if r["key"] == entry.key)
            assert row["num_bytes"] == entry.end - entry.start and row["shard"] == str(tar.relative_to(out))
    return samples


@pytest.fixture
def server():
    with FakeOpenAIServer(latency=0.02) as s:
        yield s


def test_build_ends_every_sample_with_a_checked_chain_or_a_marked_fallback(server, tmp_path):
    out = tmp_path / "ave"
    server.inject("no_tag", match=CHURCH, times=3)  # fails every attempt: template fallback
    server.inject(
        "wrong_tag", match=BARK, text="<event>Cat</event> <range>0,10</range>"
    )  # fixed on the retry
    server.inject("429", retry_after=0.05)
    server.inject("500")
    run(build_args(out, server, "--concurrency", "2"))

    stats = json.loads((out / "stats.json").read_text())
    assert stats["totals"]["in"] == stats["totals"]["written"] + stats["totals"]["rejected"] == 6
    samples = manifest_matches_samples(out)
    assert len(samples) == 6  # none lost
    for s in samples:
        info = s["reasoning_info"]
        if CHURCH in s["id"]:
            assert info["kind"] == "fallback" and info["fallback_reason"].startswith("no_answer_tag")
            assert info["attempts"] == 3
        else:
            assert info["kind"] == "model" and info["checked"] and check_reply(s["response"], s).ok
            assert info["model"] == "fake-omni" and info["prompt_version"] == "event_localization/v2"
            assert info["usage"]["prompt_tokens"] > 0
        assert info["attempts"] == (2 if BARK in s["id"] else 3 if CHURCH in s["id"] else 1)
    reasoning = stats["reasoning"]
    assert (
        reasoning["requests"] == server.requests == 6 + 2 + 1 + 2
    )  # + retried check, fallback tries, 429, 500
    assert reasoning["fallbacks"] == {"no_answer_tag": 1}
    assert reasoning["chains"] == {"model": 5, "fallback": 1}
    assert reasoning["retries"] == {"429": 1, "5xx": 1}
    assert server.max_in_flight <= 2


def test_rebuild_with_a_warm_cache_sends_zero_requests(server, tmp_path):
    out = tmp_path / "ave"
    run(build_args(out, server))
    before = {s["id"]: s["reasoning"] for s in manifest_matches_samples(out)}
    assert server.requests == 6

    server.reset_counts()
    run(build_args(out, server))  # same settings: finished shards are kept
    assert server.requests == 0

    for path in [out / "shards", out / "manifest.parquet"]:  # drop the shards, keep the cache
        subprocess.run(["rm", "-rf", str(path)], check=True)
    run(build_args(out, server))
    assert server.requests == 0
    assert {s["id"]: s["reasoning"] for s in manifest_matches_samples(out)} == before
    assert json.loads((out / "stats.json").read_text())["reasoning"]["cache_hits"] == 6

    subprocess.run(["rm", "-rf", str(out / "shards")], check=True)
    run(build_args(out, server, "--refresh"))
    assert server.requests == 6


def test_killed_build_resumes_without_asking_again(tmp_path):
    out = tmp_path / "ave"
    cache_path = out / "reasoning_cache.sqlite"
    with FakeOpenAIServer(latency=0.3) as server:
        args = [sys.executable, "-m", "avuie", *build_args(out, server, "--concurrency", "1")]
        proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        finished = kill_once_cached(proc, cache_path, chains=3, timeout=120)
        assert 3 <= len(finished) < 6

        server.reset_counts()
        run(build_args(out, server))
    samples = manifest_matches_samples(out)
    everything = {s["id"] for s in samples}
    assert len(everything) == 6 and all(s["reasoning_info"]["kind"] == "model" for s in samples)
    assert set(server.received).isdisjoint(finished)
    assert set(server.received) | finished == everything
    assert server.requests == 6 - len(finished)


def test_reason_rewrites_only_the_shards_it_changes(server, tmp_path):
    out = tmp_path / "ave"
    run(["build", "--source", "ave", "--out", str(out), "--shard-size", "2"])  # template chains
    before = tar_digests(out)
    ids = tmp_path / "ids.txt"
    ids.write_text(f"ave/train/{BARK}_bark\n")
    reason = ["reason", str(out), "--model", "fake-omni", "--base-url", server.base_url]
    run([*reason, "--ids", str(ids)])
    after = tar_digests(out)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"shards/train/ave-train-00001.tar"}
    samples = {s["id"]: s for s in manifest_matches_samples(out)}
    assert samples[f"ave/train/{BARK}_bark"]["reasoning_info"]["kind"] == "model"
    assert sum(s["reasoning_info"]["kind"] == "model" for s in samples.values()) == 1
    assert server.requests == 1

    server.reset_counts()
    run(reason)  # every template chain now; the Bark sample is a model chain already
    assert server.requests == 5
    assert all(s["reasoning_info"]["kind"] == "model" for s in manifest_matches_samples(out))
    rewrites = json.loads((out / "stats.json").read_text())["reasoning_rewrites"]
    assert [r["changed"] for r in rewrites] == [1, 5]

    server.reset_counts()
    settled = tar_digests(out)
    run([*reason, "--only", "model"])  # same settings, warm cache: nothing asked, nothing rewritten
    assert server.requests == 0 and tar_digests(out) == settled


def test_reason_never_replaces_a_chain_with_a_fallback_that_says_nothing_new(server, tmp_path):
    from avuie.curate.rewrite import regenerate
    from avuie.reasoning.openai_engine import make_openai_engine

    out = tmp_path / "ave"
    run(build_args(out, server))
    settled = tar_digests(out)
    server.inject("500", match=BARK)  # the endpoint fails this sample: its model chain must stay
    server.inject(
        "no_tag", match=CHURCH, times=3
    )  # the model cannot do it now: the old model chain stays too
    engine = make_openai_engine(
        model="fake-omni",
        base_url=server.base_url,
        cache_path=out / "reasoning_cache.sqlite",
        refresh=True,
        max_retries=0,
    )
    report = regenerate(out, engine, lambda sample: True)
    engine.close()
    assert sorted(report.kept) == sorted(f"ave/train/{v}" for v in (f"{BARK}_bark", f"{CHURCH}_church_bell"))
    assert report.changed == [] and tar_digests(out) == settled
    assert all(s["reasoning_info"]["kind"] == "model" for s in manifest_matches_samples(out))


def test_build_with_an_unreachable_endpoint_exits_cleanly(tmp_path):
    from typer.testing import CliRunner

    from avuie.cli import app

    result = CliRunner().invoke(
        app,
        [
            "build",
            "--source",
            "ave",
            "--out",
            str(tmp_path / "o"),
            "--reasoning",
            "openai",
            "--model",
            "m",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--timeout",
            "2",
            "--reasoning-opt",
            "max_retries=1",
            "--reasoning-opt",
            "backoff_base=0.01",
        ],
    )
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output
