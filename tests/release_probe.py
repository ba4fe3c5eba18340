"""Run by tests/test_trainer_releases.py under another transformers release (PYTHONPATH overlay):

    python tests/release_probe.py RUN DATA OUT.pt

Loads RUN's latest adapter with `avuie.trainer.predict.load_run` and saves the logits of the first two train
samples (prompt + response) and the transformers version to OUT.pt.
"""

from __future__ import annotations

import sys

import torch


def probe(run: str, data: str, out: str) -> None:
    """Write {"version", "logits"} of RUN's model on DATA's first two train samples to `out`."""
    import transformers
    from avuie.trainer.data import Collator, open_stream
    from avuie.trainer.predict import load_run

    bundle, _ = load_run(run, device="cpu")
    items = list(open_stream(data, "train", shuffle=False))[:2]
    col = Collator(bundle.tokenizer, bundle.prep, bundle.media_tokens, bundle.system_prompt, 4096, train=True)
    inputs, _ = col(items)
    with torch.no_grad():
        logits = bundle.forward(bundle.model, inputs)
    torch.save({"version": transformers.__version__, "logits": logits}, out)


if __name__ == "__main__":
    probe(*sys.argv[1:4])
