"""A hostile or broken reasoning endpoint (issue 12 item 6): every fault ends in a retry or a marked fallback, the
run never aborts or hangs for one sample, and stats.json is always written (also on Ctrl-C and SIGTERM).

The real `openai` client talks to tests/openai_server.py over loopback. No test asserts wall time: a generous
overall limit only proves that nothing hangs.
"""

from __future__ import annotations

import email.utils
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from avuie.shards import layout
from typer.testing import CliRunner

import avuie.reasoning.openai_engine as openai_engine
from avuie.cli import app
from avuie.reasoning.openai_engine import make_openai_engine, retry_after_seconds
from tests.openai_server import chain_for
from tests.reasoning_kit import FakeOpenAIServer, ave_drafts

FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "timeout": 5.0}
LIMIT = 90.0  # seconds: a generous bound that only proves a run ends
WITH_CTRL_C = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); sys.argv[0] = 'avuie'; "
    "runpy.run_module('avuie', run_name='__main__', alter_sys=True)"
)
CHURCH, BARK, GUITAR = "RUhOCu3LNXM", "0IklLP7_kBw", "MH3m4AwEcRY"  # video ids of bundled AVE samples


@pytest.fixture
def server():
    with FakeOpenAIServer() as s:
        yield s


def engine_for(server, tmp_path, **kw):
    return make_openai_engine(
        model="fake-omni",
        base_url=server.base_url,
        api_key="k",
        cache_path=tmp_path / "c.sqlite",
        **{**FAST, **kw},
    )


def generate(engine, drafts, limit: float = LIMIT):
    """engine.generate(drafts) in a daemon thread; fails the test (instead of hanging it) past `limit` s."""
    box: dict = {}

    def work() -> None:
        try:
            box["results"] = engine.generate(drafts)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        pytest.fail(f"generate() did not return within {limit:g} s")
    if "error" in box:
        raise box["error"]
    engine.close()
    return box["results"]


def run_one_fault(server, tmp_path, n=3, **kw):
    """n drafts through a fresh engine; returns (drafts, results, stats)."""
    drafts = ave_drafts(n)
    engine = engine_for(server, tmp_path, **kw)
    results = generate(engine, drafts)
    return drafts, results, engine.stats()


def all_model(results) -> bool:
    return all(r.info["kind"] == "model" for r in results)


# ---- 1. Retry-After in both forms; garbage means the default backoff --------------------------------------------
@pytest.mark.parametrize(
    "value", ["soon", "", "1e400", "nan", "Wed, 99 Oct 99999 07:28:00 GMT", "\u00e9t\u00e9"]
)
def test_a_garbage_retry_after_means_the_default_backoff(server, tmp_path, value):
    server.inject("429", retry_after=value)
    _, results, stats = run_one_fault(server, tmp_path)
    assert all_model(results) and stats["retries"] == {"429": 1}
    assert stats["retry_wait_s"]["429"] <= FAST["backoff_max"]  # the backoff, not a parsed wait


def test_retry_after_as_seconds_or_http_date_is_honoured(server, tmp_path):
    server.inject("429", retry_after="0.2")
    server.inject("429", retry_after=email.utils.formatdate(time.time() + 3600, usegmt=True))
    server.inject("429", retry_after="Wed, 21 Oct 2015 07:28:00 GMT")  # in the past: retry at once
    _, results, stats = run_one_fault(server, tmp_path, n=1, retry_after_max=0.5)
    assert all_model(results) and stats["retries"] == {"429": 3}
    assert stats["retry_wait_s"]["429"] == pytest.approx(0.2 + 0.5 + 0.0)  # the date an hour ahead is capped


def test_retry_after_reader():
    assert retry_after_seconds({"retry-after": "7"}) == 7.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after-ms": "x", "retry-after": "2"}) == 2.0
    in_a_minute = retry_after_seconds({"retry-after": email.utils.formatdate(time.time() + 60, usegmt=True)})
    assert 55 <= in_a_minute <= 61
    for garbage in ("soon", "inf", "-0x", "Mon, 01 Jan 10000 00:00:00 GMT", "  "):
        assert retry_after_seconds({"retry-after": garbage}) is None
    assert retry_after_seconds({"retry-after": "-3"}) == 0.0 and retry_after_seconds(None) is None


# ---- 2. message content as a list, a dict, null or a number ----------------------------------------------------
@pytest.mark.parametrize(
    "shape, attempts, retries",
    [
        ("parts", 1, {}),
        ("dict", 1, {}),
        ("mixed_list", 1, {}),
        ("null", 2, {}),  # an empty reply: a failed check, corrected
        ("number", 1, {"malformed": 1}),  # not text at all: a malformed reply, retried
    ],
)
def test_message_content_in_any_shape(server, tmp_path, shape, attempts, retries):
    drafts = ave_drafts(2)
    chain = chain_for(drafts[0].sample["answer"])
    value = {
        "parts": [{"type": "text", "text": chain}],
        "dict": {"type": "text", "text": chain},
        "mixed_list": [chain[:20], {"type": "text", "text": chain[20:]}, {"type": "image_url"}],
        "null": None,
        "number": 42,
    }[shape]
    server.inject("content", match=drafts[0].sample["id"], value=value)
    engine = engine_for(server, tmp_path)
    results = generate(engine, drafts)
    stats = engine.stats()
    assert all_model(results) and results[0].info["attempts"] == attempts
    assert stats["retries"] == retries


def test_content_without_text_on_every_attempt_ends_in_a_marked_fallback(server, tmp_path):
    drafts = ave_drafts(3)
    server.inject("content", match=drafts[1].sample["id"], times=3, value={"refusal": "no"})
    engine = engine_for(server, tmp_path, max_attempts=3)
    results = generate(engine, drafts)
    assert results[1].info["kind"] == "fallback" and results[1].info["fallback_reason"].startswith("empty")
    assert results[0].info["kind"] == results[2].info["kind"] == "model"
    rerun = engine_for(server, tmp_path, max_attempts=3)  # the fallback was cached: not asked again
    server.reset_counts()
    assert [r.info["kind"] for r in generate(rerun, drafts)] == ["model", "fallback", "model"]
    assert server.requests == 0


# ---- 3. a 400-digit number --------------------------------------------------------------------------------------
@pytest.mark.parametrize("where", ["range_end", "range_start", "usage"])
def test_a_400_digit_number_is_a_failed_check_or_an_unreadable_count(server, tmp_path, where):
    drafts = ave_drafts(2)
    target = drafts[0].sample["target"]
    big = "9" * 400
    if where == "usage":
        server.inject(
            "usage",
            match=drafts[0].sample["id"],
            value={"prompt_tokens": int(big), "completion_tokens": 1e400},
        )
    else:
        span = f"0,{big}" if where == "range_end" else f"{big}.5,1"
        server.inject(
            "wrong_tag",
            match=drafts[0].sample["id"],
            text=f"<event>{target['label']}</event> <range>{span}</range>",
        )
    engine = engine_for(server, tmp_path)
    results = generate(engine, drafts)
    stats = engine.stats()
    assert all_model(results)
    if where == "usage":
        assert results[0].info["attempts"] == 1 and stats["usage_unreadable"] == 1 and stats["retries"] == {}
        assert results[0].info["usage"]["prompt_tokens"] == 0
    else:  # the checker refuses the answer (whatever its reason) and the corrective retry passes
        assert results[0].info["attempts"] == 2 and sum(stats["check_failures"].values()) == 1


# ---- 4. a reply that drips bytes: the deadline is total, not per read --------------------------------------------
@pytest.mark.parametrize("with_length", [True, False])
def test_a_dripping_reply_is_cut_off_by_the_total_deadline(server, tmp_path, with_length):
    drafts = ave_drafts(3)
    # ~700 bytes, 16 every 0.25 s: about 11 s in all, each read far inside the 1 s timeout
    server.inject("drip", match=drafts[1].sample["id"], chunk=16, delay=0.25, length=with_length)
    engine = engine_for(server, tmp_path, timeout=1.0)
    results = generate(engine, drafts)
    stats = engine.stats()
    assert all_model(results) and stats["retries"] == {"timeout": 1}


def test_a_reply_that_never_ends_falls_back_marked_timeout(server, tmp_path):
    drafts = ave_drafts(2)
    server.inject("drip", match=drafts[0].sample["id"], times=3, chunk=8, delay=0.2)
    engine = engine_for(server, tmp_path, timeout=0.6, max_retries=2)
    results = generate(engine, drafts)
    info = results[0].info
    assert info["kind"] == "fallback" and info["fallback_reason"].startswith(
        "api_error:timeout: gave up after 3"
    )
    assert results[1].info["kind"] == "model"


# ---- 5. a 140 KB tag-spam reply; the check runs off the event loop ----------------------------------------------
def test_a_tag_spam_reply_fails_fast_and_does_not_stall_the_others(server, tmp_path):
    drafts = ave_drafts(6)
    spam = "<event>x</event>" * 9000  # 144 KB
    server.inject("reply", match=drafts[0].sample["id"], text=spam)
    engine = engine_for(server, tmp_path, concurrency=2)
    results = generate(engine, drafts)
    stats = engine.stats()
    assert all_model(results) and results[0].info["attempts"] == 2
    assert stats["check_failures"] == {"too_long": 1}
    corrective = [b for b in server.bodies if len(b["messages"]) > 8]  # sample 0's second request
    assert len(corrective) == 1 and len(corrective[0]["messages"][-2]["content"]) < len(spam) / 10


def test_the_answer_check_runs_off_the_event_loop(server, tmp_path, monkeypatch):
    """While one sample's check is busy, the other samples' requests still go out (one at a time)."""
    drafts = ave_drafts(4)
    slow_id = drafts[0].sample["id"]
    seen: dict[str, bool] = {}
    real_check = openai_engine.check_reply

    def slow_check(reply, sample, settings):
        if sample["id"] == slow_id and "others_sent" not in seen:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and server.requests < len(drafts):
                time.sleep(0.02)
            seen["others_sent"] = server.requests >= len(drafts)
        return real_check(reply, sample, settings)

    monkeypatch.setattr(openai_engine, "check_reply", slow_check)
    engine = engine_for(server, tmp_path, concurrency=1)
    results = generate(engine, drafts)
    assert seen == {"others_sent": True} and all_model(results)


# ---- 6. a valid reply with a non-integer usage is kept ---------------------------------------------------------
@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": "many", "completion_tokens": 1.5},
        {"prompt_tokens": None, "completion_tokens": -3},
        {"prompt_tokens": [1], "completion_tokens": {"n": 2}},
        "lots",
        [1, 2],
    ],
)
def test_a_valid_reply_with_an_odd_usage_is_kept(server, tmp_path, usage):
    drafts = ave_drafts(2)
    server.inject("usage", match=drafts[0].sample["id"], value=usage)
    engine = engine_for(server, tmp_path)
    results = generate(engine, drafts)
    stats = engine.stats()
    assert all_model(results) and stats["retries"] == {} and server.requests == 2
    assert results[0].info["attempts"] == 1 and stats["usage_unreadable"] == 1


def test_string_counts_and_whole_floats_are_read(server, tmp_path):
    drafts = ave_drafts(1)
    server.inject("usage", value={"prompt_tokens": "120", "completion_tokens": 30.0})
    engine = engine_for(server, tmp_path)
    results = generate(engine, drafts)
    assert results[0].info["usage"] == {"prompt_tokens": 120, "completion_tokens": 30}
    assert engine.stats()["usage_unreadable"] == 0


# ---- the reply size cap and other hostile bodies ----------------------------------------------------------------
@pytest.mark.parametrize("with_length", [True, False])
def test_a_reply_over_the_size_cap_is_not_read(server, tmp_path, with_length):
    drafts = ave_drafts(2)
    server.inject(
        "drip", match=drafts[0].sample["id"], value="x" * 400_000, chunk=65536, delay=0, length=with_length
    )
    engine = engine_for(server, tmp_path, max_reply_bytes=64 * 1024)
    results = generate(engine, drafts)
    stats = engine.stats()
    assert all_model(results) and stats["retries"] == {"too_large": 1}


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000 + "]" * 100_000,  # deep nesting
        '{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": ' + "7" * 5000 + "}}",
        '{"choices": []}',
        '{"choices": "none"}',
        "\ufeff{}",
        '{"choices": [{"message": "hi"}]}',
    ],
)
def test_malformed_bodies_are_retried(server, tmp_path, body):
    server.inject("raw", text=body)
    _, results, stats = run_one_fault(server, tmp_path, n=1)
    if "7777" in body:  # a huge count is an unreadable usage; the reply itself is kept (too short: corrected)
        assert results[0].info["kind"] == "model" and stats["usage_unreadable"] == 1
    else:
        assert all_model(results) and stats["retries"] == {"malformed": 1}


def test_a_refusal_after_good_replies_is_one_fallback_not_the_end_of_the_run(server, tmp_path):
    drafts = ave_drafts(4)
    server.inject(
        "raw",
        match=drafts[3].sample["id"],
        status=404,
        text='{"error": {"message": "' + "no " * 50_000 + '"}}',
    )
    engine = engine_for(server, tmp_path, concurrency=1)
    results = generate(engine, drafts)
    info = results[3].info
    assert (
        all_model(results[:3])
        and info["kind"] == "fallback"
        and info["fallback_reason"].startswith("api_error:http_404")
    )
    assert len(info["fallback_reason"]) < 400  # the server's text is shortened, never copied whole


# ---- 7. stats.json is always written ----------------------------------------------------------------------------
def build_args(out: Path, server: FakeOpenAIServer, *extra: str) -> list[str]:
    return [
        "build", "--source", "ave", "--out", str(out), "--shard-size", "2", "--reasoning", "openai",
        "--model", "fake-omni", "--base-url", server.base_url, "--timeout", "3",
        "--reasoning-opt", "backoff_base=0.01", "--reasoning-opt", "backoff_max=0.05", *extra,
    ]  # fmt: skip


def test_a_build_against_a_hostile_endpoint_finishes_and_writes_stats(server, tmp_path):
    out = tmp_path / "ave"
    server.inject("429", retry_after="soon")
    server.inject("content", value=[{"type": "text", "text": "no answer here"}], times=3, match=CHURCH)
    server.inject("reply", text="x <event>a</event> <range>0," + "9" * 400 + "</range>", match=BARK)
    server.inject("usage", value={"prompt_tokens": "n/a"})
    server.inject("drip", chunk=16, delay=0.5, match=GUITAR)
    server.inject("reply", text="<event>x</event>" * 9000)
    result = CliRunner().invoke(app, build_args(out, server))
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    reasoning = stats["reasoning"]
    assert stats["totals"]["written"] == 6 and "interrupted" not in stats
    assert reasoning["retries"]["429"] >= 1 and reasoning["usage_unreadable"] >= 1
    assert reasoning["chains"]["model"] + reasoning["chains"]["fallback"] == 6


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_build_writes_stats_and_resumes(tmp_path, sig):
    out = tmp_path / "ave"
    with FakeOpenAIServer(latency=0.3) as server:
        # one worker: the shards finish one after another, so the first staged shard leaves three more (1.8 s) to
        # interrupt. The child gets Ctrl-C's default handler back: a process whose parent ignores SIGINT (as
        # this pytest process may, after Ray or torch.distributed ran in it) inherits the ignore across exec.
        build = build_args(out, server, "--concurrency", "1", "--workers", "1")
        args = [sys.executable, "-c", WITH_CTRL_C, *build]
        proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + LIMIT
        pieces = layout.stage_dir(out, "ave") / "pieces"  # finished work is staged until the build commits
        while time.monotonic() < deadline and not layout.staged_markers(pieces) and proc.poll() is None:
            time.sleep(0.05)
        os.kill(proc.pid, sig)
        try:
            _, err = proc.communicate(timeout=LIMIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("the build did not stop after the signal")
        assert proc.returncode != 0, err.decode()
        stats = json.loads((out / "stats.json").read_text())
        assert stats["interrupted"].startswith("KeyboardInterrupt")
        assert stats["resume"].startswith("avuie build --source ave")  # the command that resumes
        written = stats["staged"]["written"]
        assert (
            1 <= written < 6 and stats["totals"]["written"] == 0
        )  # the finished work, staged, not yet visible
        assert stats["staged"]["reasoning"]["requests"] >= written
        server.reset_counts()
        result = CliRunner().invoke(app, build_args(out, server))
        assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert "interrupted" not in stats and stats["totals"]["written"] == 6
    assert server.requests <= 6 - written  # the finished shards were not asked again
