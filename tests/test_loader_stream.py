"""How AVStream reads: coalesced ranged reads, the order's guarantees for every layout, the node-local shard cache,
and the tar-member splitter, over real files and the real shard server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import itertools
import tarfile
import threading
import time
from collections import Counter

import pytest
from avuie.shards.guard import ServerLimits
from avuie.shards.index import split_members
from avuie.shards.loader import AVStream, StatefulLoader
from avuie.shards.server import serve_in_thread

from tests.shardkit import write_build

PLAN = {"ave": {"train": [10, 10, 10]}, "ks": {"train": [10]}}
pytestmark = pytest.mark.filterwarnings("ignore:.*worker processes in total")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return write_build(tmp_path_factory.mktemp("stream") / "out", PLAN, frames=2, size=24, audio_seconds=0.05)


@pytest.fixture(scope="module")
def server(build):
    with serve_in_thread(build.root) as handle:
        yield handle


def keys(stream) -> list[str]:
    out = []
    for output in stream:
        out.extend(output["key"] if isinstance(output["key"], list) else [output["key"]])
    return out


class Spy:
    """Counts the calls of a reader method (wrapping the real one, which still does the work), from any thread."""

    def __init__(self, stream: AVStream, name: str):
        self.calls, self.lock, real = [], threading.Lock(), getattr(stream._reader, name)

        def counted(*args, **kwargs):
            with self.lock:
                self.calls.append(args[1:])
            return real(*args, **kwargs)

        setattr(stream._reader, name, counted)


def sample_bytes(build) -> int:
    return sum(p.stat().st_size for p in build.shards) // len(build.keys)


def test_http_reads_whole_runs_not_samples(build, server):
    local = {item["key"]: item["media"] for item in AVStream(build.root, decode=False, seed=4)}
    stream = AVStream(server.url, decode=False, seed=4, lanes=1)
    spy = Spy(stream, "read")
    remote = {item["key"]: item["media"] for item in stream}
    assert remote == local  # the same bytes for every sample
    assert len(spy.calls) == len(build.shards)  # one lane, a window larger than the data: one read per shard
    stream = AVStream(server.url, decode=False, seed=4, window_bytes=16 * sample_bytes(build))
    spy = Spy(stream, "read")
    assert sorted(keys(stream)) == sorted(build.keys)
    assert len(build.keys) / len(spy.calls) >= 2, spy.calls  # runs of ~4 samples, cut where lanes meet


@pytest.mark.parametrize(
    ("world", "block", "lanes", "window"), [(1, 1, 4, 6), (2, 3, 4, 4), (3, 5, 2, 7), (4, 2, 1, 100)]
)
def test_every_layout_reads_each_sample_once_per_epoch(build, world, block, lanes, window):
    union = []
    for rank in range(world):

        def stream(rank=rank, **kw):
            options = {"decode": False, "rank": rank, "world_size": world, "lanes": lanes, **kw}
            return AVStream(build.root, window_bytes=window * sample_bytes(build), **options)

        mine = keys(StatefulLoader(stream(), block))
        assert len(mine) == len(stream()) and abs(len(mine) - len(build.keys) / world) < 1
        assert keys(StatefulLoader(stream(), block, 2)) == mine
        union += mine
        following = keys(StatefulLoader(stream(epoch=1), block))
        assert sorted(following) == sorted(mine) or world > 1  # one rank: the same samples, another order
        assert following != mine
    assert sorted(union) == sorted(build.keys)


def test_windows_mix_shards_and_resume_anywhere(build):
    def stream(**kw):
        return AVStream(build.root, decode=False, window_bytes=8 * sample_bytes(build), lanes=2, **kw)

    whole = keys(stream())
    shards_in_first_window = {build.keys.index(k) // 10 for k in whole[:8]}
    assert len(shards_in_first_window) >= 2  # a window holds several runs, from several shards
    for consumed in (1, 7, 8, 19, 39):
        resumed = stream()
        resumed.load_state_dict({**stream().state_dict(), "consumed": consumed})
        assert keys(resumed) == whole[consumed:], consumed
    endless = stream(resample=True)
    first = [item["key"] for item in itertools.islice(iter(endless), 100)]
    assert first[:40] == whole and sorted(first[40:80]) == sorted(whole)  # epoch after epoch
    later = stream(resample=True)
    later.load_state_dict({**later.state_dict(), "consumed": 37})
    assert [item["key"] for item in itertools.islice(iter(later), 63)] == first[37:]


def test_mixture_draws_every_sample_of_a_group_evenly(build):
    stream = AVStream(build.root, decode=False, weights={"ave": 1, "ks": 1}, resample=True, seed=2)
    drawn = Counter(item["key"] for item in itertools.islice(iter(stream), 1200))
    ave = [drawn[k] for k in build.keys if build.sources[k] == "ave"]
    ks = [drawn[k] for k in build.keys if build.sources[k] == "ks"]
    assert abs(sum(ave) - sum(ks)) < 120  # the weights: half and half
    assert min(ave) >= 10 and max(ave) <= 30  # 30 ave samples, ~20 draws each
    assert min(ks) >= 40 and max(ks) <= 80  # 10 ks samples, ~60 draws each


def test_a_client_reconnects_when_the_server_closed_its_idle_connection(build):
    with serve_in_thread(build.root, limits=ServerLimits(keep_alive=0.2)) as server:
        stream = AVStream(server.url, decode=False)
        shard = stream.shards[0]
        reader = stream._reader
        spy = Spy(stream, "_drop")
        first = reader.read(shard, 0, 512)
        for _ in range(100):  # up to 10 s for the server to close the idle kept-alive connection
            if not server.guard.open:
                break
            time.sleep(0.1)
        assert not server.guard.open
        assert reader.read(shard, 0, 512) == first == build.shards[0].read_bytes()[:512]
        assert len(spy.calls) == 1  # the dead connection was dropped once and the read retried on a new one


def test_the_shard_cache_fetches_each_shard_once_per_machine(build, server, tmp_path):
    cache = tmp_path / "cache"
    (cache / "sub").mkdir(parents=True)
    foreign = [cache / "notes.txt", cache / "avuie-shard-mine.tar", cache / "sub" / "x.tar"]
    for path in foreign:
        path.write_text("not the cache's")
    stream = AVStream(server.url, decode=False, seed=5, cache_dir=str(cache))
    downloads = Spy(stream, "download")
    assert keys(stream) == keys(AVStream(build.root, decode=False, seed=5))
    assert len(downloads.calls) == len(build.shards) == stream.cache.downloads
    for path in build.shards:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert (cache / f"avuie-shard-{digest}.tar").read_bytes() == path.read_bytes()
    reads = Spy(stream, "read")
    stream.set_epoch(1)  # a second epoch: nothing fetched again, nothing read over HTTP
    assert keys(stream) == keys(AVStream(build.root, decode=False, seed=5, epoch=1))
    assert stream.cache.downloads == len(build.shards) and reads.calls == []
    other_rank = AVStream(server.url, decode=False, seed=5, cache_dir=str(cache), rank=1, world_size=2)
    assert len(keys(StatefulLoader(other_rank, 4, 2))) == len(build.keys) // 2
    assert len(list(cache.glob("avuie-shard-*.tar"))) == len(build.shards) + 1  # + the foreign one
    assert all(path.read_text() == "not the cache's" for path in foreign)


def test_the_shard_cache_stays_under_its_size_and_keeps_foreign_files(build, server, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "notes.txt").write_text("keep me")
    sizes = sorted(p.stat().st_size for p in build.shards)
    limit = sizes[-1] + sizes[-2]
    stream = AVStream(server.url, decode=False, seed=6, cache_dir=str(cache), cache_bytes=limit)
    assert keys(stream) == keys(AVStream(build.root, decode=False, seed=6))
    held = sum(p.stat().st_size for p in cache.glob("avuie-shard-*.tar"))
    assert 0 < held <= limit and stream.cache.downloads >= len(build.shards)
    assert (cache / "notes.txt").read_text() == "keep me"
    tiny = AVStream(server.url, decode=False, seed=6, cache_dir=str(tmp_path / "tiny"), cache_bytes=100)
    assert keys(tiny) == keys(AVStream(build.root, decode=False, seed=6))  # too big to cache: ranged reads
    assert tiny.cache.downloads == 0


def test_threads_filling_the_cache_never_overfill_it(tmp_path, monkeypatch):
    """A finished download is renamed into place under the cache lock, so a concurrent room-making listing never
    falls between the part's name and the entry's; at every rename the entries fit under max_bytes."""
    import fcntl
    import os
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from avuie.shards import cache as cache_module

    size, limit = 1000, 3000
    blobs = [bytes([n]) * size for n in range(24)]
    shards = [
        SimpleNamespace(
            transport="http",
            location=f"s{n}",
            scan=SimpleNamespace(sha256=hashlib.sha256(blob).hexdigest(), num_bytes=size),
        )
        for n, blob in enumerate(blobs)
    ]

    class Reader:
        def download(self, shard, out):
            time.sleep(0.002)
            out.write(blobs[int(shard.location[1:])])
            return size

    store = cache_module.ShardCache(tmp_path, limit)
    lock_path = tmp_path / f".{cache_module.PREFIX}cache.lock"
    unlocked_renames, overfull, real_replace = [], [], os.replace

    def checked_replace(src, dst):
        with open(lock_path, "a+b") as probe:
            try:
                fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                unlocked_renames.append(dst)  # nobody held the cache lock
            except BlockingIOError:
                pass
        real_replace(src, dst)
        held = sum(p.stat().st_size for p in tmp_path.glob(f"{cache_module.PREFIX}*.tar"))
        if held > limit:
            overfull.append(held)

    monkeypatch.setattr(cache_module.os, "replace", checked_replace)
    with ThreadPoolExecutor(6) as pool:
        paths = list(pool.map(lambda n: store.local_copy(shards[n % 24], Reader()), range(96)))
    assert unlocked_renames == [] and overfull == []
    assert store.downloads >= 3 and all(path is None or path.parent == tmp_path for path in paths)
    assert sum(p.stat().st_size for p in tmp_path.glob(f"{cache_module.PREFIX}*.tar")) <= limit


def test_a_download_that_does_not_match_the_index_sha256_is_refused(build, tmp_path):
    copy = write_build(tmp_path / "out", {"ave": {"train": [4]}}, frames=2, size=24, audio_seconds=0.05)
    cache = tmp_path / "cache"
    with serve_in_thread(copy.root) as server:
        stream = AVStream(server.url, decode=False, cache_dir=str(cache))
        data = bytearray(copy.shards[0].read_bytes())
        data[700] ^= 0xFF  # the shard changes on the server after the stream read its index
        copy.shards[0].write_bytes(bytes(data))
        with pytest.raises(ValueError, match="sha256"):
            keys(stream)
    assert list(cache.iterdir()) == [] or all(p.name.endswith(".lock") for p in cache.iterdir())


def _tar(members: dict[str, bytes], fmt=tarfile.USTAR_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_split_members_reads_plain_and_extended_headers_and_refuses_broken_bytes():
    members = {"k1.json": b"{}", "k1.frame_00.jpg": b"\xff\xd8" * 300, "k1.audio.wav": b"RIFF"}
    plain = split_members(_tar(members))
    assert plain == {"json": b"{}", "frame_00.jpg": b"\xff\xd8" * 300, "audio.wav": b"RIFF"}
    long_key = "d/" + "x" * 150
    extended = {f"{long_key}.json": b"{}", f"{long_key}.audio.wav": b"RIFF"}
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):  # long names: pax or GNU headers
        assert split_members(_tar(extended, fmt)) == {"json": b"{}", "audio.wav": b"RIFF"}
    assert split_members(memoryview(_tar(members))) == plain
    broken = bytearray(_tar(members))
    broken[0] ^= 0x01  # the first header's name changes: its checksum no longer matches
    with pytest.raises(ValueError, match="checksum"):
        split_members(bytes(broken))
    with pytest.raises(ValueError):
        split_members(_tar(members)[:1100])  # cut inside the second member
    with pytest.raises(ValueError, match="2 keys"):
        split_members(_tar({"a.json": b"{}", "b.json": b"{}"}))


def test_lanes_0_keeps_the_sample_level_order_independent_of_world_and_batch(build, server):
    def stream(**kw):
        return AVStream(build.root, decode=False, lanes=0, **kw)

    whole = keys(stream())
    assert sorted(whole) == sorted(build.keys)
    assert keys(StatefulLoader(stream(), 5, 3)) == whole
    for world in (2, 3):
        for rank in range(world):
            assert keys(StatefulLoader(stream(rank=rank, world_size=world), 4, 2)) == whole[rank::world]
    mixed = keys(stream(weights={"ave": 1, "ks": 1}, samples_per_epoch=24))
    halves = [
        keys(stream(weights={"ave": 1, "ks": 1}, samples_per_epoch=24, rank=r, world_size=2)) for r in (0, 1)
    ]
    assert halves == [mixed[0::2], mixed[1::2]]
    assert keys(AVStream(server.url, decode=False, lanes=0)) == whole
