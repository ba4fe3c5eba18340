"""What the exporters share: options, reading samples from shards, media files, parallel work.

The formats and the `export()` dispatcher live in avuie/export/registry.py.

| format | writes | module |
|---|---|---|
| `crab-plus` | `DEST/AVUIE_2/<task>/{train,test,val}.json` + media where the official Crab+ loader looks | crab.py |
| `hf` | a Hugging Face `datasets.DatasetDict` (one split per build split), `load_from_disk(DEST)` | hf.py |
| `sharegpt` | LLaMA-Factory sharegpt JSON per split + `dataset_info.json` + media under `DEST/media/` | sharegpt.py |

Samples are read straight from the tar shards (plain webdataset members, docs/DESIGN.md), in build, shard and
tar order, so an export is deterministic. Media files are the shard's own bytes (frames JPEG, audio 16 kHz WAV,
masks PNG); `--video mp4` (default) also encodes each frame sequence into an H.264 mp4 with one frame per
sampled frame time, because the Crab+ and LLaMA-Factory video readers take a video file (decord/torchvision
then sample the same N frames back). `--video frames` skips the encoding and points at the JPEG frames.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import wave
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

VIDEO_MODES = ("mp4", "frames")

ReportProgress = Callable[[int, int], None]  # report(done, total): the running count a progress bar shows


class ExportError(ValueError):
    """Bad export arguments (unknown format, destination not empty...) or an unreadable shard."""


@dataclass
class ExportOptions:
    """Choices shared by the exporters."""

    splits: list[str] | None = None
    sources: list[str] | None = None
    video: str = "mp4"  # mp4 | frames
    val_to: str = "auto"  # crab-plus: auto | val | train | test | drop (avuie/export/crab.py)
    workers: int = 2
    force: bool = False


# ---------------------------------------------------------------- reading


def iter_samples(
    builds: Iterable[Path], splits: list[str] | None = None, sources: list[str] | None = None
) -> Iterator[tuple[dict[str, Any], dict[str, bytes]]]:
    """Yield (sample JSON as dict, {member suffix: bytes}) for every sample of every build, in shard order."""
    from avuie.shards.layout import list_tars
    from avuie.shards.writer import iter_tar_samples

    for build in builds:
        for tar in list_tars(build):
            if splits and tar.parent.name not in splits:
                continue
            for key, members in iter_tar_samples(tar):
                if "json" not in members:
                    raise ExportError(f"{tar}: sample {key} has no .json member")
                sample = json.loads(members.pop("json"))
                if sources and sample["source"] not in sources:
                    continue
                yield sample, members


def split_counts(catalog: Any, splits: list[str] | None, sources: list[str] | None) -> dict[str, int]:
    """How many samples an export will read per split (from the catalog's manifests)."""
    where = []
    if splits:
        where.append("split IN (" + ", ".join("'" + s.replace("'", "''") + "'" for s in splits) + ")")
    if sources:
        where.append("source IN (" + ", ".join("'" + s.replace("'", "''") + "'" for s in sources) + ")")
    sql = "SELECT split, count(*) AS n FROM samples" + (" WHERE " + " AND ".join(where) if where else "")
    return {r["split"]: int(r["n"]) for r in catalog.rows(sql + " GROUP BY split ORDER BY split")}


def media_of(sample: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The sample's media items of one kind (video_frames, audio, image, mask), in order."""
    return [m for m in sample["media"] if m["kind"] == kind]


def batched(items: Iterable[Any], n: int) -> Iterator[list[Any]]:
    """Lists of up to n consecutive items."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


# ---------------------------------------------------------------- media helpers


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV bytes -> (float32 mono waveform in [-1, 1], sample rate)."""
    with wave.open(io.BytesIO(data)) as w:
        sr, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise ExportError(f"expected 16-bit PCM audio, got {8 * width}-bit")
    pcm = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1)
    return pcm, sr


def encode_wav(pcm: np.ndarray, sample_rate: int) -> bytes:
    """float32 waveform in [-1, 1] -> 16-bit mono PCM WAV bytes."""
    ints = np.clip(np.round(np.asarray(pcm, dtype=np.float64) * 32768.0), -32768, 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(ints.tobytes())
    return buf.getvalue()


def write_file(path: Path, data: bytes) -> Path:
    """Write bytes to path (parents created); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_frames(folder: Path, item: dict[str, Any], files: dict[str, bytes]) -> list[Path]:
    """Write a video item's JPEG frames as folder/frame_00.jpg, frame_01.jpg...; return the paths."""
    return [write_file(folder / f"frame_{i:02d}.jpg", files[name]) for i, name in enumerate(item["files"])]


def frame_rate(item: dict[str, Any]) -> Fraction:
    """Frames per second that spread a video item's frames over its duration (1 fps for 10 frames of 10 s)."""
    count = len(item["files"])
    duration = item.get("duration") or count
    return Fraction(count / duration).limit_denominator(1000) if duration > 0 else Fraction(1)


def encode_mp4(frames: list[Path], rate: Fraction, out: Path) -> Path:
    """Encode JPEG frames (named frame_%02d.jpg in one folder) into an H.264 mp4 with one video frame each."""
    from avuie.media import ffmpeg

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="avuie_mp4_") as tmp:
        target = Path(tmp) / "v.mp4"
        args = [
            ffmpeg.ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-framerate",
            f"{rate.numerator}/{rate.denominator}",
            "-start_number",
            "0",
            "-i",
            str(frames[0].parent / "frame_%02d.jpg"),
            "-frames:v",
            str(len(frames)),
            "-vf",
            "scale=trunc(iw/2)*2:trunc(ih/2)*2",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "12",
            "-pix_fmt",
            "yuv420p",
            "-an",
            str(target),
        ]
        proc = ffmpeg.run_ffmpeg(args)
        if proc.returncode != 0 or not target.exists():
            tail = proc.stderr.decode(errors="replace").strip()[-400:]
            raise ExportError(f"ffmpeg could not encode {out.name}: {tail}")
        shutil.move(str(target), out)
    return out


def prepare_dest(dest: Path, force: bool) -> Path:
    """Create the destination; refuse a non-empty one unless `force` (files are then overwritten)."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise ExportError(f"{dest} exists and is not a folder")
    if dest.exists() and any(dest.iterdir()) and not force:
        raise ExportError(f"{dest} is not empty; choose another --to or pass --force to write into it")
    dest.mkdir(parents=True, exist_ok=True)
    return dest


class JsonArrayFiles:
    """One streaming JSON array file per name (`open` lazily, `close` writes the closing brackets)."""

    def __init__(self, path_of: Callable[[str], Path]) -> None:
        self.path_of = path_of
        self.handles: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def append(self, name: str, record: dict[str, Any]) -> None:
        """Add one record to the array of `name`."""
        fh = self.handles.get(name)
        if fh is None:
            path = self.path_of(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = self.handles[name] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            fh.write("[\n")
            self.counts[name] = 0
        if self.counts[name]:
            fh.write(",\n")
        fh.write(json.dumps(record, ensure_ascii=False))
        self.counts[name] += 1

    def close(self) -> dict[str, int]:
        """Finish every array; return the record count per name."""
        for fh in self.handles.values():
            fh.write("\n]\n")
            fh.close()
        self.handles = {}
        return dict(self.counts)


def run_parallel(
    items: Iterable[Any], work: Callable[[Any], Any], workers: int, progress: Callable[[int], None] | None
) -> Iterator[Any]:
    """Apply `work` to items on a thread pool in bounded batches; yield results in input order."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for batch in batched(items, max(8, 4 * workers)):
            yield from pool.map(work, batch)
            if progress:
                progress(len(batch))
