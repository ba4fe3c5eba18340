"""Benchmark: avuie's one-process clip cut against naive ffmpeg shell loops doing the same work.

Each method turns a 10 s clip into 10 uniformly spaced 224x224 JPEG frames plus 16 kHz mono WAV audio:

- ``avuie``            : ``extract_clip`` (one header read + one ffmpeg process that decodes once)
- ``avuie (probed)``   : ``extract_clip`` with the MediaInfo passed in (exactly one process)
- ``shell, 2 per clip``: one ffmpeg for all frames (fps filter) + one for the audio
- ``shell, 11 per clip``: one ffmpeg per frame (``-ss t -frames:v 1``) + one for the audio, as scripts often do

Run: ``python benchmarks/bench_media.py [--clips 8] [--repeats 3]``. Prints seconds per clip and ratios.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from avuie.media import ffmpeg, synth

SHARED = Path(__file__).resolve().parents[2] / "shared" / "real_annotations"  # ../shared beside the checkout
REAL = [
    SHARED / "ave/AVE_Dataset/AVE/-67UNKFmRLk.mp4",
    SHARED / "llp/data/LLP_dataset/video/6aV6c8mY0lg.mp4",
]


def shell_script(clips: list[Path], out: Path, per_frame: bool, duration: float = 10.0, n: int = 10) -> str:
    """Return a bash script that cuts every clip the naive way (per frame or two commands per clip)."""
    ff = shlex.quote(ffmpeg.ffmpeg_exe())
    lines = ["set -e"]
    for k, clip in enumerate(clips):
        src, d = shlex.quote(str(clip)), out / f"c{k}"
        lines.append(f"mkdir -p {d}")
        if per_frame:
            for i in range(n):
                t = (i + 0.5) * duration / n
                lines.append(
                    f"{ff} -v error -y -ss {t} -i {src} -frames:v 1 -vf scale=224:224 -q:v 2 {d}/f{i:02d}.jpg"
                )
        else:
            lines.append(
                f"{ff} -v error -y -i {src} -vf fps={n / duration},scale=224:224 -q:v 2 {d}/f%02d.jpg"
            )
        lines.append(f"{ff} -v error -y -i {src} -vn -ac 1 -ar 16000 -c:a pcm_s16le {d}/audio.wav")
    return "\n".join(lines)


def time_call(fn, repeats: int) -> float:
    """Run ``fn`` ``repeats`` times; return the median wall time in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(clips: list[Path], repeats: int) -> list[tuple[str, int, float]]:
    """Time every method on ``clips``; return rows (method, processes per clip, seconds per clip)."""
    infos = [ffmpeg.probe(c) for c in clips]
    rows = [
        ("avuie", 2, time_call(lambda: [ffmpeg.extract_clip(c) for c in clips], repeats)),
        (
            "avuie (probed)",
            1,
            time_call(
                lambda: [ffmpeg.extract_clip(c, info=i) for c, i in zip(clips, infos, strict=True)], repeats
            ),
        ),
    ]
    for name, per_frame, procs in (("shell, 2 per clip", False, 2), ("shell, 11 per clip", True, 11)):
        with tempfile.TemporaryDirectory() as tmp:
            script = shell_script(clips, Path(tmp), per_frame)
            seconds = time_call(lambda s=script: subprocess.run(["bash", "-c", s], check=True), repeats)
        rows.append((name, procs, seconds))
    return [(name, procs, seconds / len(clips)) for name, procs, seconds in rows]


def print_table(title: str, rows: list[tuple[str, int, float]]) -> None:
    """Print one result table: seconds per clip and the ratio to avuie."""
    base = rows[0][2]
    print(f"\n{title}")
    print(f"{'method':<22}{'procs/clip':>11}{'s/clip':>10}{'x avuie':>10}")
    for name, procs, per_clip in rows:
        print(f"{name:<22}{procs:>11}{per_clip:>10.3f}{per_clip / base:>10.2f}")


def main() -> None:
    """Synthesize the clips, run every method, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8, help="number of synthetic 10 s clips")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per method (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clips = [
            synth.make_video(Path(tmp) / f"clip{k}.mp4", size=(480, 360), freq=300 + 50 * k)
            for k in range(args.clips)
        ]
        print(f"ffmpeg: {ffmpeg.ffmpeg_exe()}")
        print_table(
            f"{args.clips} synthetic 10 s clips (480x360, 25 fps, h264+aac)", bench(clips, args.repeats)
        )
    real = [p for p in REAL if p.exists()]
    if real:
        print_table(f"{len(real)} real 10 s clips (AVE, LLP)", bench(real, args.repeats))


if __name__ == "__main__":
    main()
