"""`avuie review export` -> edit -> `avuie review apply`: exactly the edited samples change, and they validate."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from avuie.build.validate import validate_build
from avuie.cli import app
from avuie.curate.review import read_rows, write_rows
from tests.buildkit import read_back
from tests.openai_server import FakeOpenAIServer

runner = CliRunner()
CHURCH, BARK, GUITAR = "RUhOCu3LNXM", "0IklLP7_kBw", "MH3m4AwEcRY"
GUITAR_REPLY = (
    "A guitarist is in view from 6 s and the plucked strings are heard until 8 s; the dog heard earlier is "
    "only a Bark off screen. So the answer is <event>Acoustic guitar</event> <range>6,8</range>"
)
HUMAN = (
    "The church tower with its belfry stays in view for the whole clip, and the slow tolling of a large bell is "
    "heard from the first second to the last. So the answer is"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """An AVE build with one fallback (Church bell), one retried (Bark) and one flagged chain (guitar)."""
    out = tmp_path_factory.mktemp("review") / "ave"
    with FakeOpenAIServer() as server:
        server.inject("no_tag", match=CHURCH, times=3)
        server.inject("wrong_tag", match=BARK, text="<event>Cat</event> <range>4,10</range>")
        server.inject("reply", match=GUITAR, text=GUITAR_REPLY)
        args = ["build", "--source", "ave", "--out", str(out), "--shard-size", "2", "--reasoning", "openai"]
        result = runner.invoke(app, [*args, "--model", "fake-omni", "--base-url", server.base_url])
    assert result.exit_code == 0, result.output
    return out


def by_video(rows: list[dict]) -> dict[str, dict]:
    return {next(v for v in (CHURCH, BARK, GUITAR, "") if v in r["id"]): r for r in rows}


def snapshot(out: Path) -> tuple[dict[str, dict], dict[str, str]]:
    samples = {it["sample"]["id"]: it["sample"] for it in read_back(out)}
    tars = {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in out.glob("shards/*/*.tar")
    }
    return samples, tars


def copy_build(built: Path, tmp_path: Path) -> Path:
    import shutil

    out = tmp_path / "ave"
    shutil.copytree(built, out)
    return out


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_export_edit_apply_changes_exactly_the_edited_samples(built, tmp_path, suffix):
    out = copy_build(built, tmp_path)
    review = tmp_path / "edits" / f"review{suffix}"
    result = runner.invoke(app, ["review", "export", str(out), "--to", str(review)])
    assert result.exit_code == 0, result.output
    rows = read_rows(review)
    by_id = by_video(rows)
    assert set(by_id) == {CHURCH, BARK, GUITAR}  # fallback, retried, flagged: nothing else
    assert by_id[CHURCH]["kind"] == "fallback" and by_id[CHURCH]["fallback_reason"].startswith(
        "no_answer_tag"
    )
    assert str(by_id[BARK]["attempts"]) == "2" and str(by_id[GUITAR]["flagged"]) == "True"
    church = by_id[CHURCH]
    assert len(church["frames"]) == 10 and len(church["audio"]) == 1
    assert Image.open(review.parent / church["frames"][0]).size == (224, 224)
    assert (review.parent / church["audio"][0]).read_bytes()[:4] == b"RIFF"
    assert (
        "Church bell" in church["label"] and church["answer"] == "event:Church bell start_time:0 end_time:10"
    )

    before, tars_before = snapshot(out)
    church["reasoning"] = HUMAN
    write_rows(review, rows)
    result = runner.invoke(app, ["review", "apply", str(out), str(review)])
    assert result.exit_code == 0, result.output
    after, tars_after = snapshot(out)

    changed = {i for i in before if before[i] != after[i]}
    assert changed == {church["id"]}
    new = after[church["id"]]
    assert new["reasoning"] == HUMAN and new["response"] == f"{HUMAN} {new['answer']}"
    assert (
        new["reasoning_info"]["kind"] == "human" and new["reasoning_info"]["check_outcome"] == "passed_human"
    )
    assert {k for k in tars_before if tars_before[k] != tars_after[k]} == {church["shard"]}
    assert validate_build(out)["failures"] == []
    import pyarrow.parquet as pq

    row = {r["id"]: r for r in pq.read_table(out / "manifest.parquet").to_pylist()}[church["id"]]
    assert row["reasoning_kind"] == "human" and row["content_hash"] == new["content_hash"]

    again = runner.invoke(app, ["review", "export", str(out), "--to", str(tmp_path / "again.jsonl")])
    assert again.exit_code == 0 and "wrote 2 chains" in again.output  # human chains need no more review


def test_edits_that_fail_the_check_are_refused(built, tmp_path):
    out = copy_build(built, tmp_path)
    review = tmp_path / "review.jsonl"
    assert runner.invoke(app, ["review", "export", str(out), "--to", str(review)]).exit_code == 0
    rows = read_rows(review)
    by_id = by_video(rows)
    by_id[BARK]["reasoning"] = (
        "A cat walks by and meows. So the answer is <event>Cat</event> <range>4,10</range>"
    )
    by_id[GUITAR]["reasoning"] = "Too short."
    by_id[CHURCH]["reasoning"] = HUMAN
    write_rows(review, rows)
    before, _ = snapshot(out)
    result = runner.invoke(app, ["review", "apply", str(out), str(review)])
    assert result.exit_code == 1
    assert "wrong_answer" in result.output and "too_short" in result.output
    after, _ = snapshot(out)
    assert {i for i in before if before[i] != after[i]} == {by_id[CHURCH]["id"]}

    # the same file again: the Church bell sample changed since the export, so its stale row is refused
    result = runner.invoke(app, ["review", "apply", str(out), str(review)])
    assert result.exit_code == 1 and "changed since the export" in result.output
    assert snapshot(out)[0] == after


def test_review_files_must_be_jsonl_or_csv(built, tmp_path):
    result = runner.invoke(app, ["review", "export", str(built), "--to", str(tmp_path / "review.txt")])
    assert result.exit_code != 0 and ".jsonl or .csv" in result.output
    result = runner.invoke(app, ["review", "apply", str(tmp_path / "nowhere"), str(tmp_path / "r.jsonl")])
    assert result.exit_code == 2 and "not a build directory" in result.output
