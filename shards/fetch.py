"""Fetch the bytes of a stream's samples ahead of use, in contiguous pieces, in background threads.

A fetch unit (a window, see avuie.shards.order) names the samples a reader needs together; they are grouped into
*pieces*: samples of one shard whose bytes are (nearly) adjacent, read with one ranged request each.
`Prefetcher.stream(located)` takes the positions a reader will read, in order, as (position, sample, unit) and
yields (position, sample, bytes) in the same order. It looks `lookahead` positions ahead and starts reading the
pieces in the order their first sample is needed (at most `budget` bytes held or in flight beyond the piece needed
now), so the first sample of an epoch waits for one piece, not for whole windows. Pieces that `inline` says are
cheap (local files: a pread from the page cache) are read when needed, in the calling thread. A unit's bytes are forgotten
once no looked-ahead position needs it. Which sample a position reads never depends on fetching: bytes that were
forgotten and are needed again are simply read again.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

GAP_BYTES = 64 * 1024  # read a gap this small between two needed samples rather than make two requests


def pieces(samples, shard_of: np.ndarray, start: np.ndarray, end: np.ndarray, gap: int = GAP_BYTES) -> list:
    """Group samples into contiguous pieces: [(shard number, start byte, end byte, [samples])], sorted.

    Samples of one shard whose byte ranges are at most `gap` bytes apart share a piece.
    """
    result: list = []
    for sample in sorted({int(s) for s in samples}, key=lambda s: (shard_of[s], start[s])):
        shard, first, last = int(shard_of[sample]), int(start[sample]), int(end[sample])
        if result and result[-1][0] == shard and first - result[-1][2] <= gap and first >= result[-1][1]:
            result[-1][2] = max(result[-1][2], last)
            result[-1][3].append(sample)
        else:
            result.append([shard, first, last, [sample]])
    return [tuple(piece) for piece in result]


class _Unit:
    """The pieces of one fetch unit: for each sample its piece, for each piece its future once submitted and its
    bytes once read."""

    def __init__(self, parts: list):
        self.parts = parts
        self.piece_of = {sample: number for number, part in enumerate(parts) for sample in part[3]}
        self.futures: dict[int, Future] = {}
        self.results: dict[int, dict[int, bytes]] = {}
        self.bytes = 0


class Prefetcher:
    """Reads pieces ahead of a reader's positions (see the module docstring); one per iteration of a stream."""

    def __init__(
        self,
        read: Callable[[int, int, int], bytes],
        table: tuple[np.ndarray, np.ndarray, np.ndarray],
        unit_samples: Callable[[tuple], list[int]],
        *,
        budget: int,
        lookahead: int,
        threads: int = 2,
        inline: Callable[[int], bool] = lambda shard: False,
    ):
        self.read, self.unit_samples, self.inline = read, unit_samples, inline
        self.shard_of, self.start, self.end = table
        self.budget, self.lookahead, self.threads = budget, lookahead, threads
        self.requests = 0

    def read_piece(self, part: tuple) -> dict[int, memoryview]:
        """Read one piece (one request); return {sample: its bytes (a view into the piece)} for its samples."""
        shard, first, last, members = part
        blob = memoryview(self.read(shard, first, last))
        self.requests += 1
        return {s: blob[int(self.start[s]) - first : int(self.end[s]) - first] for s in members}

    def stream(self, located: Iterator[tuple[int, int, tuple]]) -> Iterator[tuple[int, int, bytes]]:
        """Yield (position, sample, bytes) for each (position, sample, unit) of located, in order."""
        state = _State(self)
        try:
            while True:
                state.look_ahead(located)
                if not state.ahead:
                    return
                position, sample, unit = state.ahead.popleft()
                state.refs[unit] -= 1
                blob = state.take(unit, sample)
                state.schedule()
                if state.refs[unit] == 0:
                    state.forget(unit)
                yield position, sample, blob
        finally:
            state.pool.shutdown(wait=False, cancel_futures=True)


class _State:
    """One Prefetcher.stream's bookkeeping: the positions looked ahead, the units and pieces held."""

    def __init__(self, fetcher: Prefetcher):
        self.fetcher = fetcher
        self.ahead: deque = deque()
        self.unscheduled: deque = deque()  # (sample, unit) looked ahead whose piece may not be submitted yet
        self.refs: Counter = Counter()
        self.units: dict[tuple, _Unit] = {}
        self.held = 0
        self.exhausted = False
        self.pool = ThreadPoolExecutor(fetcher.threads, thread_name_prefix="avuie-fetch")

    def look_ahead(self, located) -> None:
        while not self.exhausted and len(self.ahead) < self.fetcher.lookahead:
            item = next(located, None)
            if item is None:
                self.exhausted = True
                break
            self.ahead.append(item)
            self.unscheduled.append((item[1], item[2]))
            self.refs[item[2]] += 1
        self.schedule()

    def unit(self, key: tuple) -> _Unit:
        if key not in self.units:
            fetcher = self.fetcher
            samples = fetcher.unit_samples(key)
            self.units[key] = _Unit(pieces(samples, fetcher.shard_of, fetcher.start, fetcher.end))
        return self.units[key]

    def submit(self, unit: _Unit, number: int) -> None:
        """Start reading a piece in the background, unless it is read already or is read inline when needed."""
        part = unit.parts[number]
        if number in unit.futures or number in unit.results or self.fetcher.inline(part[0]):
            return
        unit.futures[number] = self.pool.submit(self.fetcher.read_piece, part)
        unit.bytes += part[2] - part[1]
        self.held += part[2] - part[1]

    def result(self, unit: _Unit, number: int) -> dict[int, bytes]:
        """The bytes of a piece's samples: read now (inline), or when its background read is done."""
        if number not in unit.results:
            self.submit(unit, number)
            future = unit.futures.pop(number, None)
            unit.results[number] = future.result() if future else self.fetcher.read_piece(unit.parts[number])
        return unit.results[number]

    def schedule(self) -> None:
        """Submit the pieces of looked-ahead samples, first needed first, while under the byte budget."""
        while self.unscheduled and self.held < self.fetcher.budget:
            sample, key = self.unscheduled.popleft()
            if self.refs.get(key, 0) > 0:
                unit = self.unit(key)
                if sample in unit.piece_of:
                    self.submit(unit, unit.piece_of[sample])

    def take(self, key: tuple, sample: int) -> bytes:
        unit = self.unit(key)
        number = unit.piece_of.get(sample)
        if number is None:  # not among the unit's samples: read it alone
            return self.fetcher.read_piece(pieces([sample], *self._table())[0])[sample]
        found = self.result(unit, number).pop(sample, None)
        if found is None:  # taken before (a sample needed twice within a unit): read it again
            return self.fetcher.read_piece(pieces([sample], *self._table())[0])[sample]
        return found

    def forget(self, key: tuple) -> None:
        del self.refs[key]
        unit = self.units.pop(key, None)
        if unit is not None:
            self.held -= unit.bytes

    def _table(self):
        return self.fetcher.shard_of, self.fetcher.start, self.fetcher.end
