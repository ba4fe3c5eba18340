"""The catalog (DuckDB views over several builds), `avuie query` and `avuie stats [--report]`."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from avuie.shards.derived import finalize_build
from avuie.shards.writer import write_json_atomic
from typer.testing import CliRunner

from avuie.catalog.db import CatalogError, find_builds, open_catalog
from avuie.cli import app
from avuie.samples import ensure_sample
from tests.buildkit import build_source

runner = CliRunner()


def _broken_ave_raw(dest: Path) -> Path:
    """A copy of the bundled AVE raw tree with one truncated and one zero-byte video."""
    raw = Path(shutil.copytree(ensure_sample("ave"), dest))
    videos = sorted((raw / "AVE").glob("*.mp4"))
    data = videos[0].read_bytes()
    videos[0].write_bytes(data[: len(data) // 5])
    videos[1].write_bytes(b"")
    return raw


def _marker_only_build(out: Path, source: str, family: str, license: str, n: int) -> None:
    """A build of another source made of completion markers only (the catalog never opens tars)."""
    rows = [
        {
            "id": f"{source}/train/c{i}",
            "key": f"{source}_train_c{i}_0000000{i}",
            "source": source,
            "family": family,
            "split": "train",
            "shard": f"shards/train/{source}-train-00000.tar",
            "num_bytes": 1000 + i,
            "media_duration": 4.0 + i,
            "num_frames": 4,
            "audio_seconds": 4.0,
            "label": "happy",
            "answer": "<answer>happy</answer>",
            "reasoning_kind": "model",
            "reasoning_chars": 120 + i,
            "content_hash": f"{i:064d}",
        }
        for i in range(n)
    ]
    shard_dir = out / "shards" / "train"
    shard_dir.mkdir(parents=True)
    (shard_dir / f"{source}-train-00000.tar").write_bytes(b"\0" * 1024)
    marker = {
        "shard": f"{source}-train-00000",
        "split": "train",
        "tars": [f"{source}-train-00000.tar"],
        "in": n,
        "manifest": rows,
        "rejects": [],
    }
    write_json_atomic(shard_dir / f"{source}-train-00000.done.json", marker)
    finalize_build(out, [], {"source": source, "family": family, "reasoning": {"engine": "openai"}})
    info = {"source": source, "family": family, "license": license, "builder_version": "2"}
    write_json_atomic(out / "build.json", info | {"config": {"reasoning": "openai"}})


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two roots: A holds a clean ave build; B holds an ave build with rejects and a cremad build."""
    base = tmp_path_factory.mktemp("catalog")
    clean = build_source("ave", base / "a" / "ave")
    broken = build_source("ave", base / "b" / "ave", raw=_broken_ave_raw(base / "raw_broken"))
    _marker_only_build(base / "b" / "cremad", "cremad", "emotion_recognition", "ODbL 1.0 (CREMA-D)", 3)
    return {"a": base / "a", "b": base / "b", "clean": clean, "broken": broken}


def test_finds_every_build_under_each_root(roots: dict) -> None:
    builds = find_builds([roots["a"], roots["b"]])
    assert [p.name for p in builds] == ["ave", "ave", "cremad"]
    with pytest.raises(CatalogError, match="no build under"):
        find_builds([roots["a"].parent / "raw_broken"])


def test_query_spans_two_roots(roots: dict) -> None:
    cat = open_catalog([roots["a"], roots["b"]])
    written = roots["clean"]["totals"]["written"] + roots["broken"]["totals"]["written"] + 3
    assert cat.rows("SELECT count(*) AS n FROM samples")[0]["n"] == written
    per_source = {r["source"]: r["n"] for r in cat.rows("SELECT source, count(*) n FROM samples GROUP BY 1")}
    assert per_source["cremad"] == 3
    # rejects of the broken build are visible with their reasons, and agree with its stats.json
    rejected = roots["broken"]["totals"]["rejected"]
    assert rejected >= 2
    assert cat.rows("SELECT count(*) AS n FROM rejects")[0]["n"] == rejected
    reasons = cat.rows("SELECT sum(n)::BIGINT AS n FROM reject_reasons")[0]["n"]
    assert reasons == rejected
    # stats rows: in = written + rejected per build and split
    for r in cat.rows("SELECT * FROM stats"):
        assert r["in"] == r["written"] + r["rejected"]
    # shard rows count the samples of each tar; their sum is every sample
    assert cat.rows("SELECT sum(num_samples)::BIGINT AS n FROM shards")[0]["n"] == written
    assert all(Path(r["path"]).is_file() for r in cat.rows("SELECT path FROM shards"))
    licences = {r["source"]: r["license"] for r in cat.rows("SELECT source, license FROM builds")}
    assert licences["cremad"] == "ODbL 1.0 (CREMA-D)" and licences["ave"]
    # a join across views: samples of each build next to its build row
    joined = cat.rows(
        "SELECT b.source, count(*) AS n FROM samples s JOIN builds b USING (build_dir) GROUP BY 1 ORDER BY 1"
    )
    assert sum(r["n"] for r in joined) == written


def test_bad_sql_is_a_clear_error(roots: dict) -> None:
    cat = open_catalog([roots["a"]])
    with pytest.raises(CatalogError, match="query failed"):
        cat.query("SELECT * FROM no_such_view")


def test_query_cli_formats(roots: dict) -> None:
    sql = "SELECT source, split, count(*) AS n FROM samples GROUP BY ALL ORDER BY 1, 2"
    res = runner.invoke(app, ["query", str(roots["a"]), str(roots["b"]), sql, "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert {r["source"] for r in rows} == {"ave", "cremad"}
    res = runner.invoke(app, ["query", str(roots["a"]), sql, "--format", "csv"])
    assert res.exit_code == 0, res.output
    table = list(csv.reader(io.StringIO(res.stdout)))
    assert table[0] == ["source", "split", "n"]
    assert sum(int(r[2]) for r in table[1:]) == roots["clean"]["totals"]["written"]
    res = runner.invoke(app, ["query", str(roots["a"]), sql])
    assert res.exit_code == 0 and "ave" in res.stdout
    res = runner.invoke(app, ["query", str(roots["a"]), "SELECT * FROM nope"])
    assert res.exit_code == 2 and "query failed" in " ".join(res.output.split())
    res = runner.invoke(app, ["query", str(roots["a"] / "missing"), "SELECT 1"])
    assert res.exit_code == 2 and "does not exist" in " ".join(res.output.split())


def test_stats_cli_prints_counts_and_reasons(roots: dict) -> None:
    res = runner.invoke(app, ["stats", str(roots["b"])])
    assert res.exit_code == 0, res.output
    for reason in roots["broken"]["splits"]["train"]["reasons"]:
        assert reason in res.stdout
    assert "cremad" in res.stdout


def test_stats_report_writes_charts_and_data_card(roots: dict, tmp_path: Path) -> None:
    report = tmp_path / "report"
    res = runner.invoke(app, ["stats", str(roots["a"]), str(roots["b"]), "--report", str(report)])
    assert res.exit_code == 0, res.output
    for name in (
        "samples_per_family",
        "samples_per_source_split",
        "duration_hist",
        "reasoning_length",
        "rejects_by_reason",
    ):
        png = (report / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000, name
    page = (report / "index.html").read_text()
    cat = open_catalog([roots["a"], roots["b"]])
    for b in cat.rows("SELECT * FROM builds"):
        assert f"<td>{b['source']}</td>" in page
        assert b["license"].replace("&", "&amp;") in page
    for r in cat.rows("SELECT build_dir, count(*) AS n FROM samples GROUP BY 1"):
        assert f"<td>{r['n']}</td>" in page
    for r in cat.rows("SELECT reason FROM reject_reasons"):
        assert r["reason"] in page
    assert "template" in page and "model" in page  # how the reasoning was made, per kind
    data = json.loads((report / "report.json").read_text())
    assert sum(r["n"] for r in data["per_family"]) == cat.rows("SELECT count(*) n FROM samples")[0]["n"]
