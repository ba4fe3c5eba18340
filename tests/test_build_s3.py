"""Object storage in and out, on moto's s3 server over loopback: `--out s3://...` equals the local build and a
rerun (here or on a fresh machine) skips what is there; uploads go tars, markers, then manifest/stats; `--raw
s3://...` reads the annotations from a mirror and fetches media where they are cut; validate, query, stats,
export, serve and AVStream read the same URLs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from typer.testing import CliRunner

from avuie.build.remote_out import push
from avuie.cli import app
from avuie.samples import ensure_sample
from tests.cloudkit import BUCKET, build_state, files_of, moto_s3, s3, s3_env

runner = CliRunner()


@pytest.fixture(scope="module")
def endpoint():
    with moto_s3() as url:
        yield url


@pytest.fixture
def env(endpoint, tmp_path, monkeypatch):
    values = s3_env(endpoint, tmp_path / "cache")
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def _build_file(path: Path, out: str, sources: tuple[str, ...] = ("ave", "ref_avs")) -> str:
    body = "".join(f"  {s}: {{}}\n" for s in sources)
    path.write_text(f"out: {out}\nworkers: 2\ndefaults:\n  shard_size: 2\nsources:\n{body}")
    return str(path)


def _run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _events(output: str, kind: str) -> list[dict]:
    return [
        e for e in (json.loads(x) for x in output.splitlines() if x.startswith("{")) if e["event"] == kind
    ]


def test_out_s3_equals_the_local_build_and_reruns_skip_what_is_there(endpoint, env, tmp_path, monkeypatch):
    url = f"s3://{BUCKET}/out-a"
    _run("build", "--config", _build_file(tmp_path / "local.yaml", str(tmp_path / "local")))
    first = _run("build", "--config", _build_file(tmp_path / "s3.yaml", url), "--progress", "json")
    local, remote = files_of(tmp_path / "local"), files_of(url, endpoint)
    assert sorted(remote) == sorted(
        local
    )  # tars, markers, sources/*.json, manifest, rejects, stats, build.json
    assert build_state(remote) == build_state(local) and len(build_state(local)["tars"]) >= 6
    assert [k for k in local if local[k] != remote[k]] == []  # every file byte for byte
    assert sum(e["shards_skipped"] for e in _events(first, "done")) == 0
    fs = s3(endpoint)
    stamps = {
        p: fs.info(p)["ETag"] + str(fs.info(p)["LastModified"]) for p in fs.find(url) if p.endswith(".tar")
    }
    again = _run("build", "--config", str(tmp_path / "s3.yaml"), "--progress", "json")
    assert [e["shards_skipped"] == e["shards"] > 0 for e in _events(again, "done")] == [True, True]
    monkeypatch.setenv("AVUIE_CACHE", str(tmp_path / "fresh-machine"))  # no staging copy: state comes from s3
    third = _run("build", "--config", str(tmp_path / "s3.yaml"), "--progress", "json")
    assert [e["shards_skipped"] == e["shards"] > 0 for e in _events(third, "done")] == [True, True]
    fs = s3(endpoint)
    assert {
        p: fs.info(p)["ETag"] + str(fs.info(p)["LastModified"]) for p in stamps
    } == stamps  # no tar re-sent
    assert build_state(files_of(url, endpoint)) == build_state(local)


class Recording(MemoryFileSystem):
    """An in-memory filesystem that logs uploads and deletions in order."""

    log: list[tuple[str, str]] = []

    def put_file(self, lpath, rpath, **kw):
        self.log.append(("put", rpath))
        return super().put_file(lpath, rpath, **kw)

    def rm_file(self, path):
        self.log.append(("rm", path))
        return super().rm_file(path)


def _rank(path: str) -> int:
    if path.endswith(".tar"):
        return 0
    if path.endswith(".done.json"):
        return 1
    return (
        3
        if path.rsplit("/", 1)[-1] in ("manifest.parquet", "rejects.parquet", "stats.json", "build.json")
        else 2
    )


def test_uploads_go_tars_then_markers_then_manifest_and_deletions_markers_first(tmp_path):
    out = tmp_path / "out"
    _run("build", "--source", "ave", "--out", str(out), "--shard-size", "2", "--progress", "none")
    fs = Recording(skip_instance_cache=True)
    Recording.log = []
    assert push(fs, "/bucket/x", out)["uploaded"] == len(files_of(out))
    ranks = [_rank(path) for _, path in Recording.log]
    assert ranks == sorted(ranks) and ranks[0] == 0 and ranks[-1] == 3 and 1 in ranks and 2 in ranks
    Recording.log = []
    _run("build", "--source", "ave", "--out", str(out), "--shard-size", "4", "--progress", "none")  # re-packs
    push(fs, "/bucket/x", out)
    puts = [_rank(p) for op, p in Recording.log if op == "put"]
    removed = [p for op, p in Recording.log if op == "rm"]
    assert puts == sorted(puts) and removed, Recording.log
    assert [_rank(p) for p in removed] == sorted((_rank(p) for p in removed), key=lambda r: (r + 3) % 4)
    assert Recording.log.index(("put", "/bucket/x/manifest.parquet")) < Recording.log.index(
        ("rm", removed[0])
    )
    assert sorted(p.removeprefix("/bucket/x/") for p in fs.find("/bucket/x")) == sorted(files_of(out))


def test_readers_take_the_same_urls(endpoint, env, tmp_path):
    url = f"s3://{BUCKET}/out-b"
    _run("build", "--config", _build_file(tmp_path / "s3.yaml", url, ("ave",)))
    _run("build", "--config", _build_file(tmp_path / "local.yaml", str(tmp_path / "local"), ("ave",)))
    assert "6 samples in 4 shards; 0 failed" in " ".join(_run("validate", url).split())
    sql = "SELECT id, shard, build_dir FROM samples ORDER BY id"
    rows = json.loads(_run("query", url, sql, "--format", "json"))
    local_rows = json.loads(_run("query", str(tmp_path / "local"), sql, "--format", "json"))
    assert [r["id"] for r in rows] == [r["id"] for r in local_rows] and len(rows) == 6
    assert {r["build_dir"] for r in rows} == {url}
    shards = json.loads(_run("query", url, "SELECT path, num_bytes FROM shards", "--format", "json"))
    assert all(s["path"].startswith(url + "/shards/") and s["num_bytes"] > 0 for s in shards)
    assert "ave" in _run("stats", url)
    _run("export", url, "--format", "sharegpt", "--to", str(tmp_path / "exp-s3"))
    _run("export", str(tmp_path / "local"), "--format", "sharegpt", "--to", str(tmp_path / "exp-local"))
    names = sorted(p.relative_to(tmp_path / "exp-local") for p in (tmp_path / "exp-local").rglob("*.json"))
    assert names and names == sorted(
        p.relative_to(tmp_path / "exp-s3") for p in (tmp_path / "exp-s3").rglob("*.json")
    )
    assert all(
        (tmp_path / "exp-s3" / n).read_bytes() == (tmp_path / "exp-local" / n).read_bytes() for n in names
    )
    from avuie.shards.loader import AVStream

    options = {"key": "test", "secret": "test", "client_kwargs": {"endpoint_url": endpoint}}
    keys = [s["key"] for s in AVStream(url, storage_options=options, decode=False, seed=1)]
    assert keys == [s["key"] for s in AVStream(tmp_path / "local", decode=False, seed=1)]
    _serve_checks(url, env)


def _serve_checks(url: str, env: dict[str, str]) -> None:
    code = "import sys; from avuie.cli import app; sys.argv = ['avuie', *sys.argv[1:]]; app()"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "serve", url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**__import__("os").environ, **env},
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("Serving 4 shards (6 samples)"), line + process.stderr.read()
        base = line.split(" at ")[1].split(" ")[0]
        assert httpx.get(base + "/index.json", timeout=30).json()["total"] == 6
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_raw_s3_is_mirrored_and_media_are_fetched_where_cut(endpoint, env, tmp_path):
    raw = ensure_sample("ave")
    fs = s3(endpoint)
    fs.put(f"{raw}/", f"{BUCKET}/raw-ave/", recursive=True)
    url, out = f"s3://{BUCKET}/raw-ave", f"s3://{BUCKET}/from-raw"
    args = ["build", "--source", "ave", "--shard-size", "2", "--progress", "json"]
    _run(*args, "--out", str(tmp_path / "local"))
    _run(*args, "--raw", url, "--out", out)
    local, remote = files_of(tmp_path / "local"), files_of(out, endpoint)
    want, got = build_state(local), build_state(remote)
    assert sorted(got["tars"]) == sorted(want["tars"])
    assert [r["id"] for r in got["manifest"]] == [r["id"] for r in want["manifest"]]
    samples = _samples(remote)
    assert all(m["source_path"].startswith(url + "/AVE/") for s in samples.values() for m in s["media"])
    local_samples = _samples(local)
    for key, sample in samples.items():  # the same sample but for where its media were read from
        other = local_samples[key]
        assert sample["provenance"] == other["provenance"] and sample["target"] == other["target"]
        assert [m["source_path"].rsplit("/", 1)[1] for m in sample["media"]] == [
            Path(m["source_path"]).name for m in other["media"]
        ]
    mirror = Path(env["AVUIE_CACHE"]) / "raw"
    videos = [p for p in mirror.rglob("*.mp4")]
    assert videos and all(
        p.stat().st_blocks == 0 for p in videos
    )  # placeholders: nothing was downloaded there
    again = _run(*args, "--raw", url, "--out", out)
    assert _events(again, "done")[0]["shards_skipped"] == 4
    video = sorted(fs.find(f"{BUCKET}/raw-ave/AVE"))[0]
    fs.pipe_file(video, b"not a video any more")  # a repaired (here: broken) remote file is built again
    third = _run(*args, "--raw", url, "--out", out)
    done = _events(third, "done")[0]
    assert done["rejected"] >= 1 and done["written"] == 6 - done["rejected"] and done["shards_skipped"] < 4
    rejects = build_state(files_of(out, endpoint))["rejects"]
    assert rejects and all(f"s3://{video}" in r["detail"] for r in rejects), rejects


def _samples(files: dict[str, bytes]) -> dict[str, dict]:
    import tarfile

    out = {}
    for name, data in files.items():
        if name.endswith(".tar"):
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for member in tar.getmembers():
                    if member.name.endswith(".json"):
                        out[member.name] = json.loads(tar.extractfile(member).read())
    return out


def test_a_missing_remote_raw_root_is_a_clear_error(endpoint, env, tmp_path):
    result = runner.invoke(
        app, ["build", "--source", "ave", "--raw", f"s3://{BUCKET}/nothing", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "nothing at s3://" in result.output
