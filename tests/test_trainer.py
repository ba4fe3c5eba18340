"""The bundled trainer end to end on CPU: tiny Qwen2.5-Omni thinker / modular models, shards from tests/shardkit.

Covers: chat template + loss mask + padding, overfitting 8 samples, exact resume, `avuie predict` + tag parsing,
the modular paradigm, training from the shard server's URL.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).parent))
from avuie.schemas.tags import AnswerParseError, parse_answer  # noqa: E402
from avuie.schemas.targets import OpenQATarget  # noqa: E402
from avuie.trainer.config import load_config  # noqa: E402
from avuie.trainer.data import IGNORE, Collator, PromptTooLong, open_stream  # noqa: E402
from avuie.trainer.recipe import read_log, train  # noqa: E402
from shardkit import write_build  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from avuie.cli import app  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def data8(tmp_path_factory):
    """8 train samples (one source) + 3 test samples: the fixed set to overfit."""
    root = tmp_path_factory.mktemp("data8")
    write_build(root, {"ave": {"train": [8], "test": [3]}}, frames=2, size=32, audio_seconds=1.0)
    return root


@pytest.fixture(scope="module")
def data_mixed(tmp_path_factory):
    """Video (ave) and image (s4) samples over several shards: 10 train, 5 test."""
    root = tmp_path_factory.mktemp("mixed")
    write_build(
        root,
        {"ave": {"train": [4, 4], "test": [3]}, "s4": {"train": [2], "test": [2]}},
        frames=3,
        size=32,
        audio_seconds=1.0,
    )
    return root


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def tiny(**overrides) -> dict:
    return load_config("tiny", [f"{k}={v}" for k, v in overrides.items()])


@pytest.fixture(scope="module")
def overfit_run(data8, tmp_path_factory):
    run = tmp_path_factory.mktemp("overfit") / "run"
    cli("train", "--config", "tiny", "--data", str(data8), "--out", str(run), "--max-steps", "30")
    return run


def test_template_loss_mask_and_padding(data_mixed, tmp_path):
    from avuie.trainer.models import build_bundle

    bundle, _ = build_bundle(tiny()["model"], tmp_path, seed=0)
    tok = bundle.tokenizer
    items = list(open_stream(str(data_mixed), "train", shuffle=False))
    video = next(i for i in items if i["sample"]["source"] == "ave")
    image = next(i for i in items if i["sample"]["source"] == "s4")
    col = Collator(tok, bundle.prep, bundle.media_tokens, "SYS", 1024, train=True)
    inputs, meta = col([video, image])
    assert [m["id"] for m in meta] == [video["sample"]["id"], image["sample"]["id"]]
    ids, labels, mask = inputs["input_ids"], inputs["labels"], inputs["attention_mask"]
    for row, item in enumerate([video, image]):
        n = int(mask[row].sum())
        assert mask[row, :n].all() and not mask[row, n:].any()  # right padding
        assert (ids[row, n:] == tok.pad_token_id).all()
        kept = labels[row][labels[row] != IGNORE]
        assert tok.decode(kept) == item["sample"]["response"] + "<|im_end|>"  # loss on the answer turn only
        prompt = tok.decode(ids[row, : n - len(kept)])
        assert prompt.startswith("<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\n")
        assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    # placeholders: 3 frames -> 2 temporal patches x (4x4 patches / 2x2 merge) = 8 video tokens; image 4; audio
    v_begin, v_pad, v_end = bundle.media_tokens["video_frames"]
    assert int((ids[0] == v_pad).sum()) == 8 and int((ids[1] == bundle.media_tokens["image"][1]).sum()) == 4
    assert inputs["pixel_values_videos"].shape[0] == 2 * 16 and tuple(inputs["video_grid_thw"][0]) == (
        2,
        4,
        4,
    )
    a_pad = bundle.media_tokens["audio"][1]
    assert int((ids == a_pad).sum()) == 2 * 25  # 1 s = 100 mel frames -> 25 tokens each
    assert inputs["feature_attention_mask"].sum() == 200

    pred, _ = Collator(tok, bundle.prep, bundle.media_tokens, "SYS", 1024, train=False)([video, image])
    pm = pred["attention_mask"]
    assert (pm[:, -1] == 1).all() and (pm.sum(1) < pm.shape[1]).any()  # left padding
    assert (pred["labels"] == IGNORE).all()
    assert tok.decode(pred["input_ids"][0][pm[0].bool()]).endswith("<|im_start|>assistant\n")

    short = Collator(tok, bundle.prep, bundle.media_tokens, "SYS", 30, train=True)
    assert short([video]) == (None, [{**meta[0], "skipped": "too_long"}])  # training skips what cannot fit
    with pytest.raises(PromptTooLong, match="max_length is 30"):
        Collator(tok, bundle.prep, bundle.media_tokens, "SYS", 30, train=False)([video])

    broken = {**video, "sample": {**video["sample"], "instruction": "<video> <video> twice"}}
    with pytest.raises(ValueError, match="more <video> markers"):
        col([broken])
    silent = {**video, "sample": {**video["sample"], "instruction": "<video> only"}}
    with pytest.raises(ValueError, match="no marker"):
        col([silent])


def test_tiny_overfits_and_logs(overfit_run):
    log = read_log(overfit_run)
    assert [line["step"] for line in log] == list(range(1, 31))
    losses = [line["loss"] for line in log]
    assert losses[-1] < losses[0] / 2, losses
    line = log[-1]
    assert line["lr"] >= 0 and line["tokens_per_s"] > 0 and line["samples"] == 4
    for field, name in (("source", "ave"), ("family", "event_localization")):
        stats = line["router"][field][name]
        assert len(stats["gate"]) == 3 and abs(sum(stats["gate"]) - 1) < 1e-3
        assert 0 < stats["entropy"] <= 1.0987
    assert (overfit_run / "checkpoints" / "latest").read_text() == "step_000030"
    assert (overfit_run / "base_model" / "config.json").exists()


def test_predict_writes_one_parseable_response_per_sample(overfit_run, data8, tmp_path):
    out = tmp_path / "preds.jsonl"
    cli(
        "predict",
        "--run",
        str(overfit_run),
        "--data",
        str(data8),
        "--split",
        "test",
        "--to",
        str(out),
        "--max-new-tokens",
        "40",
        "--batch-size",
        "2",
    )
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["id"] for x in lines) == [f"ave/test/clip{i:05d}" for i in range(3)]
    like = OpenQATarget(question="What is it?", answer="x")
    parsed = []
    for x in lines:
        try:
            parsed.append(parse_answer(x["response"], like=like).answer)
        except AnswerParseError:  # acceptable for a model that did not learn the format
            pass
    assert parsed and all(p.startswith("label") for p in parsed), lines  # the overfit model answers in tags


def test_resume_matches_uninterrupted(data_mixed, tmp_path):
    over = {
        "train.max_steps": 6,
        "train.grad_accum": 2,
        "data.batch_size": 2,
        "ilora.dropout": 0.1,
        "train.save_every": 2,
    }
    full = train(tiny(**over), str(data_mixed), tmp_path / "full")
    train(tiny(**over, **{"train.stop_after": 3}), str(data_mixed), tmp_path / "cut")
    assert [x["step"] for x in read_log(tmp_path / "cut")] == [1, 2, 3]
    resumed = train(tiny(**over), str(data_mixed), tmp_path / "cut")
    assert [x["step"] for x in resumed] == [4, 5, 6]
    assert resumed[-1]["epoch"] >= 1  # the resume point and the rest cross an epoch boundary
    for a, b in zip(full[3:], resumed, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6, abs=1e-7)
        assert a["lr"] == pytest.approx(b["lr"])
    from safetensors.torch import load_file

    wa = load_file(str(tmp_path / "full/checkpoints/step_000006/adapter_model.safetensors"))
    wb = load_file(str(tmp_path / "cut/checkpoints/step_000006/adapter_model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6)
    assert sorted(p.name for p in (tmp_path / "full/checkpoints").glob("step_*")) == [
        "step_000004",
        "step_000006",
    ]


def test_too_long_samples_are_skipped_and_counted(data_mixed, tmp_path):
    lines = train(tiny(**{"train.max_steps": 3, "data.max_length": 98}), str(data_mixed), tmp_path / "skip")
    assert all(
        set(x["router"]["source"]) == {"s4"} for x in lines
    )  # ave prompts (100 tokens) do not fit, s4 (95) do
    assert sum(x["skipped_too_long"] for x in lines) >= 8 and sum(x["samples"] for x in lines) >= 3


def test_gradient_checkpointing_gives_the_same_losses(data_mixed, tmp_path):
    over = {"train.max_steps": 2, "ilora.dropout": 0.1}
    plain = train(tiny(**over), str(data_mixed), tmp_path / "plain")
    ckpt = train(tiny(**over, **{"train.gradient_checkpointing": True}), str(data_mixed), tmp_path / "ckpt")
    for a, b in zip(plain, ckpt, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-5)
        assert a["router"] == b["router"]  # recomputation in backward does not count twice


def test_modular_paradigm_trains_saves_projectors_and_predicts(data_mixed, tmp_path):
    from avuie.trainer.predict import load_run
    from safetensors.torch import load_file

    cfg = tiny(**{"model.paradigm": "modular", "train.max_steps": 2, "data.batch_size": 3})
    lines = train(cfg, str(data_mixed), tmp_path / "mod")
    assert len(lines) == 2 and len(lines[0]["router"]["source"]["ave"]["gate"]) == 3
    saved = load_file(str(tmp_path / "mod/checkpoints/step_000002/adapter_model.safetensors"))
    proj = {k: v for k, v in saved.items() if k.startswith(("vision_proj.", "audio_proj."))}
    assert len(proj) == 8 and any(k.endswith("lora_route.weight") and k.startswith("llm.") for k in saved)
    assert any(k.startswith("audio.layers.") for k in saved) and any(k.startswith("vision.") for k in saved)
    bundle, _ = load_run(tmp_path / "mod")
    state = bundle.model.state_dict()
    for k, v in proj.items():
        assert torch.equal(state[k], v), k
    out = tmp_path / "preds.jsonl"
    cli(
        "predict",
        "--run",
        str(tmp_path / "mod"),
        "--data",
        str(data_mixed),
        "--to",
        str(out),
        "--max-new-tokens",
        "4",
    )
    assert len(out.read_text().splitlines()) == 5


def test_train_from_server_url(data8, tmp_path):
    from avuie.shards.server import serve_in_thread

    with serve_in_thread(data8) as server:
        lines = train(tiny(**{"train.max_steps": 2}), server.url, tmp_path / "http")
    assert [x["samples"] for x in lines] == [4, 4]


def test_cli_errors(tmp_path, data8):
    result = runner.invoke(
        app, ["train", "--config", "no_such_config", "--data", str(data8), "--out", str(tmp_path)]
    )
    assert result.exit_code != 0 and "no_such_config" in result.output
    result = runner.invoke(
        app, ["predict", "--run", str(tmp_path), "--data", str(data8), "--to", str(tmp_path / "p")]
    )
    assert result.exit_code == 2 and "not a training run" in result.output
    result = runner.invoke(
        app, ["train", "--config", "crab_plus_omni7b", "--data", str(data8), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "model.path" in result.output
