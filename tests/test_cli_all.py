"""`avuie sources` and `avuie build --all`: every builder listed, raw trees found by name, alias or layout file."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from avuie.cli import app
from avuie.samples import ensure_sample

runner = CliRunner()

SOURCES = {
    "ave", "unav", "avvp", "avqa", "avqa_thu", "s4", "ms3", "ref_avs", "arig", "avcap", "a2v", "v2a", "ks",
    "ucf", "meld", "mer24", "cremad", "mafw", "dfew",
}  # fmt: skip


def test_sources_lists_the_19_builders_with_families_and_layouts():
    result = runner.invoke(app, ["sources", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {r["source"] for r in rows} == SOURCES
    assert len({r["family"] for r in rows}) == 7
    assert all(r["layout"] and r["bundled_sample"] for r in rows)


def test_build_all_finds_raw_trees_by_name_alias_and_layout_file(tmp_path):
    root = tmp_path / "raw"
    shutil.copytree(ensure_sample("ave").parent, root / "ave")  # the folder holding AVE_Dataset/
    shutil.copytree(ensure_sample("meld"), root / "somewhere" / "meld_release")
    (tmp_path / "layout.yaml").write_text("meld: somewhere/meld_release\n")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "build",
            "--all",
            "--raw-root",
            str(root),
            "--layout",
            str(tmp_path / "layout.yaml"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    built = {p.parent.name for p in out.glob("*/stats.json")}
    # ave by name, a2v and v2a through their alias (the AVE tree), meld through the layout file
    assert built == {"ave", "a2v", "v2a", "meld"}
    for name in SOURCES - built:
        assert f"skipped {name}:" in result.output
    assert "built 4 sources" in result.output


def test_build_all_without_raw_root_builds_every_bundled_sample(tmp_path):
    out = tmp_path / "all"
    result = runner.invoke(app, ["build", "--all", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.parent.name for p in out.glob("*/stats.json")} == SOURCES
    result = runner.invoke(app, ["validate", str(out)])
    assert result.exit_code == 0, result.output
    for stats_file in out.glob("*/stats.json"):
        stats = json.loads(stats_file.read_text())
        assert stats["totals"]["written"] > 0
        for s in stats["splits"].values():
            assert s["in"] == s["written"] + s["rejected"]
