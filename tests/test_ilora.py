"""I-LoRA: the layer, injection into real (tiny) transformers models, adapter save/load, equivalences."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from avuie.trainer.bundle import OMNI_MEDIA_TOKENS, build_offline_tokenizer, token_table  # noqa: E402
from avuie.trainer.data import Collator  # noqa: E402
from avuie.trainer.ilora import (  # noqa: E402
    ILoRAConfig,
    ILoRALinear,
    adapter_names,
    ilora_state_dict,
    inject_ilora,
    iter_ilora_layers,
    load_ilora,
    load_ilora_tensors,
    record_routing,
    save_ilora,
)
from avuie.trainer.omni import OmniPrep, tiny_omni_config  # noqa: E402
from avuie.trainer.packing import NOT_MODEL_INPUTS, row_segments  # noqa: E402
from avuie.trainer.placement import CRAB_PLUS  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return build_offline_tokenizer(tmp_path_factory.mktemp("tok"), vocab_size=400)


def tiny_thinker(tokenizer, seed=0):
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    torch.manual_seed(seed)
    return Qwen2_5OmniThinkerForConditionalGeneration(tiny_omni_config(tokenizer)).eval()


def av_items():
    """Three in-memory loader items: video+audio, image+audio, video only (uint8 frames, 16 kHz audio)."""
    g = torch.Generator().manual_seed(0)
    frames = lambda t: torch.randint(0, 256, (t, 3, 32, 32), dtype=torch.uint8, generator=g)  # noqa: E731
    audio = lambda s: torch.randn(int(16000 * s), generator=g) * 0.1  # noqa: E731
    video = {"kind": "video_frames", "role": "video", "files": [], "frame_count": 3, "duration": 3.0}
    image = {"kind": "image", "role": "image", "files": []}
    aud = {"kind": "audio", "role": "audio", "files": []}
    mk = lambda i, media, instr, m: {  # noqa: E731
        "key": f"k{i}",
        "sample": {
            "id": f"s/train/{i}",
            "source": "s",
            "family": "f",
            "media": media,
            "instruction": instr,
            "response": f"Heard and seen. <answer>dog {i}</answer>",
        },
        "media": m,
    }
    return [
        mk(0, [video, aud], "<video>\n<audio>\nWhat happens?", {"video": frames(3), "audio": audio(1.0)}),
        mk(1, [image, aud], "<image> <audio> Segment it.", {"image": frames(1)[0], "audio": audio(0.5)}),
        mk(2, [video], "Watch <video> and answer.", {"video": frames(2)}),
    ]


@pytest.fixture(scope="module")
def batch(tokenizer):
    prep = OmniPrep(token_table(tokenizer, OMNI_MEDIA_TOKENS), frame_size=56)
    inputs, _ = Collator(tokenizer, prep, prep.token_ids, "sys", 2048, train=True)(av_items())
    return inputs


def logits_of(model, inputs):
    return model(**{k: v for k, v in inputs.items() if k not in NOT_MODEL_INPUTS}, use_cache=False).logits


def crab_cfg(**kw):
    base = dict(r=8, alpha=16, num_heads=3, dropout=0.0, target_modules=CRAB_PLUS)
    return ILoRAConfig(**{**base, **kw})


def test_zero_b_equals_base_and_gradients_reach_every_part(tokenizer, batch):
    model = tiny_thinker(tokenizer)
    base = logits_of(model, batch)
    names = inject_ilora(model, crab_cfg())
    canonical = sorted(adapter_names(model).values())
    assert len(names) == len(canonical) == 2 * 7 + 2 * 3 + 2 * 3  # 2 blocks per tower in the tiny thinker
    assert "llm.1.self_attn.o_proj" in canonical and "audio.0.self_attn.k_proj" in canonical
    assert "vision.1.mlp.up_proj" in canonical
    assert not any(n.startswith("vision") and "attn" in n for n in canonical)
    assert any(
        n.endswith("audio_tower.layers.0.self_attn.k_proj") for n in names
    )  # module names of this release
    assert all(not p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)
    assert torch.equal(logits_of(model, batch), base)

    def grads():
        model.zero_grad()
        logits_of(model, batch).float().pow(2).mean().backward()
        return {n: layer for n, layer in iter_ilora_layers(model)}

    for name, layer in grads().items():  # B at zero: only the B heads receive gradient
        assert all(layer.lora_B.grad[h].abs().sum() > 0 for h in range(3)), name
    with torch.no_grad():
        for _, layer in iter_ilora_layers(model):
            layer.lora_B.normal_(0, 0.02)
    for name, layer in grads().items():
        assert layer.lora_A.grad.abs().sum() > 0, name
        assert layer.lora_route.grad.abs().sum() > 0, name
        assert all(layer.lora_B.grad[h].abs().sum() > 0 for h in range(3)), name


def test_one_head_equals_peft_lora():
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(
        vocab_size=128,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    base = Qwen2ForCausalLM(cfg).eval()
    ours, theirs = copy.deepcopy(base), copy.deepcopy(base)
    targets = ["q_proj", "v_proj", "down_proj"]
    inject_ilora(
        ours,
        ILoRAConfig(r=4, alpha=12, num_heads=1, dropout=0.0, target_modules=[rf".*\.{t}" for t in targets]),
    )
    theirs = get_peft_model(
        theirs, LoraConfig(r=4, lora_alpha=12, lora_dropout=0.0, target_modules=targets)
    ).eval()
    peft_layers = {
        n.removeprefix("base_model.model."): m
        for n, m in theirs.named_modules()
        if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {})
    }
    assert len(peft_layers) == 6
    with torch.no_grad():
        for name, layer in iter_ilora_layers(ours):
            layer.lora_B.normal_(0, 0.1)
            peft_layers[name].lora_A["default"].weight.copy_(layer.lora_A)
            peft_layers[name].lora_B["default"].weight.copy_(layer.lora_B[0])
    ids = torch.randint(0, 128, (2, 9))
    a, b = ours(input_ids=ids).logits, theirs(input_ids=ids).logits
    assert not torch.allclose(a, base(input_ids=ids).logits, atol=1e-3)  # the adapters do something
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_batched_heads_equal_head_loop_and_gates_are_a_distribution():
    torch.manual_seed(0)
    layer = ILoRALinear(torch.nn.Linear(24, 40), r=6, alpha=12, num_heads=4, dropout=0.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(3, 5, 24)
    torch.testing.assert_close(layer(x), layer.forward_head_loop(x), rtol=1e-5, atol=1e-5)
    g = layer.gates(x)
    assert g.shape == (3, 5, 4)
    torch.testing.assert_close(g.sum(-1), torch.ones(3, 5))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1] * 5, [1, 0, 0, 0, 0]])
    wrapper = torch.nn.Sequential(layer)
    with record_routing(wrapper, row_segments(mask)) as rec:
        wrapper(x)
    mean_gate, entropy = rec.per_sample()
    torch.testing.assert_close(mean_gate[2], g[2, 0])  # only the one valid token counts
    torch.testing.assert_close(mean_gate.sum(-1), torch.ones(3))
    assert (entropy > 0).all() and (entropy <= torch.log(torch.tensor(4.0)) + 1e-6).all()
    assert layer.recorder is None


def test_mixed_dtypes_bf16_base_fp32_adapter():
    layer = ILoRALinear(torch.nn.Linear(16, 8).to(torch.bfloat16), r=4, alpha=8, num_heads=3, dropout=0.1)
    out = layer.train()(torch.randn(2, 16, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and layer.lora_A.dtype == torch.float32
    out.float().sum().backward()
    assert layer.lora_B.grad is not None and layer.lora_B.grad.dtype == torch.float32


def test_save_load_identical_outputs_and_crab_names(tokenizer, batch, tmp_path):
    model = tiny_thinker(tokenizer)
    cfg = crab_cfg()
    inject_ilora(model, cfg)
    with torch.no_grad():
        for _, layer in iter_ilora_layers(model):
            layer.lora_B.normal_(0, 0.05)
    want = logits_of(model, batch)
    save_ilora(model, tmp_path / "adapter", cfg)
    fresh = tiny_thinker(tokenizer)
    inject_ilora(fresh, cfg)
    assert not torch.equal(logits_of(fresh, batch), want)
    assert load_ilora(fresh, tmp_path / "adapter") == []
    assert torch.equal(logits_of(fresh, batch), want)

    # the released Crab code's names: lora_A, lora_B0..lora_B{H-1} ([out, r] each), lora_route, PEFT prefix
    crab = {}  # written by the model code of the release it was trained with: module names, not canonical
    canonical = {c: n for n, c in adapter_names(model).items()}
    for key, value in ilora_state_dict(model).items():
        mod, part = key.removesuffix(".weight").rsplit(".", 1)
        mod = canonical[mod]
        if part == "lora_B":
            for h in range(value.shape[0]):
                crab[f"base_model.model.{mod}.lora_B{h}.weight"] = value[h].clone()
        else:
            crab[f"base_model.model.{mod}.{part}.weight"] = value.clone()
    other = tiny_thinker(tokenizer)
    inject_ilora(other, cfg)
    load_ilora_tensors(other, crab)
    assert torch.equal(logits_of(other, batch), want)

    with pytest.raises(ValueError, match="lacks"):
        load_ilora_tensors(other, {k: v for k, v in crab.items() if "audio_tower" not in k})
    bad = tiny_thinker(tokenizer)
    inject_ilora(bad, crab_cfg(r=4))
    with pytest.raises(ValueError, match="shape"):
        load_ilora(bad, tmp_path / "adapter")


def test_injection_errors():
    with pytest.raises(ValueError, match="target_modules is empty"):
        inject_ilora(torch.nn.Linear(2, 2), ILoRAConfig())
    with pytest.raises(ValueError, match="no nn.Linear"):
        inject_ilora(torch.nn.Sequential(torch.nn.Linear(2, 2)), ILoRAConfig(target_modules=[r"nothing"]))
    with pytest.raises(ValueError, match="r > 0"):
        ILoRALinear(torch.nn.Linear(2, 2), r=0, alpha=1, num_heads=1, dropout=0)


@pytest.mark.parametrize("heads", [1, 3])
def test_hand_written_backward_equals_autograd_and_the_head_loop(heads):
    torch.manual_seed(0)
    layer = ILoRALinear(torch.nn.Linear(24, 40), r=6, alpha=12, num_heads=heads, dropout=0.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(3, 5, 24, requires_grad=True)
    grads = {}
    for name, fn in (
        ("fused", layer.forward),
        ("autograd", layer.forward_autograd),
        ("loop", layer.forward_head_loop),
    ):
        layer.zero_grad(set_to_none=True)
        x.grad = None
        out = fn(x)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads[name] = (
            out.detach(),
            x.grad.clone(),
            *(p.grad.clone() for p in (layer.lora_A, layer.lora_B, layer.lora_route)),
        )
    for name in ("autograd", "loop"):
        for a, b in zip(grads["fused"], grads[name], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)

    # with dropout: the reference applies the mask the layer drew (same RNG state, same draw)
    p = 0.3
    layer.dropout = torch.nn.Dropout(p)
    layer.train().zero_grad(set_to_none=True)
    x.grad = None
    torch.manual_seed(7)
    out = layer(x)
    out.square().sum().backward()
    fused = (out.detach(), x.grad.clone(), layer.lora_A.grad.clone(), layer.lora_route.grad.clone())
    torch.manual_seed(7)
    keep = torch.empty_like(x).bernoulli_(1 - p).bool()
    layer.zero_grad(set_to_none=True)
    x.grad = None
    z = torch.nn.functional.linear(x * keep / (1 - p), layer.lora_A)
    g = layer.gates(x)
    delta = sum(g[..., h : h + 1] * torch.nn.functional.linear(z, layer.lora_B[h]) for h in range(heads))
    ref = layer.base(x) + layer.scaling * delta
    ref.square().sum().backward()
    assert not keep.all()
    for a, b in zip(fused, (ref.detach(), x.grad, layer.lora_A.grad, layer.lora_route.grad), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # float32 sums in another order
