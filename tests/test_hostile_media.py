"""One hostile entry never aborts or hangs a build (issue 12 item 5).

Each case builds a real raw tree (real ffmpeg media, real FIFO, real links, real permissions) holding one good
clip and one bad entry, runs `avuie build` in a child process with a deadline (so a hang fails the test
instead of hanging the suite), and checks that the bad entry is a reject with its specific reason while the
good one is written, with in = written + rejected.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from avuie.media.synth import make_video
from avuie.samples import ensure_sample

DEADLINE_S = 180  # a hung build is killed here; a healthy one takes a few seconds
BAD = "badclip0000"


def _ave_tree(root: Path, bad: Callable[[Path], str], label: str = "4&10") -> Path:
    """An AVE raw tree: one good 10 s clip and one entry made by `bad(clip_folder) -> video id`."""
    ds = root / "AVE_Dataset"
    (ds / "AVE").mkdir(parents=True)
    make_video(ds / "AVE" / "good0000000.mp4", duration=10, size=(96, 72), fps=5)
    vid = bad(ds / "AVE")
    (ds / "trainSet.txt").write_text(f"Bark&good0000000&good&0&4\nBark&{vid}&good&{label}\n")
    return ds


def _run_build(source: str, raw: Path, out: Path, *extra: str, env: dict | None = None, preexec=None):
    """`avuie build` in a child process with a deadline; return (stats, {annotation row: reject row})."""
    cmd = [sys.executable, "-m", "avuie", "build", "--source", source, "--raw", str(raw), "--out", str(out)]
    try:
        proc = subprocess.run(
            [*cmd, *extra], capture_output=True, text=True, timeout=DEADLINE_S, env=env, preexec_fn=preexec
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the build hung: still running after {DEADLINE_S} s")
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    for split, s in stats["splits"].items():
        assert s["in"] == s["written"] + s["rejected"], split
    rejects = pq.read_table(out / "rejects.parquet").to_pylist() if (out / "rejects.parquet").exists() else []
    return stats, {r["annotation_row"]: r for r in rejects}


def _folder(d: Path) -> str:
    (d / f"{BAD}.mp4").mkdir()
    return BAD


def _long_id(d: Path) -> str:
    return "x" * 300


def _fifo(d: Path) -> str:
    os.mkfifo(d / f"{BAD}.mp4")
    return BAD


def _dev_zero(d: Path) -> str:
    (d / f"{BAD}.mp4").symlink_to("/dev/zero")
    return BAD


@pytest.mark.parametrize(
    "bad, reason, words",
    [
        (_folder, "not_a_file", "directory"),
        (_long_id, "name_too_long", "too long"),
        (_fifo, "not_a_file", "FIFO"),
        (_dev_zero, "not_a_file", "character device"),
    ],
    ids=["folder_named_mp4", "300_char_id", "fifo", "link_to_dev_zero"],
)
def test_a_hostile_clip_is_one_reject_and_the_build_finishes(tmp_path, bad, reason, words):
    stats, rejects = _run_build("ave", _ave_tree(tmp_path / "raw", bad), tmp_path / "out")
    assert stats["splits"]["train"]["written"] == 1
    assert set(rejects) == {"2"}
    assert rejects["2"]["reason"] == reason and words in rejects["2"]["detail"]


def _without_dac_override() -> None:
    """In the child, before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set, so that
    root is held to file permissions like any user (the kernel's real check, nothing simulated)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_an_unreadable_clip_is_a_reject(tmp_path):
    """chmod 000. Root reads anything, so as root the build runs without the capabilities that allow it."""
    raw = _ave_tree(tmp_path / "raw", lambda d: (d / f"{BAD}.mp4").write_bytes(b"\0" * 4096) and BAD)
    (raw / "AVE" / f"{BAD}.mp4").chmod(0)
    preexec = _without_dac_override if os.geteuid() == 0 else None
    if preexec is not None:
        probe = subprocess.run(
            ["cat", str(raw / "AVE" / f"{BAD}.mp4")], preexec_fn=preexec, capture_output=True
        )
        if probe.returncode == 0:
            pytest.skip("root keeps reading a chmod 000 file here: the capability could not be dropped")
    stats, rejects = _run_build("ave", raw, tmp_path / "out", preexec=preexec)
    assert stats["splits"]["train"]["written"] == 1
    assert rejects["2"]["reason"] == "unreadable" and "Permission denied" in rejects["2"]["detail"]


def test_a_clip_a_little_shorter_than_its_label_is_still_written(tmp_path):
    def nearly(d: Path) -> str:
        make_video(d / f"{BAD}.mp4", duration=9.6, size=(96, 72), fps=5)
        return BAD

    stats, rejects = _run_build("ave", _ave_tree(tmp_path / "raw", nearly, "0&10"), tmp_path / "out")
    assert stats["splits"]["train"]["written"] == 2 and rejects == {}


def test_an_ffmpeg_call_past_its_timeout_is_a_reject(tmp_path):
    env = {**os.environ, "AVUIE_FFMPEG_TIMEOUT": "0.001"}
    raw = _ave_tree(tmp_path / "raw", lambda d: make_video(d / f"{BAD}.mp4", size=(96, 72), fps=5) and BAD)
    stats, rejects = _run_build("ave", raw, tmp_path / "out", env=env)
    assert stats["splits"]["train"]["written"] == 0
    assert {r["reason"] for r in rejects.values()} == {"timeout"} and len(rejects) == 2


def _replace_id(source: str, tmp_path: Path, annotation: str, old: str) -> Path:
    """A copy of a source's bundled sample with one id in `annotation` made 300 characters long."""
    raw = ensure_sample(source)
    copy = tmp_path / "raw"
    shutil.copytree(raw, copy, symlinks=True)
    path = next(copy.rglob(annotation))
    text = path.read_text()
    assert old in text, f"the bundled {source} sample no longer has {old}"
    path.write_text(text.replace(old, "y" * 300))
    return copy


@pytest.mark.parametrize(
    "source, annotation, old",
    [
        ("mer24", "train-label.csv", "sample_00000031"),
        ("ref_avs", "metadata.csv", "aS2dF4gH6jK_137000_147000"),
    ],
)
def test_a_300_char_id_in_a_builder_that_looks_files_up_is_a_reject(tmp_path, source, annotation, old):
    """Builders that look a clip up while reading (find_clip, Ref-AVS frames) used to abort on ENAMETOOLONG."""
    raw = _replace_id(source, tmp_path, annotation, old)
    stats, rejects = _run_build(source, raw, tmp_path / "out")
    assert {r["reason"] for r in rejects.values() if r["reason"] != "todo_split"} == {"name_too_long"}
    assert stats["totals"]["written"] >= 2


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: p.mkdir(), "not_a_file"),
        (lambda p: os.mkfifo(p), "not_a_file"),
        (lambda p: p.symlink_to("/dev/zero"), "not_a_file"),
        (lambda p: p.symlink_to(p.parent / "nowhere"), "missing_file"),
        (lambda p: p.symlink_to(p), "unreadable"),  # a link loop
        (lambda p: p.write_bytes(b""), "empty_file"),
    ],
    ids=["folder", "fifo", "dev_zero", "dangling_link", "link_loop", "empty"],
)
def test_check_media_file_reasons(tmp_path, make, reason):
    from avuie.media.files import MediaError, check_media_file

    path = tmp_path / "clip.mp4"
    make(path)
    with pytest.raises(MediaError) as err:
        check_media_file(path)
    assert err.value.reason == reason and err.value.detail
    if stat.S_ISFIFO(os.lstat(path).st_mode):
        assert os.lstat(path).st_size == 0  # nothing was written to or read from the FIFO


def test_check_media_file_passes_a_regular_file_and_a_link_to_one(tmp_path):
    from avuie.media.files import MediaError, check_media_file

    clip = make_video(tmp_path / "a.mp4", duration=1, size=(32, 32))
    (tmp_path / "link.mp4").symlink_to(clip)
    assert check_media_file(clip) == check_media_file(tmp_path / "link.mp4") == clip.stat().st_size
    with pytest.raises(MediaError) as err:
        check_media_file(tmp_path / ("z" * 300 + ".mp4"))
    assert err.value.reason == "name_too_long"
