"""The bundled trainer end to end on CPU: tiny Qwen2.5-Omni thinker / modular models, shards from tests/shardkit.

Covers: chat template + loss mask + padding, overfitting 8 samples, exact resume, resume on a longer schedule,
`avuie predict` + tag parsing against each sample's target, the modular paradigm, training from the shard
server's URL (with its token), and clear errors for missing or unreachable data.
"""

from __future__ import annotations

import json
import math
import socket
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).parent))
from avuie.schemas import TARGET_TYPES, AnswerParseError, SingleEventTarget, parse_answer, render_answer  # noqa: E402
from avuie.trainer.config import load_config  # noqa: E402
from avuie.trainer.data import IGNORE, Collator, PromptTooLong, open_stream  # noqa: E402
from avuie.trainer.recipe import read_log, train  # noqa: E402
from shardkit import write_build, write_shard  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from avuie.cli import app  # noqa: E402

runner = CliRunner()


AVE_LABELS = ("Church bell", "Bark")


def give_targets(root: Path) -> None:
    """Give every AVE sample of a shardkit build a real single-event target and the response rendered from it.

    clipN: AVE_LABELS[N % 2] over the whole clip [0, 10] (the tiny model learns this format reliably in 30 steps;
    with varying ranges it sometimes garbles the numbers).
    """
    for path in sorted(root.glob("shards/*/*.tar")):
        with tarfile.open(path) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        samples = []
        for name in sorted(n for n in members if n.endswith(".json")):
            key = name.removesuffix(".json")
            sample = json.loads(members[name])
            i = int(sample["native_id"].removeprefix("clip"))
            target = SingleEventTarget(label=AVE_LABELS[i % 2], start=0, end=10)
            answer = render_answer(target)
            sample.update(
                target=target.model_dump(), answer=answer, response=f"{sample['reasoning']} {answer}"
            )
            files = {
                n[len(key) + 1 :]: data
                for n, data in members.items()
                if n.startswith(key + ".") and n != name
            }
            samples.append((sample, files))
        write_shard(path, samples)


@pytest.fixture(scope="module")
def data8(tmp_path_factory):
    """8 train samples (one source) + 3 test samples, with single-event targets: the fixed set to overfit."""
    root = tmp_path_factory.mktemp("data8")
    write_build(root, {"ave": {"train": [8], "test": [3]}}, frames=2, size=32, audio_seconds=1.0)
    give_targets(root)
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


def targets_of(data: Path, split: str) -> dict[str, object]:
    """{sample id: its ground-truth target as the pydantic model of its kind}."""
    out = {}
    for item in open_stream(str(data), split, shuffle=False):
        target = item["sample"]["target"]
        out[item["sample"]["id"]] = TARGET_TYPES[target["kind"]].model_validate(target)
    return out


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
        "64",
        "--batch-size",
        "2",
    )
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["id"] for x in lines) == [f"ave/test/clip{i:05d}" for i in range(3)]
    targets = targets_of(data8, "test")
    failed = {}
    for x in lines:
        try:  # each response against its own sample's ground-truth target
            parse_answer(x["response"], like=targets[x["id"]])
        except AnswerParseError as error:
            failed[x["id"]] = (x["response"], str(error))
    assert not failed, failed  # every response of the overfit model ends with a well-formed tagged answer


@pytest.mark.parametrize("pack", [False, True])
def test_resume_matches_uninterrupted(data_mixed, tmp_path, pack):
    over = {
        "train.max_steps": 6,
        "train.grad_accum": 2,
        "data.batch_size": 2,
        "ilora.dropout": 0.1,
        "train.save_every": 2,
        "data.pack": pack,
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


def test_resume_with_more_steps_follows_the_new_schedule(data8, data_mixed, tmp_path):
    run = tmp_path / "run"
    cli("train", "--config", "tiny", "--data", str(data8), "--out", str(run), "--max-steps", "2")
    output = cli("train", "--config", "tiny", "--data", str(data8), "--out", str(run), "--max-steps", "4")
    log = read_log(run)
    assert [x["step"] for x in log] == [1, 2, 3, 4]
    # tiny: lr 0.01, warmup round(0.1 * max_steps) = 0, cosine to 0 at max_steps; step s runs at factor(s - 1)
    cosine = [0.01 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert [x["lr"] for x in log] == pytest.approx(
        [0.01, 0.005, *cosine[2:]]
    )  # steps 3, 4: the 4-step schedule
    assert log[2]["schedule_changed"]["from"] == {"max_steps": 2} and log[2]["schedule_changed"]["to"] == {
        "max_steps": 4
    }
    assert "schedule_changed" not in log[3] and "schedule changed (max_steps 2 -> 4)" in output
    assert "warning" not in output  # same data (the recorded source is the resolved path)
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["source"] == str(data8.resolve())
    # other data on resume: a warning, not an error
    output = cli(
        "train", "--config", "tiny", "--data", str(data_mixed), "--out", str(run), "--max-steps", "5"
    )
    assert "warning: --data" in output and str(data8.resolve()) in output
    assert [x["step"] for x in read_log(run)] == [1, 2, 3, 4, 5]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_missing_or_unreachable_data_is_a_clear_error(data8, overfit_run, tmp_path):
    for data in (f"http://127.0.0.1:{free_port()}/", str(tmp_path / "nonexistent")):
        run = tmp_path / "run"
        result = runner.invoke(app, ["train", "--config", "tiny", "--data", data, "--out", str(run)])
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.output.startswith("error: ") and data.rstrip("/") in result.output, result.output
        assert "Traceback" not in result.output and not run.exists()  # checked before anything is written
        result = runner.invoke(
            app, ["predict", "--run", str(overfit_run), "--data", data, "--to", str(tmp_path / "p.jsonl")]
        )
        assert result.exit_code == 2 and isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.output.startswith("error: ") and data.rstrip("/") in result.output, result.output
        assert not (tmp_path / "p.jsonl").exists()
    # the data is checked before the (7B) model is loaded: the missing model path is not what fails
    args = ["train", "--config", "crab_plus_omni7b", "--set", f"model.path={tmp_path / 'no_model'}"]
    result = runner.invoke(
        app, [*args, "--data", str(tmp_path / "nonexistent"), "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "nonexistent" in result.output and "no_model" not in result.output


def test_token_reaches_the_server_and_is_never_saved(data8, tmp_path, monkeypatch):
    from avuie.shards.server import serve_in_thread

    monkeypatch.delenv("AVUIE_SERVE_TOKEN", raising=False)
    run = tmp_path / "run"
    with serve_in_thread(data8, token="s3cret-token") as server:
        base = ["--config", "tiny", "--data", server.url, "--out", str(run), "--max-steps", "1"]
        result = runner.invoke(app, ["train", *base])
        assert result.exit_code == 2 and "--token" in result.output and "401" in result.output, result.output
        assert "Traceback" not in result.output and not run.exists()
        cli("train", *base, "--token", "s3cret-token")
        saved = (run / "config.yaml").read_text()
        assert "s3cret" not in saved and yaml.safe_load(saved)["data"]["token"] == "***"
        assert not any(
            "s3cret" in p.read_text(errors="ignore")
            for p in run.rglob("*")
            if p.suffix in (".json", ".jsonl", ".yaml")
        )
        to = tmp_path / "p.jsonl"
        pred = ["predict", "--run", str(run), "--data", server.url, "--to", str(to), "--max-new-tokens", "2"]
        result = runner.invoke(app, pred)
        assert result.exit_code == 2 and "--token" in result.output, result.output
        result = runner.invoke(
            app, pred, env={"AVUIE_SERVE_TOKEN": "s3cret-token"}
        )  # the server's env variable
        assert result.exit_code == 0, result.output
        assert len(to.read_text().splitlines()) == 3


def test_too_long_samples_are_skipped_and_counted(data_mixed, tmp_path):
    lines = train(tiny(**{"train.max_steps": 3, "data.max_length": 94}), str(data_mixed), tmp_path / "skip")
    assert all(
        set(x["router"]["source"]) == {"s4"} for x in lines
    )  # ave prompts (97 tokens) do not fit, s4 (89) do
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
    assert any(k.startswith("audio.0.self_attn") for k in saved) and any(
        k.startswith("vision.") for k in saved
    )
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


def test_predict_covers_every_test_split_by_default(overfit_run, tmp_path):
    from tests.buildkit import build_source

    stats = build_source("ref_avs", tmp_path / "ref_avs")
    tests = {s: v["written"] for s, v in stats["splits"].items() if s.startswith("test")}
    assert set(tests) >= {"test_s", "test_u", "test_n"}  # Ref-AVS has no plain "test" split
    to = tmp_path / "p.jsonl"
    cli("predict", "--run", str(overfit_run), "--data", str(tmp_path / "ref_avs"), "--to", str(to),
        "--max-new-tokens", "2")  # fmt: skip
    ids = [json.loads(line)["id"] for line in to.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == sum(tests.values())
    assert {i.split("/")[1] for i in ids} == set(tests)
    one = tmp_path / "one.jsonl"
    cli("predict", "--run", str(overfit_run), "--data", str(tmp_path / "ref_avs"), "--to", str(one),
        "--split", "test_n", "--max-new-tokens", "2")  # fmt: skip
    assert len(one.read_text().splitlines()) == tests["test_n"]


def test_validation_loss_and_tensorboard(data_mixed, tmp_path, monkeypatch):
    over = {"train.max_steps": 4, "train.eval_every": 2, "data.eval_split": "test", "train.tensorboard": True}
    lines = train(tiny(**over), str(data_mixed), tmp_path / "run")
    val = [x for x in read_log(tmp_path / "run") if "val_loss" in x]
    assert [x["step"] for x in val] == [2, 4] and all(math.isfinite(x["val_loss"]) for x in val)
    assert val[1]["val_loss"] < val[0]["val_loss"]  # the held-out loss moves with training
    assert len(lines) == 6 and list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    with pytest.raises(ValueError, match="data.eval_split"):
        train(tiny(**{"train.eval_every": 2}), str(data_mixed), tmp_path / "noval")
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith(("torch.utils.tensorboard", "tensorboard")):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    result = runner.invoke(app, ["train", "--config", "tiny", "--data", str(data_mixed), "--out",
                                 str(tmp_path / "tb"), "--set", "train.tensorboard=true"])  # fmt: skip
    assert result.exit_code == 2 and "pip install tensorboard" in result.output
    assert not (tmp_path / "tb").exists()  # nothing written before the error
