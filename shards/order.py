"""The order of an AVStream: which selected sample each position of a rank's stream reads (numpy only).

Terms. The selected samples are numbered in canonical order (shard order, then file order). A *run* is up to
`run_bytes` of consecutive samples of one shard and one group: runs are what gets shuffled, so that a reader
fetches contiguous bytes. The positions q = 0, 1, ... of a rank's stream are dealt in *blocks* of `block` positions
to L *lanes* (block j -> lane j mod L); DataLoader workers take blocks in turn (worker w of K: blocks w, w+K, ...),
so a worker count that divides L reads only its own lanes. A *window* is a handful of consecutive samples of a
lane (about `window_bytes`), shuffled among themselves; it is the unit that a reader fetches, one ranged read per
contiguous piece, before its samples are needed.

Epoch mode (`EpochOrder`): each epoch permutes the runs (seeded by seed and epoch, the same on every rank); that
sequence of all N samples is cut into one part per rank (rank r of W: ceil((N - r) / W) samples), each rank part
into one part per lane (as many samples as the lane has positions), each lane part into windows whose samples are
permuted. Every sample comes exactly once per epoch. Without shuffling, rank r reads its part in canonical order.
An infinite stream (resample) chains epoch after epoch.

Mixture mode (`MixtureOrder`): the reader (rank r, lane l) -- number u = r*L + l of U = W*L -- draws the group of
each of its positions from its own seeded RNG with the mixture's probabilities; each group's runs are permuted per
cycle (a pass over the group) and every cycle is cut into windows; reader u takes windows u, u+U, u+2U, ... of each
group and reads their samples in a seeded order.

Both are pure functions of (seed, epoch, rank, world size, block, lanes) and the shard tables, so any position can
be computed directly: resuming at position q reads nothing before it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    """How a rank's stream is dealt: rank of world, positions per block, lanes."""

    rank: int
    world: int
    block: int
    lanes: int


def make_runs(shard_of, start, end, group_of, run_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut the selected samples into runs; return (first sample number, number of samples) per run.

    A run holds consecutive samples of one shard and one group whose bytes follow each other, and ends once it
    holds run_bytes or more.
    """
    count = len(shard_of)
    breaks = np.ones(count, dtype=bool)
    breaks[1:] = (shard_of[1:] != shard_of[:-1]) | (group_of[1:] != group_of[:-1]) | (start[1:] != end[:-1])
    firsts, size, sizes = [], 0, end - start
    for number in range(count):
        if breaks[number] or size >= run_bytes:
            firsts.append(number)
            size = 0
        size += int(sizes[number])
    firsts_array = np.array(firsts, dtype=np.int64)
    lengths = np.diff(np.append(firsts_array, count))
    return firsts_array, lengths


def expand(firsts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Return the sample numbers of the given runs, run after run."""
    if len(lengths) == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(firsts - offsets, lengths) + np.arange(int(lengths.sum()), dtype=np.int64)


def lane_count(x, lane: int, block: int, lanes: int):
    """How many of the positions 0..x-1 belong to lane (block j of `block` positions -> lane j mod lanes)."""
    cycle = block * lanes
    return (x // cycle) * block + np.clip(x % cycle - lane * block, 0, block)


def lane_count_of(x: int, lane: int, block: int, lanes: int) -> int:
    """lane_count for one int position (plain Python: numpy's per-call cost is larger than the work)."""
    cycle = block * lanes
    return (x // cycle) * block + min(block, max(0, x % cycle - lane * block))


def lane_to_position(count, lane: int, block: int, lanes: int):
    """The rank-stream position of a lane's count-th position (inverse of lane_count)."""
    return ((count // block) * lanes + lane) * block + count % block


def items_per_window(window_bytes: int, sizes: np.ndarray) -> int:
    """Samples per window: about window_bytes of samples of the given byte sizes, at least 1."""
    mean = float(sizes.mean()) if len(sizes) else 1.0
    return max(1, int(round(window_bytes / max(mean, 1.0))))


class _Lru(dict):
    """A dict that forgets its oldest entry beyond `limit` entries."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit

    def put(self, key, value):
        if len(self) >= self.limit:
            self.pop(next(iter(self)))
        self[key] = value
        return value


class EpochOrder:
    """Epoch mode: every selected sample once per epoch (see the module docstring)."""

    def __init__(
        self, runs, count: int, layout: Layout, *, seed: int, epoch: int, shuffle: bool, window: int
    ):
        self.firsts, self.lengths = runs
        self.count, self.layout, self.seed, self.epoch = count, layout, seed, epoch
        self.shuffle, self.window = shuffle, window
        rank, world = layout.rank, layout.world
        self.rank_length = (count - rank + world - 1) // world
        self.rank_start = sum((count - r + world - 1) // world for r in range(rank))
        self._sequences, self._perms = _Lru(2), _Lru(256)
        self._lane_parts: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def locate(self, q: int) -> tuple[int, tuple]:
        """Return (selected sample number, fetch unit) of rank-stream position q."""
        cycle, offset = divmod(q, self.rank_length)
        sequence = self._sequence(cycle)
        if not self.shuffle:
            return int(sequence[self.rank_start + offset]), (cycle, 0, offset // self.window)
        lane, window, within, size = self._place(q, cycle)
        starts = self._lanes(cycle)[1]
        perm = self._window_perm(cycle, lane, window, size)
        at = self.rank_start + int(starts[lane]) + window * self.window + int(perm[within])
        return int(sequence[at]), (cycle, lane, window)

    def unit_positions(self, unit: tuple) -> np.ndarray:
        """Return the rank-stream positions whose samples make up a fetch unit."""
        cycle, lane, window = unit
        length = self.rank_length
        if not self.shuffle:
            low = cycle * length + window * self.window
            return np.arange(low, min(low + self.window, (cycle + 1) * length), dtype=np.int64)
        sizes = self._lanes(cycle)[0]
        size = min(self.window, int(sizes[lane]) - window * self.window)
        base = lane_count(cycle * length, lane, self.layout.block, self.layout.lanes) + window * self.window
        return lane_to_position(base + np.arange(size), lane, self.layout.block, self.layout.lanes)

    def _place(self, q: int, cycle: int) -> tuple[int, int, int, int]:
        """Return (lane, window, offset in window, window size) of position q in epoch cycle."""
        block, lanes = self.layout.block, self.layout.lanes
        lane = (q // block) % lanes
        offset = int(
            lane_count(q, lane, block, lanes) - lane_count(cycle * self.rank_length, lane, block, lanes)
        )
        window, within = divmod(offset, self.window)
        size = min(self.window, int(self._lanes(cycle)[0][lane]) - window * self.window)
        return lane, window, within, size

    def _sequence(self, cycle: int) -> np.ndarray:
        if cycle not in self._sequences:
            order = np.arange(len(self.firsts))
            if self.shuffle:
                order = np.random.default_rng([self.seed, self.epoch + cycle]).permutation(len(self.firsts))
            self._sequences.put(cycle, expand(self.firsts[order], self.lengths[order]))
        return self._sequences[cycle]

    def _lanes(self, cycle: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples per lane in this epoch cycle, and where each lane's part starts in the rank part."""
        if cycle not in self._lane_parts:
            block, lanes, length = self.layout.block, self.layout.lanes, self.rank_length
            lane = np.arange(lanes)
            sizes = lane_count((cycle + 1) * length, lane, block, lanes) - lane_count(
                cycle * length, lane, block, lanes
            )
            self._lane_parts = {cycle: (sizes, np.cumsum(sizes) - sizes)}
        return self._lane_parts[cycle]

    def _window_perm(self, cycle: int, lane: int, window: int, size: int) -> np.ndarray:
        key = (cycle, lane, window)
        if key not in self._perms:
            seed = [self.seed, self.epoch + cycle, 1 + self.layout.rank, lane, window, 11]
            self._perms.put(key, np.random.default_rng(seed).permutation(size))
        return self._perms[key]


_CHUNK = 8192  # mixture draws are made in fixed chunks so that any position can be recomputed


class MixtureDraws:
    """Which group position t of one reader draws, and how often that group was drawn before t (seeded, chunked)."""

    def __init__(self, probabilities: np.ndarray, seed: list[int]):
        self.probabilities, self.seed = probabilities, seed
        self._reset()

    def _reset(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.chunk, self.before = -1, np.zeros(len(self.probabilities), dtype=np.int64)
        self.groups = np.zeros(0, dtype=np.int64)

    def lookup(self, position: int) -> tuple[int, int]:
        """Return (group slot, draw count of that slot before this position)."""
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


@dataclass(frozen=True)
class GroupRuns:
    """The runs of one group (first sample, length), its sample count and the samples per window."""

    firsts: np.ndarray
    lengths: np.ndarray
    count: int
    window: int


class MixtureOrder:
    """Mixture mode: per-reader group draws, per-group windows dealt to readers (see the module docstring)."""

    def __init__(
        self, groups: list[GroupRuns], draw_groups, probabilities, layout: Layout, *, seed, epoch, shuffle
    ):
        self.groups, self.draw_groups, self.probabilities = groups, draw_groups, probabilities
        self.layout, self.seed, self.epoch, self.shuffle = layout, seed, epoch, shuffle
        self.readers = layout.world * layout.lanes
        self._draws: dict[int, MixtureDraws] = {}
        self._reader_sizes: dict[tuple[int, int], np.ndarray] = {}
        self._cycles, self._windows = _Lru(8), _Lru(512)

    def locate(self, q: int) -> tuple[int, tuple]:
        """Return (selected sample number, fetch unit) of rank-stream position q."""
        block, lanes = self.layout.block, self.layout.lanes
        lane = (q // block) % lanes
        reader = self.layout.rank * lanes + lane
        if reader not in self._draws:
            seed = [self.seed, self.epoch, 7919, reader]
            self._draws[reader] = MixtureDraws(self.probabilities, seed)
        slot, drawn = self._draws[reader].lookup(lane_count_of(q, lane, block, lanes))
        group = int(self.draw_groups[slot])
        nth, within = self._reader_window(reader, group, drawn)
        unit = (group, reader + nth * self.readers)
        return int(self.unit_samples(unit)[within]), unit

    def unit_samples(self, unit: tuple) -> np.ndarray:
        """Return the samples of a fetch unit (a group's window), in the order they are read."""
        if unit not in self._windows:
            group, window = unit
            runs = self.groups[group]
            per_cycle = -(-runs.count // runs.window)
            cycle, index = divmod(window, per_cycle)
            items = self._cycle(group, cycle)[index * runs.window : (index + 1) * runs.window]
            if self.shuffle:
                seed = [self.seed, self.epoch, 1 + group, cycle, index, 13]
                items = items[np.random.default_rng(seed).permutation(len(items))]
            self._windows.put(unit, items)
        return self._windows[unit]

    def _cycle(self, group: int, cycle: int) -> np.ndarray:
        if (group, cycle) not in self._cycles:
            runs = self.groups[group]
            order = np.arange(len(runs.firsts))
            if self.shuffle:
                order = np.random.default_rng([self.seed, self.epoch, 1 + group, cycle]).permutation(
                    len(order)
                )
            self._cycles.put((group, cycle), expand(runs.firsts[order], runs.lengths[order]))
        return self._cycles[(group, cycle)]

    def _reader_window(self, reader: int, group: int, drawn: int) -> tuple[int, int]:
        """Return (n, offset): a reader's `drawn`-th sample of a group is in its n-th window of that group."""
        key = (reader, group)
        ends = self._reader_sizes.get(key, np.zeros(0, dtype=np.int64))
        while len(ends) == 0 or ends[-1] <= drawn:
            runs = self.groups[group]
            per_cycle = -(-runs.count // runs.window)
            windows = reader + self.readers * np.arange(len(ends), len(ends) + 1024)
            last = runs.count - (per_cycle - 1) * runs.window
            sizes = np.where(windows % per_cycle == per_cycle - 1, last, runs.window)
            ends = np.concatenate([ends, (ends[-1] if len(ends) else 0) + np.cumsum(sizes)])
            self._reader_sizes[key] = ends
        nth = int(np.searchsorted(ends, drawn, side="right"))
        return nth, drawn - (int(ends[nth - 1]) if nth else 0)


class SampleOrder:
    """lanes=0: the sample-level order. Global position p = rank + world * q reads any sample: in epoch mode a
    seeded permutation of all samples per epoch, in mixture mode a seeded group draw per position, each group
    walking its own permutation (reshuffled per cycle). The global stream does not depend on the world size or
    the block, so W ranks with batch b read what one process with batch W*b reads; each sample is its own read.
    Fetch units are runs of `window` consecutive rank-stream positions."""

    def __init__(self, count: int, layout: Layout, *, seed, epoch, shuffle, window: int, mixture=None):
        self.count, self.layout, self.seed, self.epoch = count, layout, seed, epoch
        self.shuffle, self.window, self.mixture = (
            shuffle,
            window,
            mixture,
        )  # (draw groups, probabilities, members)
        self._perms, self._draws = _Lru(64), None

    def locate(self, q: int) -> tuple[int, tuple]:
        """Return (selected sample number, fetch unit) of rank-stream position q."""
        return self._sample_at(self.layout.rank + self.layout.world * q), (q // self.window,)

    def unit_positions(self, unit: tuple) -> np.ndarray:
        """Return the rank-stream positions of a fetch unit."""
        return np.arange(unit[0] * self.window, (unit[0] + 1) * self.window, dtype=np.int64)

    def _sample_at(self, position: int) -> int:
        if self.mixture is None:
            epoch, at = divmod(position, self.count)
            perm = self._permutation(("epoch", epoch), self.count, [self.seed, self.epoch + epoch])
            return int(perm[at])
        draw_groups, probabilities, members = self.mixture
        if self._draws is None:
            self._draws = MixtureDraws(probabilities, [self.seed, self.epoch, 7919])
        slot, drawn_before = self._draws.lookup(position)
        group = int(draw_groups[slot])
        cycle, at = divmod(drawn_before, len(members[group]))
        perm = self._permutation(
            ("group", group, cycle), len(members[group]), [self.seed, self.epoch, 1 + group, cycle]
        )
        return int(members[group][perm[at]])

    def _permutation(self, name: tuple, size: int, seed: list[int]) -> np.ndarray:
        if name not in self._perms:
            perm = np.random.default_rng(seed).permutation(size) if self.shuffle else np.arange(size)
            self._perms.put(name, perm)
        return self._perms[name]
