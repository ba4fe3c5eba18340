"""Sequence packing: several samples share one row up to `data.max_length`, and nothing crosses a sample boundary.

The collator packs a micro-batch's samples greedily, in order, into as few rows as fit (`pack_examples`). Each
packed batch carries, besides input_ids / labels / attention_mask:

- `segments` [R, T]: which sample of the micro-batch a position belongs to (-1: padding). Attention is the
  block-diagonal causal mask built from it (`block_causal_mask`): a token sees only earlier tokens of its own
  sample; router statistics are summed per sample from it (ilora.RoutingRecorder).
- `position_ids` [R, T]: positions restarting at 0 for every sample (the text positions).
- `pack_index` [N, L]: for the unpacked layout (sample n, token l) the flat position in the packed batch
  (-1 past the sample's end). The Omni thinker's 3-D multimodal (mrope) positions are computed by the model's
  own `get_rope_index` on that unpacked layout and scattered into the packed rows (`packed_mrope_positions`),
  so every sample gets exactly the positions it would get alone.

Unpacked batches carry `segments` too (sample n is row n), so the step and the router statistics do not care
which layout they got. The loss is a sum over labelled tokens divided by their count: packed equals unpacked.
"""

from __future__ import annotations

import torch

NOT_MODEL_INPUTS = ("labels", "segments", "pack_index")


def pack_examples(examples: list, pad_id: int, ignore: int, max_length: int) -> dict[str, torch.Tensor]:
    """Packed input_ids, labels, attention_mask, segments, position_ids [R, T] and pack_index [N, L].

    `examples` have `.input_ids` and `.labels` (lists). Rows are filled in sample order (next-fit), so the
    placeholders of the packed rows meet the batch's media tensors in the order the collator stacked them.
    """
    lengths = [len(e.input_ids) for e in examples]
    rows = plan_rows_in_order(lengths, max_length)
    width = max(sum(lengths[n] for n in row) for row in rows)
    shape = (len(rows), width)
    ids = torch.full(shape, pad_id, dtype=torch.long)
    labels = torch.full(shape, ignore, dtype=torch.long)
    segments = torch.full(shape, -1, dtype=torch.long)
    positions = torch.zeros(shape, dtype=torch.long)
    pack_index = torch.full((len(examples), max(lengths)), -1, dtype=torch.long)
    for r, row in enumerate(rows):
        at = 0
        for n in row:
            k = lengths[n]
            ids[r, at : at + k] = torch.tensor(examples[n].input_ids)
            labels[r, at : at + k] = torch.tensor(examples[n].labels)
            segments[r, at : at + k] = n
            positions[r, at : at + k] = torch.arange(k)
            pack_index[n, :k] = r * width + at + torch.arange(k)
            at += k
    return {
        "input_ids": ids,
        "labels": labels,
        "attention_mask": (segments >= 0).long(),
        "segments": segments,
        "position_ids": positions,
        "pack_index": pack_index,
    }


def plan_rows_in_order(lengths: list[int], max_length: int) -> list[list[int]]:
    """Rows filled strictly in sample order (next-fit): media tensors stay in placeholder order."""
    rows: list[list[int]] = [[]]
    free = max_length
    for number, length in enumerate(lengths):
        if rows[-1] and length > free:
            rows.append([])
            free = max_length
        rows[-1].append(number)
        free -= length
    return rows


def row_segments(attention_mask: torch.Tensor) -> torch.Tensor:
    """Segments of an unpacked batch: row number where the mask is set, -1 elsewhere."""
    rows = torch.arange(attention_mask.shape[0], device=attention_mask.device)[:, None]
    return torch.where(attention_mask > 0, rows.expand_as(attention_mask), -1)


def block_causal_mask(segments: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask [R, 1, T, T]: 0 where a token may attend (same sample, not later), min elsewhere.

    Padding positions attend to themselves only (a fully masked row would make NaNs).
    """
    t = segments.shape[1]
    same = segments[:, :, None] == segments[:, None, :]
    causal = torch.ones(t, t, dtype=torch.bool, device=segments.device).tril()
    allowed = same & causal & (segments[:, :, None] >= 0)
    allowed |= torch.eye(t, dtype=torch.bool, device=segments.device)
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segments.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


def packed_mrope_positions(rope_index, batch: dict[str, torch.Tensor], pad_id: int) -> torch.Tensor:
    """3-D (mrope) positions [3, R, T] of a packed batch, each sample's as the model computes them alone.

    `rope_index` is the model's `get_rope_index`; the unpacked ids are read back through `pack_index`.
    """
    pack = batch["pack_index"]
    flat = batch["input_ids"].reshape(-1)
    valid = pack >= 0
    ids = torch.where(valid, flat[pack.clamp_min(0)], torch.full_like(pack, pad_id))
    audio = batch.get("feature_attention_mask")
    pos, _ = rope_index(
        input_ids=ids,
        image_grid_thw=batch.get("image_grid_thw"),
        video_grid_thw=batch.get("video_grid_thw"),
        attention_mask=valid.long(),
        use_audio_in_video=False,
        audio_seqlens=None if audio is None else audio.sum(-1),
        second_per_grids=batch.get("video_second_per_grid"),
    )
    out = torch.zeros(3, flat.numel(), dtype=pos.dtype, device=pos.device)
    where = torch.where(valid, pack, flat.numel())  # padding goes to a spare slot that is dropped
    spare = torch.zeros(3, 1, dtype=pos.dtype, device=pos.device)
    out = torch.cat([out, spare], dim=1).scatter_(1, where.reshape(1, -1).expand(3, -1), pos.reshape(3, -1))
    return out[:, :-1].reshape(3, *batch["input_ids"].shape)
