"""Stream avuie shards into PyTorch: `AVStream` (an IterableDataset), `collate_samples` and `StatefulLoader`.

How the order is made (the same for any number of DataLoader workers and any transport; see avuie.shards.order):

1. The shards are put in a canonical order (their paths relative to the root, or the given list order) and every
   sample gets its byte range from the shard's table (see avuie.shards.index). Consecutive samples of a shard are
   grouped into runs of about window_bytes / 4 (one ranged read each).
2. Each rank's stream (positions q = 0, 1, ...) is defined from (seed, epoch, rank, world size, block_size, lanes)
   alone. Epoch mode (no weights): the runs are permuted, rank r takes its share (ceil((N - r) / W) samples) of
   that sequence, and every sample comes exactly once per epoch. Mixture mode (weights or temperature): each
   position draws its group (source or family) by the weights; each group walks its own seeded permutation.
3. The rank stream is dealt in blocks of `block_size` positions to `lanes` lanes (block j -> lane j mod lanes).
   DataLoader worker w of K takes blocks w, w+K, ... The DataLoader asks its workers in turn, so with block_size
   equal to its batch size (StatefulLoader does this) its output is the rank stream in order, whatever K; a
   lane's samples come from about four runs at a time, shuffled within a window of about window_bytes, so that
   when K divides `lanes` each worker reads only its own lanes. A smaller window_bytes mixes more shards into a
   batch and reads smaller ranges.
4. Reading: a worker fetches each window before it is needed (background threads), one ranged read per
   contiguous piece of a shard (local pread, HTTP Range, fsspec cat_file) instead of one per sample. With
   cache_dir, remote shards are copied whole into a node-local cache (one request per shard, checked against the
   sha256 the source advertises) and read from there by every epoch, worker and rank on the machine.

Resume: `state_dict()` holds the epoch and how many rank-stream items were consumed; after `load_state_dict` the
stream continues with exactly the next item (the same block_size and lanes are required: they shape the order).
Only avuie.shards modules are imported of ours: no schema validation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from avuie.shards.cache import ShardCache
from avuie.shards.decode import collate_samples, decode_media
from avuie.shards.fetch import Prefetcher
from avuie.shards.index import split_members
from avuie.shards.order import (
    EpochOrder,
    GroupRuns,
    Layout,
    MixtureOrder,
    SampleOrder,
    items_per_window,
    make_runs,
)
from avuie.shards.remote import ShardReader, read_local, resolve_shards
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

__all__ = ["AVStream", "StatefulLoader", "collate_samples", "decode_media"]
RESUME_FIELDS = ("seed", "world_size", "mixture", "block_size", "lanes")


class AVStream(IterableDataset):
    """Samples of avuie shards as dicts {"key", "sample" (the JSON), "media" {role: tensor}, "index", "shard"}.

    sources: see avuie.shards.remote.resolve_shards. split: keep only these splits (str or list). weights:
    {source or family: w} (per mix_by) or temperature T (probability ∝ group size^(1/T)) switch to mixture mode;
    groups left out of weights are not drawn. resample=True makes the stream infinite (epoch mode: epoch after
    epoch); samples_per_epoch sets a finite mixture length (default: the number of selected samples).
    decode=False keeps media as {role: [bytes, ...]}. frame_format "float" gives frames and images in [0, 1].
    rank/world_size default to torch.distributed when it is initialised (rank streams differ in length by at most
    one item). block_size: rank-stream items dealt to a DataLoader worker at a time; set it to the DataLoader's
    batch size (StatefulLoader does) so that the output order does not depend on num_workers. lanes: how many
    readers the stream is cut into (a num_workers that divides it reads every byte once); lanes=0 gives the
    sample-level order instead (see avuie.shards.order.SampleOrder: W ranks with batch b read what one process
    with batch W*b reads, at one ranged read per sample). window_bytes: about how
    many bytes of samples are shuffled together and fetched ahead per lane. cache_dir: a node-local folder where
    remote shards are kept whole (at most cache_bytes), shared by epochs, workers and ranks. token: bearer token
    for the shard server; storage_options: passed to fsspec (e.g. {"client_kwargs": {"endpoint_url": ...}}).
    Media tensors: video_frames uint8 [T,3,H,W]; image uint8 [3,H,W]; audio float32 [num_samples] in [-1, 1];
    mask uint8 [H,W] of 0/1.
    """

    def __init__(
        self,
        sources,
        *,
        split: str | Sequence[str] | None = None,
        weights: dict[str, float] | None = None,
        mix_by: str = "source",
        temperature: float | None = None,
        seed: int = 0,
        shuffle: bool = True,
        decode: bool = True,
        frame_format: str = "uint8",
        epoch: int = 0,
        resample: bool = False,
        token: str | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        block_size: int = 1,
        samples_per_epoch: int | None = None,
        storage_options: dict | None = None,
        lanes: int = 4,
        window_bytes: int = 16 << 20,
        cache_dir: str | None = None,
        cache_bytes: int = 16 << 30,
    ):
        _check_arguments(mix_by, frame_format, weights, temperature, block_size, lanes, window_bytes)
        self.seed, self.shuffle, self.decode, self.frame_format = seed, shuffle, decode, frame_format
        self.epoch, self.resample, self.block_size, self.mix_by = epoch, resample, block_size, mix_by
        self.rank, self.world_size, self.lanes, self.window_bytes = rank, world_size, lanes, window_bytes
        self._start = self._consumed = 0
        self._reader = ShardReader(token, storage_options)
        self.cache = ShardCache(cache_dir, cache_bytes) if cache_dir is not None else None
        self.shards = resolve_shards(sources, self._reader)
        self._select(split)
        self.mixture = weights is not None or temperature is not None
        if self.mixture:
            self._set_probabilities(weights, temperature)
        finite = (samples_per_epoch or len(self._shard_of)) if self.mixture else len(self._shard_of)
        self.length: int | None = None if resample else finite

    def _select(self, split) -> None:
        splits = {split} if isinstance(split, str) else set(split) if split is not None else None
        rows = [
            (number, local, entry.start, entry.end, getattr(entry, self.mix_by))
            for number, shard in enumerate(self.shards)
            for local, entry in enumerate(shard.scan.samples)
            if splits is None or entry.split in splits
        ]
        if not rows:
            raise ValueError(f"no samples of split {split!r} in the given shards")
        self.group_names = sorted({row[4] for row in rows})
        group_number = {name: number for number, name in enumerate(self.group_names)}
        self._shard_of, self._local_of, self._start_of, self._end_of = (
            np.array([row[field] for row in rows], dtype=np.int64) for field in range(4)
        )
        self._group_of = np.array([group_number[row[4]] for row in rows], dtype=np.int64)
        self.group_sizes = {name: int((self._group_of == n).sum()) for n, name in enumerate(self.group_names)}
        self._runs = make_runs(
            self._shard_of, self._start_of, self._end_of, self._group_of, max(1, self.window_bytes // 4)
        )
        self.window = items_per_window(self.window_bytes, self._end_of - self._start_of)

    def _set_probabilities(self, weights, temperature) -> None:
        if weights is not None:
            unknown = sorted(set(weights) - set(self.group_names))
            if unknown:
                raise ValueError(
                    f"weights name {unknown}, but the {self.mix_by}s here are {self.group_names}"
                )
            raw = np.array([float(weights.get(name, 0.0)) for name in self.group_names])
        else:
            raw = np.array([self.group_sizes[n] ** (1.0 / temperature) for n in self.group_names])
        if (raw < 0).any() or raw.sum() <= 0:
            raise ValueError("weights must be >= 0 with a positive sum")
        drawn = raw > 0
        self.probabilities = {n: float(p) for n, p in zip(self.group_names, raw / raw.sum(), strict=True)}
        self._draw_groups = np.flatnonzero(drawn)
        self._draw_probabilities = raw[drawn] / raw[drawn].sum()
        firsts, lengths = self._runs
        share = max(1, self.window_bytes // int(drawn.sum()))
        self._group_runs = []
        for group in range(len(self.group_names)):
            mine = self._group_of[firsts] == group
            sizes = (self._end_of - self._start_of)[self._group_of == group]
            window = min(len(sizes), items_per_window(share, sizes))
            self._group_runs.append(GroupRuns(firsts[mine], lengths[mine], len(sizes), window))

    def __len__(self) -> int:
        """Items of this rank's stream in one epoch (TypeError for an infinite stream)."""
        if self.length is None:
            raise TypeError("an infinite stream (resample=True) has no length")
        rank, world = self._rank_world()
        return max(0, (self.length - rank + world - 1) // world)

    def set_epoch(self, epoch: int) -> None:
        """Use the order of another epoch; a resume point is kept only when the epoch does not change."""
        if epoch != self.epoch:
            self.epoch, self._start, self._consumed = epoch, 0, 0

    def state_dict(self) -> dict:
        """Return {"epoch", "consumed" (rank-stream items), "seed", "world_size", "mixture", "block_size",
        "lanes"} to resume from.

        Counts only iteration in this process: with DataLoader workers use StatefulLoader.state_dict().
        """
        return {
            "epoch": self.epoch,
            "consumed": self._consumed,
            "seed": self.seed,
            "world_size": self._rank_world()[1],
            "mixture": self.mixture,
            "block_size": self.block_size,
            "lanes": self.lanes,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a state_dict(): the next item is the one that followed when it was taken.

        Raises ValueError when the state was taken from a stream of another seed, world size, mode, block_size or
        lanes (fields a state does not hold are not checked).
        """
        mine = self.state_dict()
        for field in RESUME_FIELDS:
            if field in state and state[field] != mine[field]:
                raise ValueError(
                    f"cannot resume: the state has {field}={state[field]!r}, this stream {mine[field]!r}"
                )
        self.epoch, self._start = int(state["epoch"]), int(state["consumed"])
        self._consumed = self._start

    def _rank_world(self) -> tuple[int, int]:
        if self.world_size is not None:
            rank, world = self.rank or 0, self.world_size
        elif torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        else:
            rank, world = self.rank or 0, 1
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in [0, {world})")
        return rank, world

    def _worker(self) -> tuple[int, int]:
        info = get_worker_info()
        return (info.id, info.num_workers) if info is not None else (0, 1)

    def _rank_length(self) -> int | None:
        return None if self.length is None else len(self)

    def _positions(self) -> Iterator[int]:
        """Yield the rank-stream positions q this DataLoader worker reads, in order."""
        worker, workers = self._worker()
        block, end = self.block_size, self._rank_length()
        offset = worker * block
        while True:
            for q in range(self._start + offset, self._start + offset + block):
                if end is not None and q >= end:
                    return
                yield q
            offset += workers * block

    def _mine(self, positions: np.ndarray) -> np.ndarray:
        """The positions (of a fetch unit) that this worker reads from the resume point on."""
        worker, workers = self._worker()
        end = self._rank_length()
        keep = ((positions // self.block_size) % workers == worker) & (positions >= self._start)
        return positions[keep & (positions < end)] if end is not None else positions[keep]

    def _order(self) -> EpochOrder | MixtureOrder | SampleOrder:
        rank, world = self._rank_world()
        layout = Layout(rank, world, self.block_size, self.lanes)
        options = {"seed": self.seed, "epoch": self.epoch, "shuffle": self.shuffle}
        if self.lanes == 0:
            mixture = None
            if self.mixture:
                members = [np.flatnonzero(self._group_of == g) for g in range(len(self.group_names))]
                mixture = (self._draw_groups, self._draw_probabilities, members)
            window = max(self.block_size, self.window)
            return SampleOrder(len(self._shard_of), layout, window=window, mixture=mixture, **options)
        if self.mixture:
            return MixtureOrder(
                self._group_runs, self._draw_groups, self._draw_probabilities, layout, **options
            )
        return EpochOrder(self._runs, len(self._shard_of), layout, window=self.window, **options)

    def __iter__(self) -> Iterator[dict]:
        in_main = get_worker_info() is None
        order = self._order()
        if self._rank_length() == 0 or getattr(order, "rank_length", 1) == 0:
            return
        rank, world = self._rank_world()

        def unit_samples(unit: tuple) -> list[int]:
            if isinstance(order, MixtureOrder):
                return order.unit_samples(unit)
            return [order.locate(int(q))[0] for q in self._mine(order.unit_positions(unit))]

        prefetcher = Prefetcher(
            self._read_piece,
            (self._shard_of, self._start_of, self._end_of),
            unit_samples,
            budget=self.window_bytes * (-(-max(1, self.lanes) // self._worker()[1]) + 2),  # its lanes + 2
            lookahead=2 * max(1, self.lanes) * max(self.window, self.block_size),
            inline=self._is_local,
        )
        located = ((q, *order.locate(q)) for q in self._positions())
        for q, selected, blob in prefetcher.stream(located):
            item = self._build(selected, rank + world * q, blob)
            if in_main:
                self._consumed = q + 1
            yield item

    def _is_local(self, shard_number: int) -> bool:
        """True when a shard's bytes are on this machine already (its own file, or a copy in the cache)."""
        shard = self.shards[shard_number]
        return shard.transport == "local" or (self.cache is not None and self.cache.holds(shard))

    def _read_piece(self, shard_number: int, start: int, end: int) -> bytes:
        """Bytes [start, end) of a shard: from the node-local cache when one is set and holds (or gets) it."""
        shard = self.shards[shard_number]
        if self.cache is not None and self.cache.cacheable(shard):
            for _ in range(3):
                try:
                    return read_local(self.cache.local_copy(shard, self._reader), start, end)
                except FileNotFoundError:  # evicted by another process between check and read
                    self.cache.forget(shard)
        return self._reader.read(shard, start, end)

    def _build(self, selected: int, position: int, blob: bytes) -> dict:
        shard = self.shards[int(self._shard_of[selected])]
        entry = shard.scan.samples[int(self._local_of[selected])]
        try:
            files = split_members(blob)
            sample = json.loads(files.pop("json")) if "json" in files else {"key": entry.key}
            if self.decode:
                media = decode_media(sample, files, self.frame_format)
            else:
                media = {m["role"]: [files[name] for name in m["files"]] for m in sample.get("media", [])}
        except (ValueError, KeyError, OSError) as error:
            raise ValueError(f"{shard.name}: sample {entry.key}: {error}") from error
        return {"key": entry.key, "sample": sample, "media": media, "index": position, "shard": shard.name}


def _check_arguments(mix_by, frame_format, weights, temperature, block_size, lanes, window_bytes) -> None:
    """Raise ValueError for AVStream arguments that cannot work."""
    if mix_by not in ("source", "family"):
        raise ValueError(f"mix_by must be 'source' or 'family', not {mix_by!r}")
    if frame_format not in ("uint8", "float"):
        raise ValueError(f"frame_format must be 'uint8' or 'float', not {frame_format!r}")
    if weights is not None and temperature is not None:
        raise ValueError("give weights or temperature, not both")
    if temperature is not None and temperature <= 0:
        raise ValueError("temperature must be > 0")
    for name, value, least in (
        ("block_size", block_size, 1),
        ("lanes", lanes, 0),
        ("window_bytes", window_bytes, 1),
    ):
        if value < least:
            raise ValueError(f"{name} must be >= {least}, not {value}")


class StatefulLoader:
    """A DataLoader over an AVStream whose output order does not depend on num_workers, with exact resume.

    batch_size None yields single items; otherwise batches from collate_samples, or from `collate_fn` (the
    trainer's), whose batches hold `batch_len(batch)` stream items. Extra keyword arguments go to
    torch.utils.data.DataLoader (persistent_workers is refused: epochs and resume points must reach workers).
    """

    def __init__(self, dataset: AVStream, batch_size: int | None = None, num_workers: int = 0,
                 collate_fn=None, batch_len=None, **loader_kwargs):  # fmt: skip
        if loader_kwargs.get("persistent_workers"):
            raise ValueError(
                "StatefulLoader re-creates its workers each epoch; persistent_workers is not supported"
            )
        self.dataset, self.batch_size, self.num_workers = dataset, batch_size, num_workers
        self.loader_kwargs = loader_kwargs
        dataset.block_size = batch_size or 1  # the order is dealt in blocks of one batch
        self.collate_fn, self.batch_len = collate_fn, batch_len or (lambda batch: len(batch["key"]))
        self._consumed = dataset._consumed

    def __iter__(self) -> Iterator:
        dataset = self.dataset
        dataset.block_size = self.batch_size or 1
        self._consumed = dataset._start
        kwargs = {"multiprocessing_context": self.worker_context(), **self.loader_kwargs}
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn or (collate_samples if self.batch_size else None),
            **kwargs,
        )
        for output in loader:
            self._consumed += self.batch_len(output) if self.batch_size else 1
            yield output

    def worker_context(self) -> str | None:
        """How DataLoader workers start: "forkserver" when shards come through fsspec, else torch's default.

        fsspec's async clients (s3fs, gcsfs) keep an event-loop thread that does not survive fork(): a forked
        worker can crash, so workers start from a clean fork server instead. loader_kwargs can override it.
        """
        if self.num_workers > 0 and any(shard.transport == "fsspec" for shard in self.dataset.shards):
            return "forkserver"
        return None

    def __len__(self) -> int:
        """Batches (or items) of this rank in one epoch."""
        items = len(self.dataset)
        return -(-items // self.batch_size) if self.batch_size else items

    def set_epoch(self, epoch: int) -> None:
        """Forward to AVStream.set_epoch."""
        self.dataset.set_epoch(epoch)

    def state_dict(self) -> dict:
        """Return the resume state: the dataset's with "consumed" = items yielded so far in this epoch."""
        return {**self.dataset.state_dict(), "consumed": self._consumed}

    def load_state_dict(self, state: dict) -> None:
        """Resume: the next iteration continues right after the last item counted in state."""
        self.dataset.block_size = self.batch_size or 1
        self.dataset.load_state_dict(state)
        self._consumed = self.dataset._start
