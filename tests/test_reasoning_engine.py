"""The OpenAI-compatible engine against a real local HTTP server: checks, retries, concurrency, cache, resume."""

from __future__ import annotations

import base64
import io
import pickle
import subprocess
import sys
import textwrap

import pytest
from PIL import Image

from avuie.reasoning.check import check_reply
from avuie.reasoning.openai_engine import EndpointError, make_openai_engine
from tests.reasoning_kit import FakeOpenAIServer, ave_drafts, kill_once_cached

FAST = {"backoff_base": 0.01, "backoff_max": 0.05, "timeout": 5.0}


@pytest.fixture
def server():
    with FakeOpenAIServer() as s:
        yield s


def engine_for(server, tmp_path, **kw):
    settings = {**FAST, **kw}
    return make_openai_engine(
        model="fake-omni",
        base_url=server.base_url,
        api_key="k",
        cache_path=tmp_path / "cache.sqlite",
        **settings,
    )


def test_every_sample_ends_checked_or_marked_fallback(server, tmp_path):
    drafts = ave_drafts(12)
    ids = [d.sample["id"] for d in drafts]
    server.inject("429", match=ids[0], retry_after=0.05)
    server.inject("500", match=ids[1], times=2)
    server.inject("malformed", match=ids[2])
    server.inject("wrong_tag", match=ids[3], text="<event>Bark</event> <range>0,10</range>")
    server.inject("no_tag", match=ids[4], times=3)  # every attempt fails -> fallback
    server.inject("timeout", match=ids[5], delay=3.0)
    engine = engine_for(server, tmp_path, concurrency=4, timeout=0.5, max_attempts=3)
    results = engine.generate(drafts)
    engine.close()

    assert len(results) == len(drafts)  # none lost
    by_id = dict(zip(ids, results, strict=True))
    for draft, res in zip(drafts, results, strict=True):
        assert res.info["kind"] in ("model", "fallback")
        if res.info["kind"] == "model":
            assert (
                res.info["checked"]
                and check_reply(f"{res.reasoning} {draft.sample['answer']}", draft.sample).ok
            )
        assert res.reasoning and "<" not in res.reasoning
    fallback = by_id[ids[4]].info
    assert fallback["kind"] == "fallback" and fallback["fallback_reason"].startswith("no_answer_tag")
    assert fallback["attempts"] == 3 and fallback["check_outcome"] == "failed:no_answer_tag"
    assert by_id[ids[3]].info["attempts"] == 2 and by_id[ids[3]].info["check_outcome"] == "passed_after_retry"
    for i in (0, 1, 2, 5):  # transport faults are retried invisibly: one reply, one attempt
        assert by_id[ids[i]].info["kind"] == "model" and by_id[ids[i]].info["attempts"] == 1
    stats = engine.stats()
    assert stats["retries"] == {"429": 1, "5xx": 2, "malformed": 1, "timeout": 1}
    assert stats["retry_wait_s"]["429"] == pytest.approx(0.05)  # Retry-After honoured, not the backoff
    assert stats["fallbacks"] == {"no_answer_tag": 1}
    assert stats["check_failures"] == {"wrong_answer": 1, "no_answer_tag": 3}
    assert stats["chains"] == {"model": 11, "fallback": 1}
    assert stats["requests"] == server.requests == 12 + 5 + 1 + 2
    assert stats["tokens"]["prompt"] > 0 and stats["tokens"]["completion"] > 0
    usage = by_id[ids[3]].info["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


def test_requests_in_flight_never_exceed_the_limit(tmp_path):
    with FakeOpenAIServer(latency=0.05) as server:
        server.inject("429", times=5, retry_after=0.02)
        server.inject("500", times=5)
        engine = engine_for(server, tmp_path, concurrency=5)
        results = engine.generate(ave_drafts(40))
        engine.close()
    assert all(r.info["kind"] == "model" for r in results)
    assert server.max_in_flight <= 5
    assert server.max_in_flight == 5  # the limit is actually used
    assert engine.stats()["max_in_flight"] <= 5


def test_warm_cache_sends_zero_requests_and_refresh_bypasses_it(server, tmp_path):
    drafts = ave_drafts(6)
    first = engine_for(server, tmp_path)
    before = first.generate(drafts)
    first.close()
    assert server.requests == 6

    server.reset_counts()
    warm = engine_for(server, tmp_path)
    again = warm.generate(drafts)
    warm.close()
    assert server.requests == 0 and warm.stats()["cache_hits"] == 6
    assert [r.reasoning for r in again] == [r.reasoning for r in before]
    assert [r.info for r in again] == [r.info for r in before]

    refresh = engine_for(server, tmp_path, refresh=True)
    refresh.generate(drafts)
    refresh.close()
    assert server.requests == 6

    server.reset_counts()
    other = engine_for(server, tmp_path, temperature=0.9)  # other decoding settings: other cache entries
    other.generate(drafts[:2])
    other.close()
    assert server.requests == 2


def test_transport_failures_fall_back_and_are_asked_again(server, tmp_path):
    drafts = ave_drafts(3)
    server.inject("500", match=drafts[0].sample["id"], times=3)
    engine = engine_for(server, tmp_path, max_retries=2)
    results = engine.generate(drafts)
    engine.close()
    assert results[0].info["kind"] == "fallback"
    reason = results[0].info["fallback_reason"]
    assert reason.startswith("api_error:5xx: gave up after 3 tries (Error code: 500")
    assert results[0].info["attempts"] == 0

    server.reset_counts()
    rerun = engine_for(server, tmp_path, max_retries=2)
    results = rerun.generate(drafts)
    rerun.close()
    assert server.requests == 1 and results[0].info["kind"] == "model"


def test_check_failures_are_cached_as_fallbacks(server, tmp_path):
    drafts = ave_drafts(2)
    server.inject(
        "wrong_tag", match=drafts[0].sample["id"], times=2, text="<event>Bark</event> <range>0,10</range>"
    )
    first = engine_for(server, tmp_path, max_attempts=2)
    assert first.generate(drafts)[0].info["kind"] == "fallback"
    first.close()
    server.reset_counts()
    again = engine_for(server, tmp_path, max_attempts=2)
    assert again.generate(drafts)[0].info["fallback_reason"].startswith("wrong_answer")
    again.close()
    assert server.requests == 0
    more = engine_for(
        server, tmp_path, max_attempts=3
    )  # more attempts allowed now: the sample is asked again
    assert more.generate(drafts)[0].info["kind"] == "model"
    more.close()
    assert server.requests == 1


RUNNER = textwrap.dedent(
    """
    import pickle, sys
    from avuie.reasoning.openai_engine import make_openai_engine
    drafts = pickle.load(open(sys.argv[1], "rb"))
    engine = make_openai_engine(model="fake-omni", base_url=sys.argv[2], api_key="k", cache_path=sys.argv[3],
                                concurrency=2)
    engine.generate(drafts)
    """
)


def test_killed_run_resumes_with_only_the_missing_samples(tmp_path):
    drafts = ave_drafts(30)
    (tmp_path / "drafts.pkl").write_bytes(pickle.dumps(drafts))
    (tmp_path / "runner.py").write_text(RUNNER)
    cache_path = tmp_path / "cache.sqlite"
    with FakeOpenAIServer(latency=0.1) as server:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(tmp_path / "runner.py"),
                str(tmp_path / "drafts.pkl"),
                server.base_url,
                str(cache_path),
            ],
            start_new_session=True,
        )
        finished = kill_once_cached(proc, cache_path, chains=8, timeout=60)
        assert 8 <= len(finished) < 30

        server.reset_counts()
        engine = make_openai_engine(
            model="fake-omni", base_url=server.base_url, api_key="k", cache_path=cache_path, concurrency=2
        )
        results = engine.generate(drafts)
        engine.close()
    asked = set(server.received)
    assert asked.isdisjoint(finished)  # nothing finished is asked again
    assert asked | finished == {d.sample["id"] for d in drafts}
    assert server.requests == 30 - len(finished)
    assert all(r.info["kind"] == "model" for r in results)


def test_media_go_in_the_request(server, tmp_path):
    drafts = ave_drafts(1)
    engine = engine_for(server, tmp_path, audio_input=True, image_size=112)
    engine.generate(drafts)
    engine.close()
    parts = server.bodies[0]["messages"][-1]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    audio = [p for p in parts if p["type"] == "input_audio"]
    assert len(images) == 2 and len(audio) == 1
    data = images[0]["image_url"]["url"].split(",", 1)[1]
    assert Image.open(io.BytesIO(base64.b64decode(data))).size == (112, 112)
    assert base64.b64decode(audio[0]["input_audio"]["data"]) == drafts[0].media_files["audio.wav"]
    assert audio[0]["input_audio"]["format"] == "wav"
    messages = server.bodies[0]["messages"]
    assert messages[0]["role"] == "system" and [m["role"] for m in messages[1:7]] == ["user", "assistant"] * 3

    server.reset_counts()
    described = engine_for(server, tmp_path / "b", audio_input=False)
    described.generate(drafts)
    described.close()
    parts = server.bodies[0]["messages"][-1]["content"]
    assert not [p for p in parts if p["type"] == "input_audio"]
    text = parts[-1]["text"]
    assert "Audio (from the annotation): the sound of" in text and drafts[0].sample["answer"] in text


def test_an_endpoint_that_refuses_everything_stops_the_run(server, tmp_path):
    engine = make_openai_engine(model="m", base_url=server.base_url.replace("/v1", "/nope"), api_key="k")
    with pytest.raises(EndpointError, match="404"):
        engine.generate(ave_drafts(3))
    engine.close()


def test_unknown_settings_are_refused():
    with pytest.raises(ValueError, match="unknown reasoning setting"):
        make_openai_engine(model="m", base_url="http://127.0.0.1:1/v1", temprature=0.1)
    with pytest.raises(ValueError, match="concurrency"):
        make_openai_engine(model="m", base_url="http://127.0.0.1:1/v1", concurrency=0)


def test_an_unreachable_endpoint_stops_the_run(tmp_path):
    import socket

    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = make_openai_engine(model="m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, **FAST)
    with pytest.raises(EndpointError, match="cannot reach"):
        engine.generate(ave_drafts(2))
    engine.close()
