"""`avuie sources` and `avuie build --all`: every builder listed, raw trees found by name, alias or layout file."""

from __future__ import annotations

import json
import re
import shutil

from typer.testing import CliRunner

from avuie.cli import app
from avuie.samples import ensure_sample

runner = CliRunner()


def flat(output: str) -> str:
    """CLI output with rich's box characters and line wrapping removed."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


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


def test_build_all_reports_bad_layouts_and_roots(tmp_path):
    root = tmp_path / "raw"
    root.mkdir()
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("ave: [unclosed\n")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("nosuch: somewhere\n")
    cases = [
        (["--raw-root", str(tmp_path / "nowhere")], "is not a folder"),
        (["--raw-root", str(root), "--layout", str(tmp_path / "missing.yaml")], "does not exist"),
        (["--raw-root", str(root), "--layout", str(bad_yaml)], "not valid YAML/JSON"),
        (["--raw-root", str(root), "--layout", str(unknown)], "unknown source(s) nosuch"),
        (["--layout", str(unknown)], "--layout needs --raw-root"),
        (["--param", "fold=2"], "SOURCE.KEY=VALUE"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["build", "--all", "--out", str(tmp_path / "o"), *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in flat(result.output), (args, result.output)
    # an explicit layout entry that points nowhere is skipped with its reason, not looked up elsewhere
    shutil.copytree(ensure_sample("meld"), root / "meld")
    layout = tmp_path / "layout.yaml"
    layout.write_text("meld: /nonexistent/meld\n")
    result = runner.invoke(app, ["build", "--all", "--raw-root", str(root), "--layout", str(layout), "--out",
                                 str(tmp_path / "o2")])  # fmt: skip
    assert (
        result.exit_code == 1
        and "skipped meld: no meld release layout found (tried /nonexistent/meld" in flat(result.output)
    )


def test_demo_runs_the_whole_product(tmp_path):
    result = runner.invoke(
        app, ["demo", "--out", str(tmp_path / "demo"), "--steps", "2", "--stream-samples", "16"]
    )
    assert result.exit_code == 0, result.output
    assert "demo done: 19 sources" in flat(result.output)
    logs = [
        json.loads(line)
        for line in (tmp_path / "demo" / "_runs" / "tiny" / "log.jsonl").read_text().splitlines()
    ]
    assert sum(1 for r in logs if "loss" in r) == 2
