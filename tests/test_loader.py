"""The streaming loader: decoding, epochs over ranks x workers, exact resume, mixtures, HTTP and s3 sources."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import torch
from avuie.shards.loader import AVStream, StatefulLoader, collate_samples
from avuie.shards.server import serve_in_thread

from tests.shardkit import write_build

TOKEN = "loader-token"
# Uneven shards on purpose: sample-level dealing must not care.
PLAN = {"ave": {"train": [7, 3, 5], "test": [4]}, "s4": {"train": [6, 2]}, "ks": {"train": [9]}}
TRAIN = 32

pytestmark = pytest.mark.filterwarnings("ignore:.*worker processes in total")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return write_build(tmp_path_factory.mktemp("loader") / "out", PLAN, frames=2, size=24, audio_seconds=0.05)


@pytest.fixture(scope="module")
def server(build):
    with serve_in_thread(build.root, token=TOKEN) as handle:
        yield handle


def keys(stream) -> list[str]:
    """Keys of every item or batch a stream or loader yields, in order."""
    out = []
    for output in stream:
        out.extend(output["key"] if isinstance(output["key"], list) else [output["key"]])
    return out


def test_items_decode_to_tensors(build):
    items = {item["sample"]["source"]: item for item in AVStream(build.root, split="train")}
    video = items["ave"]["media"]
    assert video["video"].dtype == torch.uint8 and video["video"].shape == (2, 3, 24, 24)
    assert video["audio"].dtype == torch.float32 and video["audio"].shape == (800,)
    assert 0.3 < video["audio"].abs().max() <= 1.0
    seg = items["s4"]["media"]
    assert seg["image"].shape == (3, 24, 24) and seg["image"].dtype == torch.uint8
    assert seg["mask_0"].dtype == torch.uint8 and set(seg["mask_0"].unique().tolist()) == {0, 1}
    assert items["s4"]["key"] == items["s4"]["sample"]["key"] and items["s4"]["shard"].startswith(
        "shards/train/"
    )
    floats = next(iter(AVStream(build.root, frame_format="float", shuffle=False)))["media"]["video"]
    assert (
        floats.dtype == torch.float32 and 0.0 <= floats.min() and floats.max() <= 1.0 and floats.max() > 0.2
    )
    raw = next(iter(AVStream(build.root, decode=False, shuffle=False)))["media"]
    assert raw["video"][0][:2] == b"\xff\xd8" and raw["audio"][0][:4] == b"RIFF"


def test_collate_pads_and_stacks(build):
    stream = AVStream(build.root, split="train", shuffle=False)
    items = [item for item in stream if item["sample"]["source"] in ("ave", "s4")]
    ave, s4 = items[0], next(item for item in items if item["sample"]["source"] == "s4")
    short = dict(ave, media={**ave["media"], "video": ave["media"]["video"][:1]})
    batch = collate_samples([ave, short, s4])
    assert batch["key"] == [ave["key"], ave["key"], s4["key"]]
    assert batch["media"]["video"].shape == (3, 2, 3, 24, 24)
    assert batch["lengths"]["video"].tolist() == [2, 1, 0]
    assert torch.equal(batch["media"]["video"][1, 1], torch.zeros(3, 24, 24, dtype=torch.uint8))
    assert batch["media"]["audio"].shape == (3, 800) and batch["lengths"]["audio"].tolist() == [800, 800, 800]
    assert batch["lengths"]["mask_0"].tolist() == [0, 0, 24] and batch["media"]["image"].shape == (
        3,
        3,
        24,
        24,
    )
    assert batch["index"].tolist() == [ave["index"], ave["index"], s4["index"]]


def test_epoch_order_is_deterministic_and_complete(build):
    first = keys(AVStream(build.root, split="train", decode=False))
    assert (
        sorted(first) == sorted(k for k in build.keys if build.splits[k] == "train") and len(first) == TRAIN
    )
    assert keys(AVStream(build.root, split="train", decode=False)) == first
    assert keys(AVStream(build.root, split="train", decode=False, epoch=1)) != first
    assert keys(AVStream(build.root, split="train", decode=False, seed=5)) != first
    assert keys(AVStream(build.root, decode=False, shuffle=False)) == build.keys
    assert keys(AVStream(build.root, split=["test"], decode=False, shuffle=False)) == build.keys[:4]
    stream = AVStream(build.root, split="train", decode=False)
    stream.set_epoch(1)
    assert keys(stream) == keys(AVStream(build.root, split="train", decode=False, epoch=1))
    assert len(stream) == TRAIN


def test_two_ranks_two_workers_cover_the_epoch_once(build):
    whole = keys(AVStream(build.root, split="train", decode=False))
    per_rank = []
    for rank in range(2):

        def stream(rank=rank):
            return AVStream(build.root, split="train", decode=False, rank=rank, world_size=2)

        assert len(stream()) == TRAIN // 2
        per_rank.append(keys(StatefulLoader(stream(), batch_size=3, num_workers=2)))
        assert per_rank[-1] == keys(StatefulLoader(stream(), batch_size=3, num_workers=0))
    union = per_rank[0] + per_rank[1]
    assert len(union) == len(set(union)) == TRAIN and set(union) == set(whole)
    assert per_rank[0] != per_rank[1][: len(per_rank[0])]


def test_worker_count_does_not_change_the_order(build):
    assert keys(StatefulLoader(AVStream(build.root, split="train", decode=False))) == keys(
        AVStream(build.root, split="train", decode=False)
    )
    for batch_size in (None, 4):
        expected = keys(StatefulLoader(AVStream(build.root, split="train", decode=False), batch_size))
        assert sorted(expected) == sorted(k for k in build.keys if build.splits[k] == "train")
        for workers in (1, 2, 3):
            loader = StatefulLoader(AVStream(build.root, split="train", decode=False), batch_size, workers)
            assert keys(loader) == expected, (workers, batch_size)


def test_resume_after_k_items_equals_the_uninterrupted_stream(build):
    whole = keys(AVStream(build.root, split="train", decode=False))
    stream = AVStream(build.root, split="train", decode=False)
    taken = [item["key"] for item in itertools.islice(iter(stream), 11)]
    state = stream.state_dict()
    assert state["consumed"] == 11 and taken == whole[:11]
    resumed = AVStream(build.root, split="train", decode=False)
    resumed.load_state_dict(state)
    assert keys(resumed) == whole[11:]
    resumed.set_epoch(0)  # same epoch: the resume point stays
    assert keys(resumed) == whole[11:]
    resumed.set_epoch(1)
    assert keys(resumed) == keys(AVStream(build.root, split="train", decode=False, epoch=1))


def test_resume_with_workers_and_batches(build):
    def stream():
        return AVStream(build.root, split="train", decode=False, rank=1, world_size=2)

    whole = keys(StatefulLoader(stream(), 3))
    loader = StatefulLoader(stream(), 3, 2)
    seen = []
    for batch in itertools.islice(iter(loader), 2):
        seen.extend(batch["key"])
    state = loader.state_dict()
    assert state["consumed"] == 6 and state["block_size"] == 3 and seen == whole[:6]
    fresh = StatefulLoader(stream(), 3, 3)  # another number of workers: the same order
    fresh.load_state_dict(state)
    assert keys(fresh) == whole[6:]
    with pytest.raises(ValueError, match="block_size"):  # another batch size deals another order
        StatefulLoader(stream(), 4, 3).load_state_dict(state)
    wrong_world = AVStream(build.root, split="train", decode=False, rank=0, world_size=4)
    with pytest.raises(ValueError, match="world_size"):
        wrong_world.load_state_dict(state)


def test_mixture_follows_the_weights(build):
    weights = {"ave": 0.5, "s4": 0.3, "ks": 0.2}
    stream = AVStream(build.root, split="train", weights=weights, resample=True, decode=False)
    drawn = [item["sample"]["source"] for item in itertools.islice(iter(stream), 3000)]
    counts = Counter(drawn)
    for source, weight in weights.items():
        assert abs(counts[source] / len(drawn) - weight) < 0.03, counts
    one_lane = AVStream(build.root, split="train", weights=weights, resample=True, decode=False, lanes=1)
    ave_keys = [key for key in keys(itertools.islice(iter(one_lane), 200)) if build.sources[key] == "ave"]
    assert len(set(ave_keys[:15])) == 15  # each source walks its own permutation before repeating
    assert sorted(ave_keys[:15]) == sorted(
        k for k in build.keys if build.sources[k] == "ave" and build.splits[k] == "train"
    )


def test_mixture_resume_workers_temperature_and_families(build):
    def mixture(**kw):
        return AVStream(build.root, split="train", weights={"ave": 1, "ks": 1}, decode=False, **kw)

    whole = keys(mixture())
    assert len(whole) == TRAIN and {build.sources[k] for k in whole} == {"ave", "ks"}
    assert keys(StatefulLoader(mixture(), 5, 2)) == keys(StatefulLoader(mixture(), 5, 0))
    stream = mixture()
    list(itertools.islice(iter(stream), 13))
    resumed = mixture()
    resumed.load_state_dict(stream.state_dict())
    assert keys(resumed) == whole[13:]
    hot = AVStream(build.root, split="train", temperature=1.0, decode=False)
    assert hot.probabilities == pytest.approx({"ave": 15 / 32, "ks": 9 / 32, "s4": 8 / 32})
    flat = AVStream(build.root, split="train", temperature=1e6, decode=False, mix_by="family")
    assert flat.probabilities == pytest.approx({n: 1 / 3 for n in flat.group_names})
    assert (
        len(keys(AVStream(build.root, weights={"segmentation": 1}, mix_by="family", samples_per_epoch=7)))
        == 7
    )


def test_bad_arguments_get_clear_errors(build, tmp_path):
    with pytest.raises(FileNotFoundError):
        AVStream(tmp_path / "missing")
    with pytest.raises(ValueError, match="no shards"):
        AVStream(tmp_path)
    with pytest.raises(ValueError, match="weights name"):
        AVStream(build.root, weights={"nope": 1.0})
    with pytest.raises(ValueError, match="not both"):
        AVStream(build.root, weights={"ave": 1.0}, temperature=2.0)
    with pytest.raises(ValueError, match="no samples of split"):
        AVStream(build.root, split="validation")
    with pytest.raises(TypeError):
        len(AVStream(build.root, resample=True))


def test_stream_from_the_server_equals_local(build, server):
    local = keys(AVStream(build.root, decode=False, seed=3))
    assert keys(AVStream(server.url, token=TOKEN, decode=False, seed=3)) == local
    remote = next(iter(AVStream(server.url, token=TOKEN, shuffle=False)))
    first = next(iter(AVStream(build.root, shuffle=False)))
    assert torch.equal(remote["media"]["video"], first["media"]["video"])
    urls = [server.url + "/" + p.relative_to(build.root).as_posix() for p in build.shards]
    assert keys(AVStream(urls, token=TOKEN, decode=False, seed=3)) == keys(
        AVStream([str(p) for p in build.shards], decode=False, seed=3)
    )
    assert keys(StatefulLoader(AVStream(server.url, token=TOKEN, decode=False, seed=3), 4, 2)) == keys(
        StatefulLoader(AVStream(build.root, decode=False, seed=3), 4, 0)
    )
    with pytest.raises(ValueError, match="401"):
        AVStream(server.url, token="wrong")


def test_stream_from_s3_equals_local(build, tmp_path):
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        options = {
            "key": "test",
            "secret": "test",
            "client_kwargs": {"endpoint_url": f"http://{host}:{port}"},
        }
        import s3fs

        fs = s3fs.S3FileSystem(**options)
        fs.mkdir("avuie")
        fs.put(str(build.root) + "/", "avuie/plain/", recursive=True)
        with_tables = write_build(
            tmp_path / "tables", PLAN, frames=2, size=24, audio_seconds=0.05, tars_info=True
        )
        fs.put(str(with_tables.root) + "/", "avuie/tables/", recursive=True)
        local = keys(AVStream(build.root, decode=False, seed=7))
        assert keys(AVStream("s3://avuie/plain", storage_options=options, decode=False, seed=7)) == local
        stream = AVStream("s3://avuie/tables", storage_options=options, seed=7)
        assert [s.scan.samples for s in stream.shards] == [
            s.scan.samples for s in AVStream(build.root).shards
        ]
        loader = StatefulLoader(stream, batch_size=4, num_workers=2)
        assert loader.worker_context() == "forkserver"  # fsspec clients do not survive fork()
        assert StatefulLoader(AVStream(build.root), num_workers=2).worker_context() is None
        batches = list(loader)
        assert [k for b in batches for k in b["key"]] == keys(StatefulLoader(AVStream(build.root, seed=7), 4))
        assert batches[0]["media"]["video"].shape[2:] == (3, 24, 24)
    finally:
        moto.stop()
