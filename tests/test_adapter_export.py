"""`avuie adapter export`: a one-head run becomes a peft LoRA that PeftModel.from_pretrained loads and that
reproduces our model's outputs to 1e-5; a several-head run says why it is no peft LoRA and writes our format."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

sys.path.insert(0, str(Path(__file__).parent))
from avuie.trainer.config import load_config  # noqa: E402
from avuie.trainer.recipe import train  # noqa: E402
from shardkit import write_build  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from avuie.cli import app  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("exportdata")
    write_build(root, {"ave": {"train": [4]}}, frames=3, size=32, audio_seconds=1.0)
    return root


def trained(data, run, heads):
    cfg = load_config("tiny", ["train.max_steps=3", f"ilora.num_heads={heads}", "train.lr=0.05"])
    train(cfg, str(data), run)
    return run


def inputs_of(bundle, data):
    from avuie.trainer.data import Collator, open_stream
    from avuie.trainer.packing import NOT_MODEL_INPUTS

    items = list(open_stream(str(data), "train", shuffle=False))[:2]
    col = Collator(bundle.tokenizer, bundle.prep, bundle.media_tokens, bundle.system_prompt, 4096, train=True)
    return {k: v for k, v in col(items)[0].items() if k not in NOT_MODEL_INPUTS}


def test_one_head_exports_an_exact_peft_lora(data, tmp_path):
    from avuie.trainer.omni import load_omni_thinker
    from avuie.trainer.predict import load_run
    from peft import PeftModel

    run = trained(data, tmp_path / "run", heads=1)
    result = runner.invoke(app, ["adapter", "export", str(run), "--to", str(tmp_path / "peft")])
    assert result.exit_code == 0 and "exact" in result.output, result.output
    ours, _ = load_run(run, device="cpu")
    batch = inputs_of(ours, data)
    with torch.no_grad():
        want = ours.model(**batch, use_cache=False).logits
        base = load_omni_thinker(run / "base_model").eval()
        plain = base(**batch, use_cache=False).logits
        theirs = PeftModel.from_pretrained(base, str(tmp_path / "peft")).eval()
        got = theirs(**batch, use_cache=False).logits
    assert (want - plain).abs().max() > 1e-3  # the adapter changes the outputs
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert json.loads((tmp_path / "peft" / "adapter_config.json").read_text())["peft_type"] == "LORA"


def test_several_heads_are_no_peft_lora(data, tmp_path):
    run = trained(data, tmp_path / "run3", heads=3)
    result = runner.invoke(app, ["adapter", "export", str(run), "--to", str(tmp_path / "out")])
    assert result.exit_code == 0 and "router" in result.output and "cannot reproduce" in result.output
    assert "wrote a ilora adapter" in result.output
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "adapter_model.safetensors", "ilora_config.json", "LOADING.md"
    }  # fmt: skip
    assert "load_ilora" in (tmp_path / "out" / "LOADING.md").read_text()
    head = runner.invoke(app, ["adapter", "export", str(run), "--to", str(tmp_path / "h1"), "--head", "1"])
    assert head.exit_code == 0 and "approximate: head 1 only" in head.output
    from avuie.trainer.omni import load_omni_thinker
    from peft import PeftModel

    PeftModel.from_pretrained(load_omni_thinker(run / "base_model"), str(tmp_path / "h1"))  # loads
    bad = runner.invoke(app, ["adapter", "export", str(run), "--to", str(tmp_path / "h9"), "--head", "9"])
    assert bad.exit_code == 2 and "--head must be in 0..2" in bad.output
