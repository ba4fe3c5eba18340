"""Stream avuie shards into PyTorch: `AVStream` (an IterableDataset), `collate_samples` and `StatefulLoader`.

How the order is made (so that it is the same for any number of ranks, workers and any transport):

1. The shards are put in a canonical order (their paths relative to the root, or the given list order) and every
   sample gets its byte range from the shard's table (see avuie.shards.index).
2. A global stream of positions p = 0, 1, 2, ... is defined from (seed, epoch) alone. Epoch mode (no weights): a
   seeded permutation of every selected sample, each exactly once. Mixture mode (weights or temperature): position
   p draws its group (source or family) from a seeded RNG; each group walks its own seeded permutation, reshuffled
   each time it runs out.
3. Rank r of W takes p = r, r+W, r+2W, ... (its *rank stream*, q = 0, 1, ...). DataLoader worker w of K takes the
   rank-stream items in blocks of `block_size`: blocks w, w+K, ... The DataLoader asks its workers in turn, so with
   `block_size` equal to its batch size (StatefulLoader does this) its output is the rank stream in order.
4. Each sample is one ranged read (local pread, HTTP Range, fsspec `cat_file`), so nobody reads what it skips.

Resume: `state_dict()` holds the epoch and how many rank-stream items were consumed; after `load_state_dict` the
stream continues with exactly the next item. Only avuie.shards.index is imported of ours: no schema validation.
"""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from avuie.shards.index import ShardReader, resolve_shards, split_members
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

_CHUNK = 8192  # mixture draws are made in fixed chunks so that any position can be recomputed


class _MixtureDraws:
    """Which group position p draws and how many times that group was drawn before p (seeded, chunked)."""

    def __init__(self, probabilities: np.ndarray, seed: int, epoch: int):
        self.probabilities, self.seed, self.epoch = probabilities, seed, epoch
        self._reset()

    def _reset(self) -> None:
        self.rng = np.random.default_rng([self.seed, self.epoch, 7919])
        self.chunk, self.before = -1, np.zeros(len(self.probabilities), dtype=np.int64)
        self.groups = np.zeros(0, dtype=np.int64)

    def lookup(self, position: int) -> tuple[int, int]:
        """Return (group index, draw count of that group before this position)."""
        chunk, offset = divmod(position, _CHUNK)
        if chunk < self.chunk:
            self._reset()
        while self.chunk < chunk:
            self.before += np.bincount(self.groups, minlength=len(self.probabilities))
            self.groups = self.rng.choice(len(self.probabilities), size=_CHUNK, p=self.probabilities)
            self.cursor = np.empty(_CHUNK, dtype=np.int64)
            for group in range(len(self.probabilities)):
                where = np.flatnonzero(self.groups == group)
                self.cursor[where] = self.before[group] + np.arange(len(where))
            self.chunk += 1
        return int(self.groups[offset]), int(self.cursor[offset])


class AVStream(IterableDataset):
    """Samples of avuie shards as dicts {"key", "sample" (the JSON), "media" {role: tensor}, "index", "shard"}.

    sources: see avuie.shards.index.resolve_shards. split: keep only these splits (str or list). weights: {source or family: w}
    (per mix_by) or temperature T (probability ∝ group size^(1/T)) switch to mixture mode; groups left out of
    weights are not drawn. resample=True makes the stream infinite (epoch mode: epoch after epoch);
    samples_per_epoch sets a finite mixture length (default: the number of selected samples). decode=False keeps
    media as {role: [bytes, ...]}. frame_format "float" gives frames and images in [0, 1]. rank/world_size
    default to torch.distributed when it is initialised (rank streams differ in length by at most one item).
    block_size: rank-stream items dealt to a DataLoader worker at a time; set it to the DataLoader's batch size
    (StatefulLoader does) so that the output order does not depend on num_workers. token: bearer token for the
    shard server;
    storage_options: passed to fsspec (e.g. {"client_kwargs": {"endpoint_url": ...}} for S3).
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
    ):
        if mix_by not in ("source", "family"):
            raise ValueError(f"mix_by must be 'source' or 'family', not {mix_by!r}")
        if frame_format not in ("uint8", "float"):
            raise ValueError(f"frame_format must be 'uint8' or 'float', not {frame_format!r}")
        if weights is not None and temperature is not None:
            raise ValueError("give weights or temperature, not both")
        if temperature is not None and temperature <= 0:
            raise ValueError("temperature must be > 0")
        if block_size < 1:
            raise ValueError("block_size must be >= 1")
        self.seed, self.shuffle, self.decode, self.frame_format = seed, shuffle, decode, frame_format
        self.epoch, self.resample, self.block_size, self.mix_by = epoch, resample, block_size, mix_by
        self.rank, self.world_size = rank, world_size
        self._start = self._consumed = 0
        self._reader = ShardReader(token, storage_options)
        self.shards = resolve_shards(sources, self._reader)
        self._select(split)
        self.mixture = weights is not None or temperature is not None
        if self.mixture:
            self._set_probabilities(weights, temperature)
        if self.mixture and not resample:
            self.length: int | None = samples_per_epoch or len(self._shard_of)
        else:
            self.length = None if resample else len(self._shard_of)

    def _select(self, split) -> None:
        splits = {split} if isinstance(split, str) else set(split) if split is not None else None
        rows = [
            (number, local, getattr(entry, self.mix_by))
            for number, shard in enumerate(self.shards)
            for local, entry in enumerate(shard.scan.samples)
            if splits is None or entry.split in splits
        ]
        if not rows:
            raise ValueError(f"no samples of split {split!r} in the given shards")
        self.group_names = sorted({group for _, _, group in rows})
        group_number = {name: number for number, name in enumerate(self.group_names)}
        self._shard_of = np.array([r[0] for r in rows], dtype=np.int64)
        self._local_of = np.array([r[1] for r in rows], dtype=np.int64)
        self._group_of = np.array([group_number[r[2]] for r in rows], dtype=np.int64)
        self.group_sizes = {name: int((self._group_of == n).sum()) for n, name in enumerate(self.group_names)}

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
        self._members = [np.flatnonzero(self._group_of == g) for g in range(len(self.group_names))]

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
        """Return {"epoch", "consumed" (rank-stream items), "seed", "world_size", "mixture"} to resume from.

        Counts only iteration in this process: with DataLoader workers use StatefulLoader.state_dict().
        """
        return {
            "epoch": self.epoch,
            "consumed": self._consumed,
            "seed": self.seed,
            "world_size": self._rank_world()[1],
            "mixture": self.mixture,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from a state_dict(): the next item is the one that followed when it was taken."""
        for field in ("seed", "world_size", "mixture"):
            mine = self.state_dict()[field]
            if field in state and state[field] != mine:
                raise ValueError(
                    f"cannot resume: the state has {field}={state[field]!r}, this stream {mine!r}"
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

    def _positions(self) -> Iterator[tuple[int, int]]:
        """Yield (rank-stream index q, global position p) for this rank and DataLoader worker."""
        rank, world = self._rank_world()
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        block = self.block_size
        offset = worker * block
        while True:
            for q in range(self._start + offset, self._start + offset + block):
                position = rank + world * q
                if self.length is not None and position >= self.length:
                    return
                yield q, position
            offset += workers * block

    def _sample_at(self, position: int, cache: dict) -> int:
        """Return the selected-sample number at a global position (cache holds permutations and draws)."""
        count = len(self._shard_of)
        if not self.mixture:
            epoch, at = divmod(position, count)
            perm = self._permutation(
                cache, ("epoch", self.epoch + epoch), count, [self.seed, self.epoch + epoch]
            )
            return int(perm[at])
        draws = cache.setdefault("draws", _MixtureDraws(self._draw_probabilities, self.seed, self.epoch))
        slot, drawn_before = draws.lookup(position)
        group = int(self._draw_groups[slot])
        members = self._members[group]
        cycle, at = divmod(drawn_before, len(members))
        perm = self._permutation(
            cache, ("group", group, cycle), len(members), [self.seed, self.epoch, 1 + group, cycle]
        )
        return int(members[perm[at]])

    def _permutation(self, cache: dict, name: tuple, size: int, seed: list[int]) -> np.ndarray:
        perms = cache.setdefault("perms", {})
        if name not in perms:
            if len(perms) >= 64:
                perms.clear()
            perms[name] = np.random.default_rng(seed).permutation(size) if self.shuffle else np.arange(size)
        return perms[name]

    def __iter__(self) -> Iterator[dict]:
        in_main = get_worker_info() is None
        cache: dict = {}
        for q, position in self._positions():
            item = self._load(self._sample_at(position, cache), position)
            if in_main:
                self._consumed = q + 1
            yield item

    def _load(self, selected: int, position: int) -> dict:
        shard = self.shards[int(self._shard_of[selected])]
        entry = shard.scan.samples[int(self._local_of[selected])]
        try:
            files = split_members(self._reader.read(shard, entry.start, entry.end))
            sample = json.loads(files.pop("json")) if "json" in files else {"key": entry.key}
            if self.decode:
                media = decode_media(sample, files, self.frame_format)
            else:
                media = {m["role"]: [files[name] for name in m["files"]] for m in sample.get("media", [])}
        except (ValueError, KeyError, OSError) as error:
            raise ValueError(f"{shard.name}: sample {entry.key}: {error}") from error
        return {"key": entry.key, "sample": sample, "media": media, "index": position, "shard": shard.name}


def decode_media(
    sample: dict, files: dict[str, bytes], frame_format: str = "uint8"
) -> dict[str, torch.Tensor]:
    """Decode a sample's media files ({file name: bytes}) to tensors keyed by role (see AVStream)."""
    media = {}
    for item in sample.get("media", []):
        kind, role, names = item["kind"], item["role"], item["files"]
        missing = [name for name in names if name not in files]
        if missing:
            raise ValueError(f"media {role!r} lists files missing from the tar: {missing}")
        if kind in ("video_frames", "image"):
            pixels = torch.from_numpy(_planar_rgb([files[name] for name in names]))
            pixels = pixels[0] if kind == "image" else pixels
            media[role] = pixels.float().div_(255) if frame_format == "float" else pixels
        elif kind == "audio":
            media[role] = torch.from_numpy(np.concatenate([_waveform(files[name]) for name in names]))
        elif kind == "mask":
            media[role] = torch.from_numpy(_mask(files[names[0]]))
        else:
            raise ValueError(f"unknown media kind {kind!r} for role {role!r}")
    return media


def _planar_rgb(images: list[bytes]) -> np.ndarray:
    """Decode images of one size to uint8 [N, 3, H, W] (band by band: much faster than a transposing copy)."""
    out = None
    for number, data in enumerate(images):
        with Image.open(io.BytesIO(data)) as image:
            bands = image.convert("RGB").split()
            if out is None:
                out = np.empty((len(images), 3, image.height, image.width), dtype=np.uint8)
            if bands[0].size != (out.shape[3], out.shape[2]):
                raise ValueError(f"frames differ in size: {bands[0].size} vs {(out.shape[3], out.shape[2])}")
            for channel, band in enumerate(bands):
                out[number, channel] = np.asarray(band)
    return out


def _waveform(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as wav:
        width, channels, raw = wav.getsampwidth(), wav.getnchannels(), wav.readframes(wav.getnframes())
    if width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    elif width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        raise ValueError(f"unsupported WAV sample width {width}")
    return samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples


def _mask(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        values = np.array(image.convert("L"))
    return (values >= 128 if values.max() > 1 else values > 0).astype(np.uint8)


def collate_samples(items: list[dict]) -> dict:
    """Batch AVStream items: {"key", "sample", "shard": lists; "index": LongTensor [B]; "media": {role: tensor
    [B, *max shape], zero-padded}; "lengths": {role: LongTensor [B], size of the first dim, 0 where absent}}.

    Undecoded media (bytes) stay lists per role, None where absent.
    """
    batch = {
        "key": [item["key"] for item in items],
        "sample": [item["sample"] for item in items],
        "shard": [item.get("shard") for item in items],
        "index": torch.tensor([item.get("index", -1) for item in items], dtype=torch.long),
        "media": {},
        "lengths": {},
    }
    roles = list(dict.fromkeys(role for item in items for role in item["media"]))
    for role in roles:
        values = [item["media"].get(role) for item in items]
        present = [value for value in values if value is not None]
        if not isinstance(present[0], torch.Tensor):
            batch["media"][role] = values
            continue
        shape = [max(value.shape[d] for value in present) for d in range(present[0].dim())]
        out = torch.zeros([len(items), *shape], dtype=present[0].dtype)
        for row, value in enumerate(values):
            if value is not None:
                out[(row, *(slice(0, n) for n in value.shape))] = value
        batch["media"][role] = out
        batch["lengths"][role] = torch.tensor(
            [0 if v is None else v.shape[0] for v in values], dtype=torch.long
        )
    return batch


class StatefulLoader:
    """A DataLoader over an AVStream whose output order does not depend on num_workers, with exact resume.

    batch_size None yields single items; otherwise batches from collate_samples. Extra keyword arguments go to
    torch.utils.data.DataLoader (persistent_workers is refused: epochs and resume points must reach workers).
    """

    def __init__(
        self, dataset: AVStream, batch_size: int | None = None, num_workers: int = 0, **loader_kwargs
    ):
        if loader_kwargs.get("persistent_workers"):
            raise ValueError(
                "StatefulLoader re-creates its workers each epoch; persistent_workers is not supported"
            )
        self.dataset, self.batch_size, self.num_workers = dataset, batch_size, num_workers
        self.loader_kwargs = loader_kwargs
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
            collate_fn=collate_samples if self.batch_size else None,
            **kwargs,
        )
        for output in loader:
            self._consumed += len(output["key"]) if self.batch_size else 1
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
        self.dataset.load_state_dict(state)
        self._consumed = self.dataset._start
