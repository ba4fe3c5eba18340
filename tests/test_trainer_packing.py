"""Sequence packing: packed rows give the same loss, gradients and per-sample router statistics as unpacked
batches (tiny Qwen2.5-Omni thinker with video, image and audio, so the 3-D mrope positions matter; tiny modular
model with plain positions), and attention never crosses samples."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

sys.path.insert(0, str(Path(__file__).parent))
from avuie.trainer.config import load_config  # noqa: E402
from avuie.trainer.data import Collator, open_stream  # noqa: E402
from avuie.trainer.ilora import ILoRAConfig, inject_ilora, iter_ilora_layers, record_routing  # noqa: E402
from avuie.trainer.models import build_bundle  # noqa: E402
from avuie.trainer.packing import block_causal_mask, pack_examples  # noqa: E402
from avuie.trainer.steps import label_index, token_loss_sum  # noqa: E402
from shardkit import write_build  # noqa: E402


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    """Loader items: AVE (3 video frames + audio) and S4 (image + audio) samples of a real shardkit build."""
    root = tmp_path_factory.mktemp("packdata")
    write_build(root, {"ave": {"train": [3]}, "s4": {"train": [2]}}, frames=3, size=32, audio_seconds=1.0)
    out = list(open_stream(str(root), "train", shuffle=False))
    return sorted(out, key=lambda i: i["sample"]["source"])[:4]  # ave, ave, ave, s4


def adapted(paradigm: str, tmp_path):
    cfg = load_config("tiny", [f"model.paradigm={paradigm}"]).model.model_dump(exclude_none=True)
    bundle, _ = build_bundle(cfg, tmp_path, seed=0)
    torch.manual_seed(0)
    inject_ilora(
        bundle.model,
        ILoRAConfig(r=4, alpha=8, num_heads=3, dropout=0.0, target_modules=bundle.ilora_patterns),
    )
    with torch.no_grad():
        for _, layer in iter_ilora_layers(bundle.model):
            layer.lora_B.normal_(0, 0.2)
    bundle.mark_trainable()
    head = bundle.detach_head()
    return bundle.model.eval() and bundle, head


def loss_and_stats(bundle, head, inputs):
    index, targets = label_index(inputs["labels"])
    samples = int(inputs["segments"].max()) + 1
    with record_routing(bundle.model, inputs["segments"], bundle.llm_prefix, samples) as rec:
        hidden = bundle.forward(bundle.model, inputs)
    loss = token_loss_sum(hidden, head, index, targets, 7) / targets.numel()
    bundle.model.zero_grad(set_to_none=True)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in bundle.model.named_parameters() if p.grad is not None}
    return loss.detach(), rec.per_sample(), grads


@pytest.mark.parametrize("paradigm", ["omni", "modular"])
def test_packed_equals_unpacked(items, tmp_path, paradigm):
    bundle, head = adapted(paradigm, tmp_path)
    col = Collator(bundle.tokenizer, bundle.prep, bundle.media_tokens, "sys", 4096, train=True)
    plain, meta = col(items)
    packed, meta_packed = Collator(**{**col.__dict__, "pack": True})(items)
    assert [m["id"] for m in meta] == [m["id"] for m in meta_packed]
    assert packed["input_ids"].shape[0] == 1 and plain["input_ids"].shape[0] == 4  # all four in one row
    assert int(packed["attention_mask"].sum()) == int(plain["attention_mask"].sum())
    a, stats_a, grads_a = loss_and_stats(bundle, head, plain)
    b, stats_b, grads_b = loss_and_stats(bundle, head, packed)
    assert abs(float(a) - float(b)) < 1e-4, (float(a), float(b))
    torch.testing.assert_close(stats_a[0], stats_b[0], rtol=1e-4, atol=1e-5)  # router statistics per sample
    torch.testing.assert_close(stats_a[1], stats_b[1], rtol=1e-4, atol=1e-5)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for k in grads_a:
        torch.testing.assert_close(grads_a[k], grads_b[k], rtol=1e-3, atol=1e-5)

    # without the block mask and the per-sample positions the loss is different: the test can fail
    leaky = {k: v for k, v in packed.items() if k not in ("pack_index", "position_ids")}
    c, _, _ = loss_and_stats(bundle, head, leaky)
    assert abs(float(c) - float(a)) > 1e-3


def test_rows_split_at_max_length_and_mask_is_block_causal():
    class Ex:
        def __init__(self, n):
            self.input_ids, self.labels = list(range(1, n + 1)), [-100] * (n - 1) + [5]

    packed = pack_examples([Ex(3), Ex(4), Ex(2), Ex(4)], 0, -100, 8)  # 3+4 fit 8; 2+4 in the next row
    assert packed["segments"].tolist() == [[0, 0, 0, 1, 1, 1, 1], [2, 2, 3, 3, 3, 3, -1]]
    assert packed["position_ids"][1].tolist() == [0, 1, 0, 1, 2, 3, 0]
    assert packed["pack_index"][3].tolist() == [9, 10, 11, 12]
    mask = block_causal_mask(packed["segments"], torch.float32)[:, 0] == 0
    assert mask[0, 4].tolist() == [False, False, False, True, True, False, False]  # own sample, causal
    assert mask[1, 6].tolist() == [False] * 6 + [True]  # padding sees itself only


def test_selective_checkpointing_keeps_the_towers_activations(items, tmp_path):
    saved = {}
    for scope in (False, "llm", True):
        bundle, head = adapted("omni", tmp_path)
        bundle.model.train()
        if scope:
            bundle.enable_checkpointing(scope)
        col = Collator(bundle.tokenizer, bundle.prep, bundle.media_tokens, "sys", 4096, train=True)
        inputs, _ = col(items)
        count = [0]

        def pack(t, count=count):
            count[0] += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss_and_stats(bundle, head, inputs)
        saved[scope] = count[0]
    assert saved[True] < saved["llm"] < saved[False]
