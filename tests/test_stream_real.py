"""Real avuie builds (ave, s4, and ave rolled over into parts) served over HTTP read the same as on disk.

AVStream over the server yields the local stream's keys, order and tensors; plain webdataset reads every sample
through the server's shard URLs; /index.json counts agree with the builds' manifests.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections import Counter

import httpx
import pyarrow.parquet as pq
import pytest
import torch
from avuie.shards.index import manifest_counts
from avuie.shards.loader import AVStream
from avuie.shards.members import unpack
from avuie.shards.server import serve_in_thread

from tests.buildkit import build_source, read_back

TOKEN = "real-stream-token"
BUILDS = {"ave": ("ave", {}), "s4": ("s4", {}), "parts": ("ave", {"shard_bytes": 100_000})}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    for name, (source, options) in BUILDS.items():
        stats = build_source(source, root / name, **options)
        assert stats["totals"]["written"] > 0, name
    return root


@pytest.fixture(scope="module")
def open_server(root):
    with serve_in_thread(root) as handle:
        yield handle


@pytest.fixture(scope="module")
def token_server(root):
    with serve_in_thread(root, token=TOKEN) as handle:
        yield handle


def manifest_rows(root) -> list[dict]:
    """Every manifest row of every build under root, with "build" (its folder name) added."""
    rows = []
    for name in BUILDS:
        table = pq.read_table(root / name / "manifest.parquet", columns=["key", "source", "split", "shard"])
        rows.extend({**row, "build": name} for row in table.to_pylist())
    return rows


def test_the_parts_build_really_rolled_over(root):
    train_tars = sorted(p.name for p in (root / "parts" / "shards" / "train").glob("*.tar"))
    assert len(train_tars) > 1, train_tars
    assert any(name.endswith("-1.tar") for name in train_tars)
    assert len(list((root / "ave" / "shards" / "train").glob("*.tar"))) == 1


@pytest.mark.parametrize(
    "guarded, shuffle", [(False, False), (True, True)], ids=["open-ordered", "token-shuffled"]
)
def test_avstream_over_http_equals_avstream_over_the_folder(
    root, open_server, token_server, guarded, shuffle
):
    server, token = (token_server, TOKEN) if guarded else (open_server, None)
    local = list(AVStream(root, shuffle=shuffle, seed=3))
    remote = list(AVStream(server.url, shuffle=shuffle, seed=3, token=token))
    assert [item["key"] for item in remote] == [item["key"] for item in local]
    assert len(local) == len(manifest_rows(root)) == 24
    assert {item["sample"]["source"] for item in local} == {"ave", "s4"}
    for mine, theirs in zip(local, remote, strict=True):
        assert theirs["shard"] == mine["shard"] and theirs["index"] == mine["index"]
        assert theirs["sample"] == mine["sample"]
        assert sorted(theirs["media"]) == sorted(mine["media"]) != []
        for role, tensor in mine["media"].items():
            assert theirs["media"][role].dtype == tensor.dtype, (mine["key"], role)
            assert torch.equal(theirs["media"][role], tensor), (mine["key"], role)
    roles = {role for item in local for role in item["media"]}
    assert {"video", "audio", "image", "mask_0"} <= roles
    masks = [item["media"]["mask_0"] for item in local if "mask_0" in item["media"]]
    assert all(mask.any() for mask in masks)  # real masks, not blank decodes that would trivially match


def webdataset_urls(server_url: str, entries: list[dict]) -> list[str]:
    """The shard URLs as webdataset opens them: plain http:// (webdataset runs curl), else a python pipe."""
    if shutil.which("curl"):
        return [server_url + entry["url"] for entry in entries]
    fetch = "import sys,httpx; sys.stdout.buffer.write(httpx.get(sys.argv[1]).content)"
    return [f'pipe:{sys.executable} -c "{fetch}" {server_url}{entry["url"]}' for entry in entries]


def fingerprint(key: str, record: dict, files: dict[str, bytes]) -> tuple:
    """A sample as (key, its JSON, ((member, sha256), ...)) so that two reads compare as multisets."""
    members = tuple(sorted((name, hashlib.sha256(data).hexdigest()) for name, data in files.items()))
    return key, json.dumps(record, sort_keys=True), members


def test_plain_webdataset_reads_every_sample_through_the_server(root, open_server):
    import webdataset as wds

    entries = httpx.get(open_server.url + "/index.json").json()["shards"]
    assert {entry["path"].split("/", 1)[0] for entry in entries} == set(BUILDS)
    served = []
    for sample in wds.WebDataset(webdataset_urls(open_server.url, entries), shardshuffle=False):
        files = unpack({k: v for k, v in sample.items() if not k.startswith("__")})  # logical members
        record = json.loads(files.pop("json"))
        assert record["key"] == sample["__key__"]
        assert set(files) == {f for media in record["media"] for f in media["files"]}, sample["__key__"]
        served.append(fingerprint(sample["__key__"], record, files))
    assert len(served) == 24
    assert Counter(key for key, _, _ in served) == Counter(row["key"] for row in manifest_rows(root))
    on_disk = [
        fingerprint(item["key"], item["sample"], item["files"])
        for name in BUILDS
        for item in read_back(root / name)
    ]
    assert Counter(served) == Counter(on_disk)


def test_index_counts_equal_the_manifests(root, open_server):
    index = httpx.get(open_server.url + "/index.json").json()
    rows = manifest_rows(root)
    per_source_split = Counter()
    per_shard = Counter()
    for entry in index["shards"]:
        (source,) = entry["counts"]["source"]  # a real build writes one source and one split per tar
        (split,) = entry["counts"]["split"]
        build = entry["path"].split("/", 1)[0]
        per_source_split[(build, source, split)] += entry["samples"]
        per_shard[entry["path"]] += entry["samples"]
    assert per_source_split == Counter((row["build"], row["source"], row["split"]) for row in rows)
    assert per_shard == Counter(f"{row['build']}/{row['shard']}" for row in rows)
    assert index["counts"] == manifest_counts(root)
    assert index["counts"]["source"] == {"ave": 12, "s4": 12}
    assert (
        index["total"]
        == len(rows)
        == sum(json.loads((root / name / "stats.json").read_text())["totals"]["written"] for name in BUILDS)
    )
    assert sorted(index["manifests"]) == [f"/{name}/manifest.parquet" for name in sorted(BUILDS)]
