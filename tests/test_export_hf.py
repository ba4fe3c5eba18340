"""`avuie export --format hf` (Image / Audio / typed features, the dataset card) and `avuie push` to a local fake
of the Hub's HTTP API (tests/hub_server.py): nothing leaves the machine."""

from __future__ import annotations

import glob
import hashlib
import json
import re
from pathlib import Path

import pytest
from avuie.schemas import TARGET_TYPES, Sample
from avuie.shards.writer import iter_tar_samples
from typer.testing import CliRunner

from avuie.cli import app
from avuie.export.card import CITATIONS, read_metadata
from avuie.export.common import ExportOptions
from avuie.export.hub import PushError, push
from avuie.export.registry import export
from tests.hub_server import FakeHub

datasets = pytest.importorskip("datasets")
TOKEN = "hf_local_test_token"


FRESH: dict[str, list[Path]] = {}


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def exported(bundled_build, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("hfexport") / "hf"
    export([bundled_build], "hf", dest, ExportOptions())
    FRESH["files"] = files_of(dest)  # before any test's casts add datasets' cache files
    return dest


def shard_samples(build: Path) -> dict[str, tuple[Sample, dict[str, bytes]]]:
    found = {}
    for tar in sorted(glob.glob(str(build / "*" / "shards" / "*" / "*.tar"))):
        for _, members in iter_tar_samples(tar):
            sample = Sample.model_validate_json(members.pop("json"))
            found[sample.id] = (sample, members)
    return found


def typed_target(row_target: dict) -> dict:
    """The export's target struct back as the target of its kind (maps from their records)."""
    kind = row_target["kind"]
    out = {name: row_target[name] for name in TARGET_TYPES[kind].model_fields}
    for name in ("audio", "visual"):
        if name in out:
            out[name] = {r["label"]: r["segments"] for r in out[name]}
    return out


def test_export_has_real_features_and_every_file(bundled_build, exported):
    ds = datasets.load_from_disk(str(exported))
    features = ds["train"].features
    assert features["frames"] == datasets.List(datasets.Image())
    assert features["audio"] == datasets.List(datasets.Audio())
    assert features["masks"] == datasets.List(datasets.Image())
    assert features["target"]["start"] == datasets.Value("int64")  # a struct, not a JSON string
    assert features["media"].feature["frame_times"] == datasets.List(datasets.Value("float64"))
    expected = shard_samples(bundled_build)
    assert sum(len(part) for part in ds.values()) == len(expected)
    for part in ds.values():
        for row in part.cast_column("audio", datasets.List(datasets.Audio(decode=False))):
            sample, files = expected[row["id"]]
            target = type(sample.target).model_validate(typed_target(row["target"]))
            assert target == sample.target and row["response"] == sample.response
            visual = [f for m in sample.media if m.kind in ("video_frames", "image") for f in m.files]
            assert len(row["frames"]) == len(visual) and row["frames"][0].size == (224, 224)
            audio = [f for m in sample.media if m.kind == "audio" for f in m.files]
            assert [a["bytes"] for a in row["audio"]] == [files[f] for f in audio]
            assert row["mask_files"] == [f for m in sample.media if m.kind == "mask" for f in m.files]
            assert row["provenance"]["raw_checksums"][0]["sha256"] in sample.provenance.raw_checksums.values()


def test_export_is_about_the_size_of_the_shards(bundled_build, exported):
    shards = sum(
        Path(t).stat().st_size for t in glob.glob(str(bundled_build / "*" / "shards" / "*" / "*.tar"))
    )
    export_bytes = sum(p.stat().st_size for p in FRESH["files"])
    assert export_bytes < 1.1 * shards  # media kept as their JPEG/PNG/WAV bytes, not as float lists


def test_card_names_configs_licenses_citations_and_the_build_digest(bundled_build, exported):
    meta = read_metadata(exported)
    ds = datasets.load_from_disk(str(exported))
    sources = {s for part in ds.values() for s in part["source"]}
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert set(configs) == sources | {"all"} and configs["all"]["default"]
    assert {f["split"] for f in configs["all"]["data_files"]} == set(ds)
    ref_avs = {f["split"] for f in configs["ref_avs"]["data_files"]}
    assert ref_avs == {split for split, part in ds.items() if "ref_avs" in part["source"]}
    facts = {}
    for build_json in sorted(bundled_build.glob("*/build.json")):
        info = json.loads(build_json.read_text())
        facts[info["source"]] = info
        assert f"{info['source']}: {info['license']}" in meta["license_details"]
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()
    assert meta["avuie"]["build_digest"] == digest
    card = (exported / "README.md").read_text()
    assert digest in card and all(CITATIONS[s][1] in card for s in sources)


def test_push_uploads_a_loadable_repository_to_the_hub_api(exported, tmp_path, offline):
    before = {p: p.stat().st_mtime_ns for p in files_of(exported)}
    with FakeHub(TOKEN) as hub:
        result = push(exported, "someone/av-uie", private=True, token=TOKEN, endpoint=hub.url)
    assert {p: p.stat().st_mtime_ns for p in files_of(exported)} == before  # DEST is only read
    assert hub.repos == {"someone/av-uie": {"private": True, "type": "dataset"}}
    received = hub.files["someone/av-uie"]
    assert set(received) == set(result["files"]) and len(hub.commits) == 1
    assert not any("exported" in p or p.endswith(".arrow") for p in received)
    for path, data in received.items():  # what the Hub got, laid out as a clone of the repository
        (tmp_path / "repo" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "repo" / path).write_bytes(data)
    assert 'load_dataset("someone/av-uie", "all")' in received["README.md"].decode()
    local = datasets.load_from_disk(str(exported))
    datasets.disable_progress_bars()
    hub_all = datasets.load_dataset(str(tmp_path / "repo"), "all", cache_dir=str(tmp_path / "c1"))
    assert {k: len(v) for k, v in hub_all.items()} == {k: len(v) for k, v in local.items()}
    assert hub_all["train"].features == local["train"].features
    ave = datasets.load_dataset(str(tmp_path / "repo"), "ave", cache_dir=str(tmp_path / "c2"))
    assert set(ave["train"]["source"]) == {"ave"} and len(ave["train"]) == local["train"]["source"].count(
        "ave"
    )


def test_push_refuses_bad_names_tokens_and_folders(exported, tmp_path, offline, monkeypatch):
    with pytest.raises(PushError, match="user/name"):
        push(exported, "no-slash", token=TOKEN, endpoint="http://127.0.0.1:9")
    with FakeHub(TOKEN) as hub:
        with pytest.raises(Exception, match="401"):
            push(exported, "someone/x", token="wrong", endpoint=hub.url)
        assert hub.files == {}
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        runner = CliRunner()
        result = runner.invoke(app, ["push", str(tmp_path), "--repo", "someone/x", "--token", TOKEN])
        flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())
        assert result.exit_code == 2 and "holds no hf export" in flat
        result = runner.invoke(app, ["push", str(exported), "--repo", "someone/cli", "--token", TOKEN])
        assert result.exit_code == 0, result.output
        assert "pushed" in result.output and "README.md" in hub.files["someone/cli"]
