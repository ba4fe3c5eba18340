"""The build pipeline end to end on AVE: real annotations, the bundled sample, bad inputs, kill and resume."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import wave
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from avuie.shards import layout
from avuie.shards.writer import iter_tar_samples
from PIL import Image
from typer.testing import CliRunner

from avuie.cli import app
from avuie.media.synth import make_video, truncate_file
from tests.buildkit import assert_build_ok, build_source, scan_counts

runner = CliRunner()


def flat(output: str) -> str:
    """CLI output with rich's box characters and line wrapping removed."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def test_scan_real_ave_annotations(real_root):
    counts = scan_counts("ave", real_root / "ave" / "AVE_Dataset")
    assert {s: c["records"] for s, c in counts.items()} == {"train": 3339, "val": 402, "test": 402}
    assert all(c["rejected"] == 0 for c in counts.values())
    # The real release copy holds one clip: every other test video is reported missing.
    assert counts["test"]["media_missing"] == 401


def test_scan_cli_prints_one_json_object(real_root):
    result = runner.invoke(
        app, ["scan", "--source", "ave", "--raw", str(real_root / "ave" / "AVE_Dataset"), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"] == "ave"
    assert report["splits"]["train"]["records"] == 3339


def test_real_ave_clip_builds_end_to_end(real_root, tmp_path):
    out = tmp_path / "ave_real"
    stats = build_source("ave", out, raw=real_root / "ave" / "AVE_Dataset", splits=["test"])
    s = stats["splits"]["test"]
    assert s["in"] == 402 and s["written"] == 1 and s["rejected"] == 401
    assert s["reasons"] == {"missing_file": 401}
    items = assert_build_ok(out, stats)
    assert items[0]["sample"]["native_id"].startswith("-67UNKFmRLk_")


def test_bundled_sample_builds_with_the_asked_media(tmp_path):
    out = tmp_path / "ave"
    stats = build_source("ave", out)
    assert stats["totals"] == {"in": 6, "written": 6, "rejected": 0}
    items = assert_build_ok(out, stats, min_written=6)
    ids = {it["sample"]["id"] for it in items}
    # the video with two events gives two samples
    assert {
        "ave/train/-ccciEuH9FE_male_speech_man_speaking",
        "ave/train/-ccciEuH9FE_female_speech_woman_speaking",
    } <= ids
    for it in items:
        frames = sorted(f for f in it["files"] if f.startswith("frame_"))
        assert len(frames) == 10
        assert Image.open(io.BytesIO(it["files"][frames[0]])).size == (224, 224)
        with wave.open(io.BytesIO(it["files"]["audio.wav"])) as w:
            assert w.getframerate() == 16000 and w.getnchannels() == 1
            assert abs(w.getnframes() / 16000 - 10.0) < 0.05
        video = next(m for m in it["sample"]["media"] if m["kind"] == "video_frames")
        assert video["original_size"] == [160, 120]
        assert abs(video["duration"] - 10.0) < 0.05
        times = video["frame_times"]
        assert times == sorted(times) and 0 < times[0] < 1 and 9 < times[-1] < 10
        audio = next(m for m in it["sample"]["media"] if m["kind"] == "audio")
        assert len(audio["segments"]) == 10
        # what the source held is kept beside what was cut (the synthesized clips: 44.1 kHz stereo AAC)
        assert (audio["original_sample_rate"], audio["original_channels"]) == (44100, 2)
        assert abs(audio["source_duration"] - 10.0) < 0.1
    manifest = pq.read_table(out / "manifest.parquet").to_pylist()
    assert len(manifest) == 6 and all(r["reasoning_kind"] == "template" for r in manifest)
    build_info = json.loads((out / "build.json").read_text())
    assert build_info["source"] == "ave" and "ffmpeg" in build_info["versions"]
    assert set(build_info["hashes"]["annotations"]) == {"trainSet.txt", "valSet.txt", "testSet.txt"}
    assert len(build_info["hashes"]["records"]) == 64


def _bad_tree(root: Path) -> Path:
    ds = root / "AVE_Dataset"
    (ds / "AVE").mkdir(parents=True)
    make_video(ds / "AVE" / "good0000000.mp4", duration=10, size=(96, 72), fps=5)
    make_video(ds / "AVE" / "noaudio0000.mp4", duration=10, size=(96, 72), fps=5, audio=False)
    make_video(ds / "AVE" / "truncated00.mp4", duration=10, size=(96, 72), fps=5)
    truncate_file(ds / "AVE" / "truncated00.mp4", 0.3)
    (ds / "AVE" / "empty000000.mp4").write_bytes(b"")
    rows = [
        "Bark&good0000000&good&0&4",
        "Bark&noaudio0000&good&0&4",
        "Bark&truncated00&good&0&4",
        "Bark&empty000000&good&0&4",
        "Bark&missing0000&good&0&4",
        "Bark&good0000000&good&zero&4",
        "Bark&spanbad0000&good&7&3",
        "Unicorn&good0000000&good&0&4",
        "Bark&only-four-fields&0&4",
    ]
    (ds / "trainSet.txt").write_text("\n".join(rows) + "\n")
    return ds


def test_bad_inputs_end_in_rejects_with_specific_reasons(tmp_path):
    raw = _bad_tree(tmp_path / "raw")
    out = tmp_path / "out"
    stats = build_source("ave", out, raw=raw)
    s = stats["splits"]["train"]
    assert s["in"] == 9 and s["written"] == 1 and s["in"] == s["written"] + s["rejected"]
    rejects = pq.read_table(out / "rejects.parquet").to_pylist()
    by_row = {int(r["annotation_row"]): r["reason"] for r in rejects}
    assert by_row == {
        2: "no_audio_stream",
        3: "corrupt_media",
        4: "empty_file",
        5: "missing_file",
        6: "malformed_row",
        7: "invalid_span",
        8: "unknown_class",
        9: "malformed_row",
    }
    assert all(r["detail"] for r in rejects)
    assert_build_ok(out, stats)


def _many_clips(root: Path, n: int) -> Path:
    ds = root / "AVE_Dataset"
    (ds / "AVE").mkdir(parents=True)
    rows = []
    for i in range(n):
        vid = f"clip{i:07d}"
        make_video(ds / "AVE" / f"{vid}.mp4", duration=10, size=(96, 72), fps=5, freq=200 + 50 * i)
        rows.append(f"Bark&{vid}&good&{i % 5}&{5 + i % 5}")
    (ds / "trainSet.txt").write_text("\n".join(rows) + "\n")
    return ds


def _manifest(out: Path) -> list[tuple[str, str]]:
    rows = pq.read_table(out / "manifest.parquet").to_pylist()
    return sorted((r["id"], r["content_hash"]) for r in rows)


def test_sigkill_midway_then_rerun_equals_uninterrupted(tmp_path):
    raw = _many_clips(tmp_path / "raw", 10)
    ref = tmp_path / "ref"
    build_source("ave", ref, raw=raw, shard_size=1)
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "avuie",
        "build",
        "--source",
        "ave",
        "--raw",
        str(raw),
        "--out",
        str(out),
        "--shard-size",
        "1",
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    pieces = layout.stage_dir(out, "ave") / "pieces"  # finished work is staged until the commit
    deadline = time.time() + 120
    while time.time() < deadline and len(layout.staged_markers(pieces)) < 3:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(layout.staged_markers(pieces))
    assert 3 <= finished < 10, "the build must be killed midway"
    assert not (out / "manifest.parquet").exists() and not layout.list_tars(out)  # nothing half-visible
    result = runner.invoke(
        app, ["build", "--source", "ave", "--raw", str(raw), "--out", str(out), "--shard-size", "1"]
    )
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["shards_skipped"] == finished
    assert _manifest(out) == _manifest(ref)
    assert not list(out.rglob("*.tmp"))
    for tar in out.glob("shards/*/*.tar"):
        with tarfile.open(tar) as t:
            assert len(t.getmembers()) == 4  # json, frames.jpg (10 frames), audio.wave, masks.tar (empty)
        assert [len(m) for _, m in iter_tar_samples(tar)] == [12]  # logically: json + 10 frames + audio


def _tar_digests(out: Path) -> dict[str, str]:
    import hashlib

    return {
        str(t.relative_to(out)): hashlib.sha256(t.read_bytes()).hexdigest() for t in layout.list_tars(out)
    }


def test_sigkill_with_missing_media_resumes_to_the_same_full_shards(tmp_path):
    raw = _many_clips(tmp_path / "raw", 8)
    for i in (1, 4):
        (raw / "AVE" / f"clip{i:07d}.mp4").unlink()  # rejects inside the first and third chunk of 2
    ref = tmp_path / "ref"
    stats = build_source("ave", ref, raw=raw, shard_size=2)
    assert stats["splits"]["train"]["written"] == 6
    assert sorted(_tar_digests(ref)) == [
        f"shards/train/ave-train-0000{k}.tar" for k in range(3)
    ]  # full, no gap
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "avuie", "build", "--source", "ave", "--raw", str(raw), "--out", str(out),
           "--shard-size", "2", "--workers", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    pieces = layout.stage_dir(out, "ave") / "pieces"
    deadline = time.time() + 120
    while time.time() < deadline and len(layout.staged_markers(pieces)) < 2:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 2 <= len(layout.staged_markers(pieces)) < 4, "the build must be killed midway"
    result = runner.invoke(app, cmd[3:])
    assert result.exit_code == 0, result.output
    assert _tar_digests(out) == _tar_digests(ref)  # byte for byte, though packed from resumed pieces
    assert _manifest(out) == _manifest(ref)


def test_validate_catches_a_tampered_shard(tmp_path):
    out = tmp_path / "ave"
    build_source("ave", out)
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0
    tar_path = next(out.glob("shards/train/*.tar"))
    members = []
    with tarfile.open(tar_path) as t:
        for m in t.getmembers():
            members.append((m, t.extractfile(m).read()))
    with tarfile.open(tar_path, "w") as t:
        for m, data in members:
            if m.name.endswith(".json"):
                d = json.loads(data)
                d["target"]["end"] = 2 if d["target"]["start"] < 2 else 10
                data = json.dumps(d).encode()
                m.size = len(data)
            t.addfile(m, io.BytesIO(data))
    result = runner.invoke(app, ["validate", str(out)])
    assert result.exit_code == 1
    assert "FAIL ave/train/" in result.output


def test_build_cli_refuses_unknown_source_and_bad_raw(tmp_path):
    result = runner.invoke(app, ["build", "--source", "nope", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "unknown source" in result.output
    result = runner.invoke(
        app, ["build", "--source", "ave", "--raw", str(tmp_path), "--out", str(tmp_path / "y")]
    )
    assert result.exit_code == 2 and "AVE_Dataset" in result.output


@pytest.mark.parametrize("limit", [1, 2])
def test_limit_and_split_select_records(tmp_path, limit):
    out = tmp_path / "ave"
    result = runner.invoke(
        app, ["build", "--source", "ave", "--out", str(out), "--split", "train", "--limit", str(limit)]
    )
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert list(stats["splits"]) == ["train"] and stats["splits"]["train"]["written"] == limit


def test_shard_bytes_rolls_over_into_parts_that_validate(tmp_path):
    out = tmp_path / "ave"
    stats = build_source("ave", out, shard_bytes=100_000)
    tars = sorted(p.name for p in out.glob("shards/train/*.tar"))
    assert tars == [
        "ave-train-00000-1.tar",
        "ave-train-00000-2.tar",
        "ave-train-00000-3.tar",
        "ave-train-00000.tar",
    ]
    marker = json.loads((out / "shards/train/ave-train-00000.done.json").read_text())
    assert set(marker["tars_info"]) == set(tars)
    assert all(len(info["table"]["rows"]) == 1 for info in marker["tars_info"].values())
    assert_build_ok(out, stats, min_written=6)


def test_rerun_with_other_records_rebuilds_instead_of_keeping_stale_shards(tmp_path, real_root):
    out = tmp_path / "ave"
    assert runner.invoke(app, ["build", "--source", "ave", "--out", str(out), "--limit", "1"]).exit_code == 0
    result = runner.invoke(app, ["build", "--source", "ave", "--out", str(out)])
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["splits"]["train"]["written"] == 4 and stats["shards_skipped"] == 2  # val and test unchanged
    # another raw tree into the same folder: nothing of the bundled clip may survive
    result = runner.invoke(
        app, ["build", "--source", "ave", "--out", str(out), "--split", "test", "--raw",
              str(real_root / "ave" / "AVE_Dataset")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["splits"]["test"]["in"] == 402 and stats["shards_skipped"] == 0
    ids = {r["id"] for r in pq.read_table(out / "manifest.parquet").to_pylist()}
    assert ids == {"ave/test/-67UNKFmRLk_" + next(iter(ids)).split("_", 1)[1]}
    assert not any("fCZi6I6kPpU" in i for i in ids)
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--param", "bogus=1"], "unknown parameter(s) bogus"),
        (["--shard-size", "0"], "at least 1"),
        (["--limit", "-1"], "at least 1"),
        (["--split", "nosuch"], "no entries for split(s) nosuch"),
    ],
)
def test_build_refuses_bad_settings_with_a_clear_error(tmp_path, args, message):
    result = runner.invoke(app, ["build", "--source", "ave", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    assert message in flat(result.output) and "Traceback" not in result.output


def test_scan_refuses_unknown_parameters_and_validate_a_missing_folder(tmp_path):
    result = runner.invoke(app, ["scan", "--source", "ucf", "--param", "split=2"])
    assert result.exit_code == 2 and "unknown parameter(s) split" in flat(result.output)
    result = runner.invoke(app, ["validate", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "is not a folder" in flat(result.output)
