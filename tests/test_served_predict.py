"""`avuie predict --base-url URL --model NAME` (issue 15 item 5): a served model scored with `avuie eval`.

Real builds of two bundled sources, the real `openai` client, and tests/openai_server.py acting as the served
model over loopback: it answers some samples with the ground truth and others wrongly, and `avuie eval` must
score the served predictions exactly as it scores the same responses written by hand.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avuie.cli import app
from avuie.eval.runner import evaluate
from tests.buildkit import read_back
from tests.openai_server import FakeOpenAIServer

runner = CliRunner()
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A root with the bundled AVE and Kinetics-Sounds builds; returns it and every (sample, files) read back."""
    root = tmp_path_factory.mktemp("builds")
    items = []
    for source in ("ave", "ks"):
        result = runner.invoke(
            app, ["build", "--source", source, "--out", str(root / source), "--shard-size", "3"]
        )
        assert result.exit_code == 0, result.output
        items += read_back(root / source)
    return root, items


@pytest.fixture
def server():
    with FakeOpenAIServer() as s:
        yield s


def model_answers(items: list[dict]) -> tuple[dict[str, str], set[str]]:
    """The served model's reply per sample id: the ground truth for even positions, another sample's answer (of
    the same source, a different one) for odd ones. Returns (replies, ids answered wrongly)."""
    replies, wrong = {}, set()
    for n, item in enumerate(items):
        sample = item["sample"]
        others = [
            o["sample"]["answer"]
            for o in items
            if o["sample"]["source"] == sample["source"] and o["sample"]["answer"] != sample["answer"]
        ]
        if n % 2 and others:
            replies[sample["id"]] = f"I look and listen. {others[0]}"
            wrong.add(sample["id"])
        else:
            replies[sample["id"]] = f"I look and listen. {sample['answer']}"
    return replies, wrong


def predict_args(server: FakeOpenAIServer, root: Path, to: Path, *extra: str) -> list[str]:
    splits = [arg for split in SPLITS for arg in ("--split", split)]
    return ["predict", "--base-url", server.base_url, "--model", "fake-omni", "--data", str(root), *splits,
            "--to", str(to), "--concurrency", "3", *extra]  # fmt: skip


def test_served_predictions_score_as_the_same_responses_written_by_hand(builds, server, tmp_path):
    root, items = builds
    replies, wrong = model_answers(items)
    server.answers.update(replies)
    preds = tmp_path / "served.jsonl"
    result = runner.invoke(app, predict_args(server, root, preds))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in preds.read_text().splitlines()]
    assert {line["id"]: line["response"] for line in lines} == replies and len(lines) == len(items)
    assert server.requests == len(items) and server.max_in_flight <= 3

    by_hand = tmp_path / "by_hand.jsonl"
    by_hand.write_text("".join(json.dumps({"id": i, "response": r}) + "\n" for i, r in replies.items()))
    served, expected = evaluate(preds, root), evaluate(by_hand, root)
    assert served["tasks"] == expected["tasks"] and set(served["tasks"]) == {"ave", "ks"}
    ks = [it["sample"]["id"] for it in items if it["sample"]["source"] == "ks"]
    right = sum(i not in wrong for i in ks) / len(ks)
    assert 0 < right < 1 and served["tasks"]["ks"]["primary"]["value"] == pytest.approx(right)
    assert served["tasks"]["ks"]["n_unpredicted"] == 0

    server.reset_counts()  # a rerun answers from the cache: no request, the same file
    before = preds.read_bytes()
    assert runner.invoke(app, predict_args(server, root, preds)).exit_code == 0
    assert server.requests == 0 and preds.read_bytes() == before


def test_each_request_carries_the_media_and_never_the_answer(builds, server, tmp_path):
    root, items = builds
    result = runner.invoke(
        app, predict_args(server, root, tmp_path / "p.jsonl", "--served-opt", "max_frames=2")
    )
    assert result.exit_code == 0, result.output
    by_id = {it["sample"]["id"]: it for it in items}
    assert len(server.bodies) == len(items)
    assert sorted(server.body_samples) == sorted(by_id)
    for sample_id, body in zip(server.body_samples, server.bodies, strict=True):
        system, user = body["messages"]
        assert system["role"] == "system" and "Qwen" in system["content"] and user["role"] == "user"
        text = " ".join(p["text"] for p in user["content"] if p["type"] == "text")
        sample, files = by_id[sample_id]["sample"], by_id[sample_id]["files"]
        assert text == sample["instruction"].replace("<video>", "").replace("<audio>", "").strip()
        dumped = json.dumps(body)
        assert sample["answer"] not in dumped and sample["reasoning"] not in dumped and "<video>" not in text
        images = [p for p in user["content"] if p["type"] == "image_url"]
        frames = [m for m in sample["media"] if m["kind"] == "video_frames"][0]["files"]
        assert len(images) == min(2, len(frames))
        assert base64.b64decode(images[0]["image_url"]["url"].split(",", 1)[1]) == files[frames[0]]
        audio = [p["input_audio"] for p in user["content"] if p["type"] == "input_audio"]
        assert len(audio) == 1 and audio[0]["format"] == "wav"
        assert base64.b64decode(audio[0]["data"]) == files["audio.wav"]
        kinds = [p["type"] for p in user["content"]]
        assert kinds.index("image_url") < kinds.index("input_audio") < len(kinds) - 1  # <video> <audio> text


def test_failed_samples_are_left_out_reported_and_asked_again(builds, server, tmp_path):
    root, items = builds
    victim = items[2]["sample"]["id"]
    server.inject("500", match=victim, times=2)
    preds = tmp_path / "p.jsonl"
    args = predict_args(
        server, root, preds, "--served-opt", "max_retries=1", "--served-opt", "backoff_base=0.01"
    )
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "1 samples got no response" in result.output and victim in result.output
    assert victim not in preds.read_text() and len(preds.read_text().splitlines()) == len(items) - 1
    server.reset_counts()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert server.requests == 1 and set(server.received) == {victim}
    assert len(preds.read_text().splitlines()) == len(items)


def test_bad_options_and_endpoints_give_clear_errors(builds, server, tmp_path):
    root, _ = builds
    to = tmp_path / "p.jsonl"
    cases = [
        (["predict", "--base-url", server.base_url, "--data", str(root), "--to", str(to)], "--model NAME"),
        (predict_args(server, root, to, "--checkpoint", "x"), "--checkpoint apply to a trained run"),
        (predict_args(server, root, to, "--served-opt", "temprature=0"), "unknown setting"),
        (["predict", "--data", str(root), "--to", str(to)], "--run RUN"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, result.output
    base = ["predict", "--base-url", server.base_url, "--model", "m", "--data", str(root), "--to", str(to)]
    result = runner.invoke(app, [*base, "--split", "nope"])
    assert result.exit_code == 2 and "no samples of split(s) nope" in result.output, result.output
    wrong_url = server.base_url.replace("/v1", "/nope")
    result = runner.invoke(
        app, ["predict", "--base-url", wrong_url, "--model", "m", "--data", str(root), "--to", str(to)]
    )
    assert result.exit_code == 2 and "answered 404" in result.output and not to.exists()


def test_served_predictions_need_no_torch(builds, server, tmp_path):
    root, items = builds
    preds = tmp_path / "p.jsonl"
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now fails
        "from avuie.cli import app\n"
        f"app({predict_args(server, root, preds)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(preds.read_text().splitlines()) == len(items)
