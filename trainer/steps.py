"""What one training step is made of: batches from the shared loader, the loss, router statistics.

Nothing here synchronises with the device inside a step: token counts come from the CPU copy of the labels
before the batch moves, the labelled positions are gathered by index (not by a boolean mask), and router
statistics and losses stay device tensors until a log line needs them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .data import IGNORE
from .parallel import Dist


class BatchSource:
    """Endless micro-batches from an AVStream through shards.loader.StatefulLoader, epoch after epoch.

    Knows how far it got (`state_dict`) and how long it waited for data (`wait_s`).
    """

    def __init__(self, stream, batch_size: int, num_workers: int, collator, seed: int, pin: bool = False):
        from avuie.shards.loader import StatefulLoader

        self.loader = StatefulLoader(
            stream,
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=collator,
            batch_len=lambda batch: len(batch[1]),  # (inputs, meta): meta has one entry per stream item
            generator=torch.Generator().manual_seed(seed),  # making an iterator leaves the global RNG alone
            pin_memory=pin,
        )
        self.epoch, self.skipped, self._it = stream.epoch, 0, None

    def next(self) -> tuple[dict[str, torch.Tensor], list[dict]]:
        """The next (inputs, meta) micro-batch of kept samples; starts the next epoch when one ends."""
        empty_epochs = 0
        while empty_epochs < 2:
            if self._it is None:
                self._it = iter(self.loader)
            try:
                inputs, meta = next(self._it)
            except StopIteration:
                self.epoch, self._it = self.epoch + 1, None
                self.loader.set_epoch(self.epoch)
                empty_epochs += 1
                continue
            kept = [m for m in meta if not m.get("skipped")]
            self.skipped += len(meta) - len(kept)  # skipped samples count as consumed: resume goes past them
            if inputs is not None:
                return inputs, kept
        raise RuntimeError(
            "the data stream yields no usable samples for this rank (empty split, or all too long?)"
        )

    def state_dict(self) -> dict:
        """Epoch and stream items consumed in it by this rank."""
        return {"epoch": self.epoch, "consumed": self.loader.state_dict()["consumed"]}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a saved position: same epoch order, the first `consumed` items skipped (not read)."""
        self.epoch, self._it = int(state["epoch"]), None
        self.loader.set_epoch(self.epoch)
        self.loader.load_state_dict({**self.loader.state_dict(), **state})


def label_index(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(flat positions [n] of the labelled next-token predictions in logits[:, :-1], their targets [n]).

    Computed on the CPU copy of the labels, so gathering them on the device needs no synchronisation.
    """
    targets = labels[:, 1:].reshape(-1)
    where = (targets != IGNORE).nonzero().squeeze(1)
    b, t = labels.shape
    rows, cols = where // (t - 1), where % (t - 1)
    return rows * t + cols, targets[where]


def _chunk_loss(hidden: torch.Tensor, weight: torch.Tensor, bias, targets: torch.Tensor) -> torch.Tensor:
    logits = F.linear(hidden, weight, bias).float()
    return F.cross_entropy(logits, targets, reduction="sum")


def token_loss_sum(
    hidden: torch.Tensor, head: torch.nn.Linear, index: torch.Tensor, targets: torch.Tensor, chunk: int
) -> torch.Tensor:
    """Sum of next-token cross-entropy over the labelled positions, in float32, from the last hidden states.

    The vocabulary projection runs `chunk` positions at a time under activation checkpointing, so at most
    chunk x vocab logits exist at once, forward or backward (chunk 0: one projection of all labelled positions,
    logits kept for backward, as a plain `lm_head` + cross_entropy would).
    """
    flat = hidden.reshape(-1, hidden.shape[-1]).index_select(0, index)
    if not chunk or flat.shape[0] <= chunk:
        if not chunk:
            return _chunk_loss(flat, head.weight, head.bias, targets)
        return checkpoint(_chunk_loss, flat, head.weight, head.bias, targets, use_reentrant=False)
    total = flat.new_zeros((), dtype=torch.float32)
    for start in range(0, flat.shape[0], chunk):
        part = slice(start, start + chunk)
        total = total + checkpoint(
            _chunk_loss, flat[part], head.weight, head.bias, targets[part], use_reentrant=False
        )
    return total


class RouterStats:
    """Per source and family: the mean router weight of each head and the mean gate entropy since the last log.

    `add` keeps device tensors; `summary` moves them to the host once per log line.
    """

    def __init__(self):
        self.meta: list[dict] = []
        self.gates: list[torch.Tensor] = []
        self.entropy: list[torch.Tensor] = []

    def add(self, meta: list[dict], per_sample: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        """Keep one micro-batch's per-sample (gates [N,H], entropy [N]) with each sample's meta."""
        if per_sample is None:
            return
        self.meta += meta
        self.gates.append(per_sample[0].detach())
        self.entropy.append(per_sample[1].detach())

    def _rows(self, d: Dist) -> list[tuple[str, str, list[float], float]]:
        rows = []
        if self.gates:
            gates = torch.cat(self.gates).cpu().tolist()
            entropy = torch.cat(self.entropy).cpu().tolist()
            for m, g, e in zip(self.meta, gates, entropy, strict=True):
                rows.append((str(m.get("source")), str(m.get("family")), g, e))
        self.meta, self.gates, self.entropy = [], [], []
        if d.world > 1:
            gathered: list = [None] * d.world
            dist.all_gather_object(gathered, rows)
            rows = [r for part in gathered for r in part]
        return rows

    def summary(self, d: Dist) -> dict:
        """Gathered over ranks: {"source": {name: {"gate": [..H], "entropy": x, "n": k}}, "family": {...}}."""
        rows = self._rows(d)
        out: dict[str, dict] = {"source": {}, "family": {}}
        for field, idx in (("source", 0), ("family", 1)):
            groups: dict[str, list] = {}
            for row in rows:
                groups.setdefault(row[idx], []).append(row)
            for name, group in sorted(groups.items()):
                out[field][name] = {
                    "gate": [round(float(x), 5) for x in np.mean([r[2] for r in group], axis=0)],
                    "entropy": round(float(np.mean([r[3] for r in group])), 5),
                    "n": len(group),
                }
        return out
