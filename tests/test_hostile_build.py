"""Issue 12 items 1-4 and 9 (build side): an output folder is owned, and every multi-file update is all or nothing.

Each test is named after the break it pins; each failed on the main branch before the fix (see the commit that
added this file). Kill tests use real SIGKILLs (tests/crashkit.py) on the small bundled samples.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.shards import layout
from typer.testing import CliRunner

from avuie.cli import app
from avuie.curate.review import review_row, write_rows
from avuie.curate.rewrite import iter_samples
from avuie.media.synth import truncate_file
from avuie.samples import ensure_sample
from tests.buildkit import build_state, read_back
from tests.crashkit import Crasher

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
HUMAN = (
    "Checked by a person: the source is both seen and heard in these seconds, and nowhere else in the clip. "
    "So the answer is"
)


def avuie(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def build(out: Path, *extra: str, source: str = "ave") -> dict:
    code, output = avuie("build", "--source", source, "--out", str(out), *extra)
    assert code == 0, output
    return json.loads((out / "stats.json").read_text())


def raw_copy(tmp_path: Path, source: str = "ave") -> Path:
    raw = tmp_path / f"raw-{source}"
    shutil.copytree(ensure_sample(source), raw)
    return raw


# ---- 1. stale part tars of an earlier plan ---------------------------------------------------------------------
def test_rebuild_with_other_shard_settings_leaves_no_stale_parts(tmp_path):
    out = tmp_path / "ave"
    build(out, "--shard-size", "8", "--shard-bytes", "100000")
    assert any("-1.tar" in t.name for t in layout.list_tars(out))  # the first plan wrote parts
    stats = build(out, "--shard-size", "8")
    assert stats["totals"]["written"] == 6
    assert sorted(t.name for t in layout.list_tars(out) if t.parent.name == "train") == [
        "ave-train-00000.tar"
    ]
    assert len(read_back(out)) == 6  # webdataset over every tar: no duplicates
    build_state(out)
    code, output = avuie("validate", str(out))
    assert code == 0 and "6 samples" in output, output


# ---- 2. a second source into the same --out --------------------------------------------------------------------
def test_a_second_source_leaves_the_first_ones_shards_rows_and_human_chains(tmp_path):
    out = tmp_path / "both"
    build(out, "--shard-size", "2")
    review = tmp_path / "review.jsonl"
    tar, sample, _ = next(iter_samples(out))
    edit = review_row(sample, str(tar.relative_to(out))) | {"reasoning": HUMAN}
    write_rows(review, [edit])
    code, output = avuie("review", "apply", str(out), str(review))
    assert code == 0, output
    build(out, source="meld")
    chains = build_state(out)
    assert chains[sample["id"]].startswith("Checked by a person")  # the human chain lives only in that tar
    rows = pq.read_table(out / "manifest.parquet").to_pylist()
    assert {r["source"] for r in rows} == {"ave", "meld"} and len(rows) == 10
    stats = json.loads((out / "stats.json").read_text())
    assert stats["totals"]["written"] == 10 and set(stats["sources"]) == {"ave", "meld"}
    code, output = avuie("query", str(out), "SELECT source, count(*) AS n FROM samples GROUP BY 1 ORDER BY 1")
    assert code == 0 and "ave" in output and "meld" in output, output
    assert avuie("validate", str(out))[0] == 0
    build(out, "--shard-size", "2")  # rebuilding the first source keeps the second, and the human chain
    assert build_state(out)[sample["id"]].startswith("Checked by a person")
    assert len(pq.read_table(out / "manifest.parquet")) == 10


# ---- 3. files under --out that avuie did not write --------------------------------------------------------------
def test_a_users_tmp_files_and_folders_under_out_are_left_alone(tmp_path):
    out = tmp_path / "ave"
    (out / "docs").mkdir(parents=True)
    (out / "docs" / "draft.tmp").write_text("my notes")
    (out / "cache.tmp").mkdir()
    (out / "cache.tmp" / "keep.bin").write_bytes(b"x")
    (out / "shards" / "train").mkdir(parents=True)
    (out / "shards" / "train" / "notes.tmp").write_text("mine")
    build(out)
    build(out, "--shard-size", "1")
    assert (out / "docs" / "draft.tmp").read_text() == "my notes"
    assert (out / "cache.tmp" / "keep.bin").read_bytes() == b"x"
    assert (out / "shards" / "train" / "notes.tmp").read_text() == "mine"
    build_state(out)


# ---- 4. SIGKILL during review apply -----------------------------------------------------------------------------
def test_review_apply_killed_at_every_step_leaves_the_old_or_the_new_build(tmp_path):
    base = tmp_path / "base"
    build(base, "--shard-size", "2")
    edits = [
        review_row(sample, str(tar.relative_to(base))) | {"reasoning": HUMAN}
        for tar, sample, _ in iter_samples(base)
        if sample["split"] in ("train", "val")
    ][:3]  # two train shards and the val shard
    review = tmp_path / "review.jsonl"
    write_rows(review, edits)
    old = build_state(base)
    done = tmp_path / "done"
    shutil.copytree(base, done)
    assert avuie("review", "apply", str(done), str(review))[0] == 0
    new = build_state(done)
    assert new != old
    seen = set()
    with Crasher() as crash:
        for n in range(1, 200):
            out = tmp_path / f"k{n}"
            shutil.copytree(base, out)
            code = crash(n, "review", "apply", str(out), str(review))
            if code == 0:
                break
            assert code == -9, code
            validated, report = avuie("validate", str(out))
            assert validated == 0 or "interrupted" in report, report  # a mixed state is always reported
            build(out, "--shard-size", "2")  # the next build finishes (or forgets) the update ...
            state = build_state(out)
            assert state in (old, new), f"killed before change {n}: neither the old nor the new build"
            seen.add("new" if state == new else "old")
            shutil.rmtree(out)
    assert n > 5 and seen == {"old", "new"}  # killed at every change, before and after the commit point


def test_reason_killed_at_every_step_leaves_the_old_or_the_new_build(tmp_path):
    from tests.openai_server import FakeOpenAIServer

    base = tmp_path / "base"
    build(base, "--shard-size", "2")
    ids = tmp_path / "ids.txt"  # one train sample and the val sample: two shards change
    ids.write_text(
        "ave/train/0IklLP7_kBw_bark\n" + "".join(f"{i}\n" for i in build_state(base) if "/val/" in i)
    )
    old = build_state(base)
    with FakeOpenAIServer(latency=0.0) as server:
        reason = ["reason", "--model", "fake-omni", "--base-url", server.base_url, "--ids", str(ids)]
        done = tmp_path / "done"
        shutil.copytree(base, done)
        assert avuie(*reason, str(done))[0] == 0
        new = build_state(done)
        assert sum(new[i] != old[i] for i in old) == 2
        seen = set()
        with Crasher(under=tmp_path) as crash:
            for n in range(1, 100):
                out = tmp_path / f"k{n}"
                shutil.copytree(base, out)
                code = crash(n, *reason, str(out))
                if code == 0:
                    break
                assert code == -9, code
                validated, report = avuie("validate", str(out))
                assert validated == 0 or "interrupted" in report, report
                assert avuie("repair", str(out))[0] == 0
                state = build_state(out)
                assert state in (old, new), f"killed before change {n}: neither the old nor the new build"
                assert avuie("validate", str(out))[0] == 0
                seen.add("new" if state == new else "old")
                shutil.rmtree(out)
    assert n > 5 and seen == {"old", "new"}


def _layout(out: Path) -> list[tuple[str, str]]:
    """(tar name, key) of every sample in tar order, equal for equal shard layouts."""
    return [(Path(it["sample"]["id"]).name, it["key"]) for it in read_back(out)]


def test_rebuild_with_new_shard_settings_killed_at_every_step_ends_as_a_fresh_build(tmp_path):
    base = tmp_path / "base"  # 2 train records built in parts; the rebuild cuts the other 2 and repacks all 4
    build(base, "--split", "train", "--shard-size", "8", "--shard-bytes", "100000", "--limit", "2")
    new_settings = ("--split", "train", "--shard-size", "3", "--progress", "none")
    # each kill lands before one change of the build folder (the cutter's scratch files are not counted)
    fresh = tmp_path / "fresh"
    build(fresh, *new_settings)
    want, want_layout = build_state(fresh), _layout(fresh)
    with Crasher(under=tmp_path) as crash:
        for n in range(1, 300):
            out = tmp_path / f"k{n}"
            shutil.copytree(base, out)
            code = crash(n, "build", "--source", "ave", "--out", str(out), *new_settings)
            if code == 0:
                break
            assert code == -9, code
            validated, report = avuie("validate", str(out))
            assert validated == 0 or "interrupted" in report, report  # a mixed state is always reported
            build(out, *new_settings)  # the rerun resumes or finishes the killed one
            keys = [key for _, key in _layout(out)]
            assert len(keys) == len(set(keys)), f"killed before change {n}: duplicate keys"
            assert build_state(out) == want and _layout(out) == want_layout, f"killed before change {n}"
            assert avuie("validate", str(out))[0] == 0
            shutil.rmtree(out)
    assert n > 10  # killed before every change of the rebuild, from its first staged piece to its last unlink


def test_validate_reports_and_build_repairs_tars_markers_and_manifest_that_disagree(tmp_path):
    out = tmp_path / "ave"
    build(out, "--shard-size", "2")
    good = build_state(out)
    tars = layout.list_tars(out)
    tars[0].unlink()  # a lost tar
    with tars[1].open("r+b") as f:  # a tar changed on disk (same size)
        f.seek(700)
        f.write(b"X")
    manifest = pq.read_table(out / "manifest.parquet")
    pq.write_table(manifest.slice(1), out / "manifest.parquet")  # a manifest missing a row
    code, report = avuie("validate", str(out))
    said = " ".join(report.split())
    assert code == 1 and "but missing" in said and "differs from the size/sha256" in said, report
    assert "does not match the shard markers" in said
    stats = build(out, "--shard-size", "2")  # rebuilds the two shards, recomputes the manifest
    assert stats["totals"]["written"] == 6 and stats["shards_skipped"] == 2
    assert build_state(out) == good and avuie("validate", str(out))[0] == 0
    stray = tars[0].parent / "ave-train-00007.tar"
    shutil.copy(tars[0], stray)  # a tar no marker lists: reported, never deleted
    code, report = avuie("validate", str(out))
    assert code == 1 and "no shard marker lists this tar" in " ".join(report.split())
    build(out, "--shard-size", "2")
    assert stray.read_bytes() == tars[0].read_bytes()


# ---- 9. smaller breaks --------------------------------------------------------------------------------------------
def test_a_clip_shorter_than_its_labels_is_rejected_not_written(tmp_path):
    from avuie.media.synth import make_video

    ds = tmp_path / "AVE_Dataset"
    (ds / "AVE").mkdir(parents=True)
    for name, seconds in (("shortclip01", 0.2), ("shortclip02", 9.6), ("longclip001", 10)):
        make_video(ds / "AVE" / f"{name}.mp4", duration=seconds, size=(96, 72), fps=5, freq=300)
    (ds / "trainSet.txt").write_text(
        "".join(f"Bark&{n}&good&4&10\n" for n in ("shortclip01", "shortclip02", "longclip001"))
    )
    out = tmp_path / "ave"
    stats = build(out, "--raw", str(ds))
    assert stats["splits"]["train"] | {"shards": 0} == {
        "in": 3, "written": 2, "rejected": 1, "reasons": {"labels_past_media": 1}, "shards": 0
    }  # fmt: skip
    (reject,) = pq.read_table(out / "rejects.parquet").to_pylist()
    assert reject["id_or_row"] == "ave/train/shortclip01_bark"
    assert reject["detail"] == "the labels reach 10 s but the media last 0.2 s"
    rows = pq.read_table(out / "manifest.parquet").to_pylist()  # a clip a little short of 10 s is kept
    assert sorted(r["media_duration"] for r in rows) == [9.6, 10.0]


def test_a_repaired_video_is_built_on_rerun(tmp_path):
    raw = raw_copy(tmp_path)
    video = raw / "AVE" / "RUhOCu3LNXM.mp4"  # the church bell clip (one record)
    good = video.read_bytes()
    truncate_file(video, 0.3)
    out = tmp_path / "ave"
    stats = build(out, "--raw", str(raw))
    assert stats["totals"]["written"] == 5 and stats["splits"]["train"]["reasons"] == {"corrupt_media": 1}
    video.write_bytes(good)  # repaired in place: same path, same records
    stats = build(out, "--raw", str(raw))
    assert stats["totals"] == {"in": 6, "written": 6, "rejected": 0}
    build_state(out)


def test_a_missing_folder_error_names_the_problem_not_an_errno(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # the working folder vanished: a relative --out cannot be made (the OS's own ENOENT)
    code, output = avuie("build", "--source", "ave", "--out", "rel/out")
    assert code != 0
    assert "error: 2" not in output and "No such file or directory" in output, output
    assert "Traceback" not in output


def test_a_file_where_the_output_needs_a_folder_is_a_clear_error(tmp_path):
    out = tmp_path / "ave"
    out.mkdir()
    (out / "shards").write_text("not a folder")
    code, output = avuie("build", "--source", "ave", "--out", str(out))
    assert code == 1 and "Traceback" not in output, output
    assert "shards" in output and "folder" in output
    assert (out / "shards").read_text() == "not a folder"


def _in_tmpfs(tmp_path: Path, options: str, out_rel: str) -> subprocess.CompletedProcess:
    """Run `avuie build` with its --out on a tmpfs mounted (in a private mount namespace) with `options`."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("this machine cannot make a private mount namespace (unshare -m)")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    ensure_sample("ave")
    script = (
        f"mount -t tmpfs -o {options} tmpfs {mnt} && "
        f"{sys.executable} -m avuie build --source ave --out {mnt / out_rel}"
    )
    return subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True)


def test_a_full_disk_is_a_clear_error(tmp_path):
    proc = _in_tmpfs(tmp_path, "size=600k", "ave")  # the bundled AVE build needs ~2.7 MB
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "No space left on device" in proc.stderr, proc.stderr
    assert "rerun" in proc.stderr


def test_a_read_only_output_is_a_clear_error(tmp_path):
    proc = _in_tmpfs(tmp_path, "ro,size=1m", "ave")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Read-only file system" in proc.stderr, proc.stderr


def test_two_builds_into_one_folder_the_second_says_who_holds_it(tmp_path):
    out = tmp_path / "ave"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from avuie.shards.owner import acquire; "
         f"lock = acquire({str(out)!r}, 'ave', 'avuie build --source ave --out {out}'); print('held', flush=True); "
         "time.sleep(120)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        code, output = avuie("build", "--source", "ave", "--out", str(out))
        assert code == 2, output
        flat = " ".join(output.split())
        assert f"pid {holder.pid}" in flat and "avuie build --source ave" in flat and "started" in flat
        assert not (out / "manifest.parquet").exists()
        build(out, source="meld")  # another source may build into the same folder meanwhile
    finally:
        holder.kill()
        holder.wait()
    code, output = avuie("build", "--source", "ave", "--out", str(out))  # its holder died: taken over
    assert code == 0, output
    assert f"pid {holder.pid}" in " ".join(output.split()) and "no longer running" in output
    assert {r["source"] for r in pq.read_table(out / "manifest.parquet").to_pylist()} == {"ave", "meld"}


def test_a_killed_build_commit_is_finished_by_the_next_command(tmp_path):
    out = tmp_path / "ave"
    build(out, "--shard-size", "8", "--shard-bytes", "100000")
    before = build_state(out)
    # kill the rebuild with new shard settings right after its commit point (the journal's rename)
    with Crasher() as crash:
        for n in range(1, 200):
            trial = tmp_path / f"t{n}"
            shutil.copytree(out, trial)
            code = crash(n, "build", "--source", "ave", "--out", str(trial), "--shard-size", "1")
            journals = layout.list_journals(trial)
            if code == 0 or journals:
                break
            shutil.rmtree(trial)
    assert journals, "no kill left a journal"
    assert avuie("validate", str(trial))[0] == 1  # the half-applied commit is reported ...
    code, output = avuie("repair", str(trial))  # ... and finished
    assert code == 0, output
    after = build_state(trial)
    assert after == before and not layout.list_journals(trial)  # same samples, now one per shard
    assert len(layout.list_tars(trial)) == 6
