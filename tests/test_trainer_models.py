"""Model assembly and media preprocessing of the trainer: real-path loading, processor equivalences, configs."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from avuie.trainer.bundle import build_offline_tokenizer  # noqa: E402
from avuie.trainer.config import DataConfig, load_config, shipped_configs  # noqa: E402
from avuie.trainer.media import (  # noqa: E402
    CLIP_MEAN,
    CLIP_STD,
    log_mel,
    normalize,
    omni_audio_tokens,
    qwen_patchify,
    seconds_per_frame,  # noqa: E402
)
from avuie.trainer.models import build_bundle  # noqa: E402
from avuie.trainer.omni import tiny_omni_config  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from avuie.cli import app  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def saved_thinker(tmp_path_factory):
    """A tiny random thinker saved with save_pretrained, its tokenizer beside it, and reference logits."""
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    folder = tmp_path_factory.mktemp("thinker")
    tok = build_offline_tokenizer(folder, vocab_size=400)
    torch.manual_seed(1)
    model = Qwen2_5OmniThinkerForConditionalGeneration(tiny_omni_config(tok)).eval()
    model.save_pretrained(str(folder))
    ids = torch.randint(20, len(tok), (2, 7))
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    return folder, model, ids, ref


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


def test_saved_thinker_loads_through_the_real_path(saved_thinker):
    folder, _, ids, ref = saved_thinker
    bundle, cfg = build_bundle({"paradigm": "omni", "path": str(folder)})
    assert bundle.paradigm == "omni" and cfg["path"] == str(folder)
    assert torch.equal(logits(bundle.model.eval(), ids), ref)
    assert bundle.media_tokens["video_frames"][1] == bundle.tokenizer.convert_tokens_to_ids("<|VIDEO|>")
    assert bundle.media_tokens["audio"][0] == bundle.tokenizer.convert_tokens_to_ids("<|audio_bos|>")


def test_full_omni_release_layout_loads_the_thinker(saved_thinker, tmp_path):
    """The Qwen2.5-Omni release: config model_type qwen2_5_omni, weights prefixed `thinker.` beside talker ones."""
    from safetensors.torch import save_file
    from transformers import Qwen2_5OmniConfig

    folder, model, ids, ref = saved_thinker
    full = Qwen2_5OmniConfig(thinker_config=model.config.to_dict(), enable_audio_output=False)
    full.save_pretrained(str(tmp_path))
    tensors = {f"thinker.{k}": v.contiguous() for k, v in model.state_dict().items()}
    tensors["talker.codec_head.weight"] = torch.zeros(2, 2)  # other parts of the release are ignored
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "qwen2_5_omni"
    bundle, _ = build_bundle({"paradigm": "omni", "path": str(tmp_path), "tokenizer": str(folder)})
    assert torch.equal(logits(bundle.model.eval(), ids), ref)


def test_bad_model_configs(tmp_path):
    with pytest.raises(ValueError, match="paradigm"):
        build_bundle({"paradigm": "nope"})
    with pytest.raises(ValueError, match="model.path"):
        build_bundle({"paradigm": "omni"})
    with pytest.raises(FileNotFoundError, match="config.json"):
        build_bundle({"paradigm": "omni", "path": str(tmp_path)})
    with pytest.raises(ValueError, match="model.llm"):
        build_bundle({"paradigm": "modular"})


def test_patchify_matches_the_qwen2vl_image_processor():
    from transformers import Qwen2VLImageProcessorPil

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (56, 84, 3), dtype=np.uint8)
    ref = Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=56 * 84)(
        images=[image], return_tensors="pt"
    )
    frames = normalize(torch.from_numpy(image).permute(2, 0, 1)[None].float(), CLIP_MEAN, CLIP_STD)
    mine, grid = qwen_patchify(frames)
    assert list(grid) == ref["image_grid_thw"][0].tolist() == [1, 4, 6]
    torch.testing.assert_close(mine, ref["pixel_values"].float(), rtol=1e-5, atol=1e-5)
    video, vgrid = qwen_patchify(torch.zeros(3, 3, 28, 28))  # odd frame count: last frame repeated
    assert vgrid == (2, 2, 2) and video.shape == (8, 3 * 2 * 14 * 14)
    with pytest.raises(ValueError, match="multiple"):
        qwen_patchify(torch.zeros(2, 3, 30, 28))


def test_audio_features_and_token_counts():
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniAudioEncoder

    wave = torch.sin(torch.arange(16000 * 2) / 7.0) * 0.3
    feats, valid = log_mel(wave)
    assert feats.shape == (128, 200) and valid == 200
    fixed, valid = log_mel(wave[:8000], num_mel_bins=80, num_frames=100)
    assert fixed.shape == (80, 100) and valid == 50
    for n in (100, 200, 997, 1000):
        expect = Qwen2_5OmniAudioEncoder._get_feat_extract_output_lengths(None, torch.tensor(n))[1]
        assert omni_audio_tokens(n) == int(expect)
    with pytest.raises(ValueError, match="too short"):
        log_mel(torch.zeros(100))
    assert seconds_per_frame({"frame_times": [0.5, 1.5, 2.5]}, 3) == 1.0
    assert seconds_per_frame({"duration": 4.0}, 4) == 1.0 and seconds_per_frame({}, 4) == 1.0


def test_configs(tmp_path):
    assert {"crab_plus_omni7b", "modular", "tiny"} <= set(shipped_configs())
    crab = load_config("crab_plus_omni7b", ["model.path=/models/omni", "train.max_steps=7"])
    assert crab.model.path == "/models/omni" and crab["train"].max_steps == 7
    assert crab.ilora.model_dump() == {
        "r": 128,
        "alpha": 256,
        "num_heads": 3,
        "dropout": 0.1,
        "target_modules": None,
    }
    assert crab.model.dtype == "bfloat16"
    path = tmp_path / "mine.yaml"
    path.write_text("model: {paradigm: omni, tiny: true}\ntrain: {max_steps: 3}\n")
    assert load_config(path).train.max_steps == 3 and load_config(path).data == DataConfig()
    with pytest.raises(FileNotFoundError, match="tiny"):
        load_config("nonexistent")
    path.write_text("modle: {}\n")
    with pytest.raises(ValueError, match="modle: unknown key"):
        load_config(path)
    with pytest.raises(ValueError, match="section.key=value"):
        load_config("tiny", ["novalue"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lrr=0.1", "train.lrr: unknown key"),
        ("train.max_steps=lots", "train.max_steps: "),
        ("data.mix_by=shard", "data.mix_by: "),
        ("ilora.r=0", "ilora.r: "),
        ("train.betas=[0.9]", "train.betas"),
    ],
)
def test_config_errors_name_the_key(override, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        load_config("tiny", [override])
    result = runner.invoke(app, ["train", "--config", "tiny", "--data", ".", "--out", "x", "--set", override])
    assert result.exit_code == 2 and message.split(":")[0] in result.output


def test_audio_windows_select_what_crab_plus_hears():
    import torch
    from avuie.trainer.media import select_windows

    wave = torch.arange(60 * 16000, dtype=torch.float32)
    meta = {"sample_rate": 16000, "segments": [[6.0 * i, 6.0 * i + 2.0] for i in range(10)]}
    out = select_windows(wave, meta)
    assert out.numel() == 10 * 2 * 16000
    assert out[0] == 0 and out[2 * 16000] == 6 * 16000  # the second window starts at 6 s
    contiguous = {"segments": [[float(t), float(t + 1)] for t in range(60)]}
    assert torch.equal(select_windows(wave, contiguous), wave)
    assert torch.equal(select_windows(wave, {}), wave)
