"""The shard server on 127.0.0.1: index, Range reads, path safety, token, 64 clients, webdataset, SIGTERM."""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from avuie.shards.index import (
    manifest_counts,
    scan_local,
    scan_stream,
    sha256_file,
    table_from_done,
)
from avuie.shards.layout import find_shards
from avuie.shards.server import bind_socket, serve_in_thread

from tests.shardkit import make_sample, write_build, write_shard

TOKEN = "s3cret-token"
PLAN = {"ave": {"train": [6, 3], "test": [2]}, "s4": {"train": [4]}, "ks": {"val": [5]}}


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    built = write_build(root / "out", PLAN, frames=3, size=48, audio_seconds=0.5)
    outside = root / "secret.json"
    outside.write_text('{"secret": "outside-the-root"}')
    (built.root / "shards" / "escape.json").symlink_to(outside)
    (root / "elsewhere.tar").write_bytes(built.shards[0].read_bytes())
    (built.root / "shards" / "escape.tar").symlink_to(root / "elsewhere.tar")  # never listed nor served
    (built.root / "shards" / "train" / "leftover.tar.tmp").write_bytes(b"partial")
    return built


@pytest.fixture(scope="module")
def open_server(build):
    with serve_in_thread(build.root) as handle:
        yield handle


@pytest.fixture(scope="module")
def token_server(build):
    with serve_in_thread(build.root, token=TOKEN) as handle:
        yield handle


def raw_get(base_url: str, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    """GET a path exactly as written (no client-side normalisation of dots or escapes)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


def test_index_lists_every_shard_with_counts_and_checksums(build, open_server):
    index = httpx.get(open_server.url + "/index.json").json()
    paths = [entry["path"] for entry in index["shards"]]
    assert paths == [p.relative_to(build.root).as_posix() for p in build.shards]
    assert not any(p.endswith(".tmp") for p in paths)
    for entry, path in zip(index["shards"], build.shards, strict=True):
        assert entry["url"] == "/" + entry["path"]
        assert entry["sha256"] == sha256_file(path)
        assert entry["bytes"] == path.stat().st_size
        assert entry["samples"] == len(scan_local(path).samples)
    assert index["total"] == len(build.keys) == 20
    assert index["counts"] == manifest_counts(build.root)
    assert index["counts"]["split"] == {"test": 2, "train": 13, "val": 5}
    assert index["manifests"] == ["/manifest.parquet"] and index["stats"] == ["/stats.json"]
    assert httpx.get(open_server.url + "/healthz").json() == {"status": "ok"}


def test_manifest_stats_and_tables_are_served(build, open_server):
    assert (
        httpx.get(open_server.url + "/manifest.parquet").content
        == (build.root / "manifest.parquet").read_bytes()
    )
    assert httpx.get(open_server.url + "/stats.json").json()["splits"]["train"]["written"] == 13
    entry = httpx.get(open_server.url + "/index.json").json()["shards"][0]
    table = httpx.get(open_server.url + entry["table"]).json()
    done = {"tars_info": {build.shards[0].name: {"table": table}}}
    assert table_from_done(done, build.shards[0].name).samples == scan_local(build.shards[0]).samples


def test_index_can_carry_every_table_in_one_response(open_server):
    plain = httpx.get(open_server.url + "/index.json").json()
    inline = httpx.get(open_server.url + "/index.json?tables=1").json()
    assert plain["shards"] and all("table_data" not in entry for entry in plain["shards"])
    for entry in inline["shards"]:
        assert entry["table_data"] == httpx.get(open_server.url + entry["table"]).json()
    assert [{k: v for k, v in e.items() if k != "table_data"} for e in inline["shards"]] == plain["shards"]


def test_connections_send_without_nagle_delay(open_server):
    # asyncio turns Nagle's algorithm off only on sockets made as TCP (proto IPPROTO_TCP); with it on, a
    # response's body waited for the ACK of its header segment (~40 ms of delayed ACK per request).
    listening = bind_socket("127.0.0.1", 0)
    assert listening.proto == socket.IPPROTO_TCP
    listening.close()
    parts = urlsplit(open_server.url)
    client = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    client.request("GET", "/healthz")
    assert client.getresponse().read() == b'{"status":"ok"}'
    served = [p.transport.get_extra_info("socket") for p in list(open_server.guard.open)]
    assert served and all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in served)
    client.close()


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-511", 0, 511),
        ("bytes=1000-", 1000, None),
        ("bytes=-700", -700, None),
        ("bytes=513-513", 513, 513),
    ],
)
def test_range_reads_return_the_right_bytes(build, open_server, header, first, last):
    data = build.shards[1].read_bytes()
    size = len(data)
    start = first if first >= 0 else size + first
    end = size - 1 if last is None else last
    url = open_server.url + "/" + build.shards[1].relative_to(build.root).as_posix()
    response = httpx.get(url, headers={"Range": header})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert response.content == data[start : end + 1]


def test_multiple_ranges_unsatisfiable_and_head(build, open_server):
    data = build.shards[0].read_bytes()
    url = open_server.url + "/" + build.shards[0].relative_to(build.root).as_posix()
    response = httpx.get(url, headers={"Range": "bytes=0-9,100-119"})
    assert response.status_code == 206 and "multipart/byteranges" in response.headers["content-type"]
    assert data[0:10] in response.content and data[100:120] in response.content
    response = httpx.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert response.status_code == 416 and response.headers["content-range"] == f"bytes */{len(data)}"
    head = httpx.head(url)
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(data)
    assert head.headers["accept-ranges"] == "bytes"
    assert httpx.post(url).status_code == 405


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.json",
        "/shards/../../secret.json",
        "/%2e%2e/secret.json",
        "/shards/%2E%2E/%2e%2e/secret.json",
        "/%2e%2e%2fsecret.json",
        "//etc/passwd",
        "/%2Fetc%2Fpasswd",
        "/shards/escape.json",
        "/shards/escape.tar",
        "/_table/shards/escape.tar",
        "/_table/../secret.json",
        "/shards/train/leftover.tar.tmp",
        "/shards/train/..%5c..%5csecret.json",
    ],
)
def test_paths_never_escape_the_root(open_server, path):
    status, body = raw_get(open_server.url, path)
    assert 400 <= status < 500
    assert b"outside-the-root" not in body and b"root:" not in body


def test_token_is_enforced(build, token_server):
    rel = "/" + build.shards[0].relative_to(build.root).as_posix()
    for path in ("/healthz", "/index.json", rel, "/manifest.parquet", "/_table" + rel):
        assert httpx.get(token_server.url + path).status_code == 401
        assert (
            httpx.get(token_server.url + path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        )
        assert (
            httpx.get(token_server.url + path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code
            == 200
        )
    response = httpx.get(token_server.url + "/index.json")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_healthz_needs_the_token_when_one_is_set(token_server, open_server):
    denied = httpx.get(token_server.url + "/healthz")
    assert denied.status_code == 401 and "status" not in denied.json()
    assert denied.headers["www-authenticate"].startswith("Bearer")
    allowed = httpx.get(token_server.url + "/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200 and allowed.json() == {"status": "ok"}
    assert httpx.get(open_server.url + "/healthz").json() == {"status": "ok"}  # no token set: open


def test_64_concurrent_clients_read_whole_shards(token_server):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    shards = httpx.get(token_server.url + "/index.json", headers=headers).json()["shards"]
    barrier = threading.Barrier(64)

    def read_whole(number: int) -> bool:
        entry = shards[number % len(shards)]
        digest = hashlib.sha256()
        with httpx.Client(headers=headers, timeout=60) as client:
            barrier.wait(timeout=60)
            with client.stream("GET", token_server.url + entry["url"]) as response:
                assert response.status_code == 200
                for chunk in response.iter_bytes(4096):
                    digest.update(chunk)
        return digest.hexdigest() == entry["sha256"]

    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(read_whole, range(64)))
    assert results == [True] * 64


def test_plain_webdataset_reads_every_sample(build, open_server, token_server):
    import webdataset as wds

    entries = httpx.get(open_server.url + "/index.json").json()["shards"]
    urls = [open_server.url + entry["url"] for entry in entries]
    if shutil.which("curl"):  # webdataset opens http:// URLs with `curl`
        keys = [sample["__key__"] for sample in wds.WebDataset(urls, shardshuffle=False)]
        assert sorted(keys) == sorted(build.keys)
    # With a token (or without curl): a pipe: URL; here a python one-liner that sends the header.
    fetch = "import sys,httpx; sys.stdout.buffer.write(httpx.get(sys.argv[1], headers={{'Authorization': 'Bearer {t}'}}).content)"
    piped = [
        f'pipe:{sys.executable} -c "{fetch.format(t=TOKEN)}" {token_server.url}{entry["url"]}'
        for entry in entries
    ]
    samples = list(wds.WebDataset(piped, shardshuffle=False))
    assert sorted(sample["__key__"] for sample in samples) == sorted(build.keys)
    assert all(json.loads(sample["json"])["key"] == sample["__key__"] for sample in samples)


def test_fsspec_http_streams_and_reads_ranges(build, open_server):
    import fsspec

    fs = fsspec.filesystem("http")
    url = open_server.url + "/" + build.shards[2].relative_to(build.root).as_posix()
    data = build.shards[2].read_bytes()
    assert fs.cat_file(url, start=512, end=2048) == data[512:2048]
    with fs.open(url, "rb") as handle:
        assert scan_stream(handle).samples == scan_local(build.shards[2]).samples


def test_index_picks_up_new_shards(tmp_path):
    built = write_build(tmp_path, {"ave": {"train": [2]}})
    with serve_in_thread(built.root) as handle:
        assert httpx.get(handle.url + "/index.json").json()["total"] == 2
        extra = [make_sample("ave", "train", 9, frames=1, size=16, audio_seconds=0.05)]
        write_shard(built.root / "shards" / "train" / "ave-train-00001.tar", extra)
        index = httpx.get(handle.url + "/index.json").json()
        assert index["total"] == 3 and len(index["shards"]) == 2
    assert [p.name for p in find_shards(built.root)] == ["ave-train-00000.tar", "ave-train-00001.tar"]


SERVE_SCRIPT = """
import typer
from avuie.cli.serve import register
app = typer.Typer()
@app.callback()
def main():
    pass
register(app)
app()
"""


def test_cli_serve_stops_cleanly_on_sigterm(build):
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT, "serve", str(build.root), "--port", "0", "--token", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("Serving 5 shards (20 samples)"), line + process.stderr.read()
        url = line.split(" at ")[1].split(" ")[0]
        assert (
            httpx.get(url + "/index.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()["total"] == 20
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        assert "server stopped" in process.stderr.read()
        with pytest.raises(httpx.ConnectError):
            httpx.get(url + "/healthz")
    finally:
        if process.poll() is None:
            process.kill()


def test_cli_serve_rejects_a_missing_directory(tmp_path):
    from typer.testing import CliRunner

    from avuie.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path / "missing")])
    assert result.exit_code != 0 and "no such build directory" in result.output
    assert Path(tmp_path).exists()


def test_sha256_file(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"abc" * 1000)
    assert sha256_file(tmp_path / "x.bin") == hashlib.sha256(b"abc" * 1000).hexdigest()
