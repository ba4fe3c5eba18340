"""Benchmark: avuie's clip cut against the equal-work ffmpeg commands a user would run instead (one run).

Every method turns each clip into 10 uniformly spaced 224x224 JPEG frames plus the 16 kHz mono WAV of the
whole clip, with the same ffmpeg binary (imageio-ffmpeg's):

- ``avuie``               : ``extract_clip`` exactly as the build calls it: 10 s clips as AVE asks (start 0,
                            10 s: one ffmpeg process, header from the same run), 60 s clips as MUSIC-AVQA asks
                            (the whole file: one header read, then one process seeking to each frame). The
                            header cache is emptied before every timed run, so each clip pays its header read.
- ``two-process script``  : ``ffmpeg -i c -vf fps=N/D,scale=224:224 f%02d.jpg`` then ``ffmpeg -i c -vn -ac 1
                            -ar 16000 a.wav``: the script a user writes
- ``one ffmpeg, 2 outputs``: the same two outputs from one ffmpeg command (one decode)
- ``decode only``         : ``ffmpeg -i c -f null -``: decode every video frame and the audio, write nothing

Clips: synthetic 640x360 25 fps h264 (x264 veryfast) + AAC, 10 s long (a keyframe every 5 s) and 60 s long
(one set per ``--gops`` keyframe interval: web videos have one every 2-5 s, as the real AVE/LLP clips do); and
the real 10 s AVE/LLP clips when ../shared is there. Times are medians of ``--repeats`` rounds over all clips
of a set (every method once per round, in turn), per clip.

Run: ``python benchmarks/bench_media.py [--short 8] [--long 3] [--repeats 5] [--gops 2,5]``.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from avuie.media import ffmpeg

SHARED = Path(__file__).resolve().parents[2] / "shared" / "real_annotations"  # ../shared beside the checkout
REAL = [
    SHARED / "ave/AVE_Dataset/AVE/-67UNKFmRLk.mp4",
    SHARED / "llp/data/LLP_dataset/video/6aV6c8mY0lg.mp4",
]
FRAMES = 10


def make_clip(path: Path, seconds: int, gop_s: float, freq: int) -> Path:
    """Write a 640x360 25 fps h264 + AAC clip (a keyframe every `gop_s` seconds); return its path."""
    lavfi = [
        *("-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}"),
        *("-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate=44100:duration={seconds}"),
    ]
    codecs = ["-c:v", "libx264", "-preset", "veryfast", "-g", str(round(25 * gop_s)), "-pix_fmt", "yuv420p"]
    cmd = [ffmpeg.ffmpeg_exe(), "-v", "error", "-y", *lavfi, *codecs, "-c:a", "aac", "-shortest", str(path)]
    subprocess.run(cmd, check=True)
    return path


def script(clips: list[Path], out: Path, seconds: float, method: str) -> str:
    """A bash script running one baseline `method` over every clip."""
    ff = shlex.quote(ffmpeg.ffmpeg_exe()) + " -v error -y"
    frames = f"-vf fps={FRAMES}/{seconds},scale=224:224 -q:v 2"
    audio = "-vn -ac 1 -ar 16000 -c:a pcm_s16le"
    lines = ["set -e"]
    for k, clip in enumerate(clips):
        src, d = shlex.quote(str(clip)), out / f"c{k}"
        lines.append(f"mkdir -p {d}")
        if method == "two-process script":
            lines += [f"{ff} -i {src} {frames} {d}/f%02d.jpg", f"{ff} -i {src} {audio} {d}/a.wav"]
        elif method == "one ffmpeg, 2 outputs":
            lines.append(f"{ff} -i {src} {frames} {d}/f%02d.jpg -map 0:a:0 {audio} {d}/a.wav")
        else:
            lines.append(f"{ff} -i {src} -f null -")
    return "\n".join(lines)


def avuie_cut(clips: list[Path], whole_file: bool) -> None:
    """Cut every clip as the build does (see the module docstring), header cache emptied first."""
    ffmpeg._HEADERS.clear()
    for clip in clips:
        clip_duration = None if whole_file else 10.0
        c = ffmpeg.extract_clip(clip, start=0.0, duration=clip_duration, num_frames=FRAMES)
        assert len(c.frames) == FRAMES and c.audio is not None


def bench(clips: list[Path], seconds: float, whole_file: bool, repeats: int) -> dict[str, float]:
    """Seconds per clip of every method on ``clips`` (all ``seconds`` long): medians of ``repeats`` rounds,
    each round running every method once in turn (so a load change on the machine hits all of them alike)."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = {"avuie": lambda: avuie_cut(clips, whole_file)}
        for method in ("two-process script", "one ffmpeg, 2 outputs", "decode only"):
            text = script(clips, Path(tmp), seconds, method)
            runs[method] = lambda s=text: subprocess.run(["bash", "-c", s], check=True)
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(repeats):
            for name, run in runs.items():
                t0 = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) / len(clips) for name, t in times.items()}


def print_table(title: str, rows: dict[str, float]) -> None:
    """Print one set: seconds per clip, and each time over decode-only and over the two-process script."""
    decode, naive = rows["decode only"], rows["two-process script"]
    print(f"\n{title}")
    print(f"{'method':<24}{'s/clip':>9}{'x decode-only':>15}{'x two-process':>15}")
    for name, per_clip in rows.items():
        print(f"{name:<24}{per_clip:>9.3f}{per_clip / decode:>15.2f}{per_clip / naive:>15.2f}")


def main() -> None:
    """Synthesize the clips, time every method on every set, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=8, help="number of synthetic 10 s clips")
    parser.add_argument("--long", type=int, default=3, help="number of synthetic 60 s clips")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method (median)")
    parser.add_argument(
        "--gops", default="2,5", help="seconds between keyframes of the synthetic 60 s clips (one set each)"
    )
    args = parser.parse_args()
    print(f"ffmpeg: {ffmpeg.ffmpeg_exe()}")
    with tempfile.TemporaryDirectory() as tmp:
        short = [make_clip(Path(tmp) / f"s{k}.mp4", 10, 5.0, 300 + 50 * k) for k in range(args.short)]
        kind = "640x360, 25 fps, h264 + aac, a keyframe every {:g} s"
        title = f"{args.short} synthetic 10 s clips ({kind.format(5)}), cut as AVE asks (0-10 s)"
        print_table(title, bench(short, 10.0, False, args.repeats))
        for gop in (float(g) for g in args.gops.split(",")):
            long = [make_clip(Path(tmp) / f"l{k}.mp4", 60, gop, 300 + 50 * k) for k in range(args.long)]
            title = (
                f"{args.long} synthetic 60 s clips ({kind.format(gop)}), cut as MUSIC-AVQA asks (whole file)"
            )
            print_table(title, bench(long, 60.0, True, args.repeats))
    real = [p for p in REAL if p.exists()]
    if real:
        print_table(f"{len(real)} real 10 s clips (AVE, LLP)", bench(real, 10.0, False, args.repeats))


if __name__ == "__main__":
    main()
