"""Synthesize small, deterministic media files with the real ffmpeg (and Pillow) for tests and samples.

Videos come from ffmpeg's lavfi sources (``testsrc``/``testsrc2`` or a "counter" pattern whose grey level
encodes the frame number, so a test can tell which frame it got) plus a ``sine`` tone. The same arguments
always give the same bytes: every command runs with bitexact flags and no metadata.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from avuie.media.ffmpeg import ffmpeg_exe

# suffix -> (video codec args, audio codec args, audio sample rate override or None)
_VIDEO_CODECS: dict[str, tuple[list[str], list[str], int | None]] = {
    ".mp4": (
        ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-threads", "1"],
        ["-c:a", "aac"],
        None,
    ),
    ".mkv": (
        ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-threads", "1"],
        ["-c:a", "flac"],
        None,
    ),
    ".avi": (["-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p"], ["-c:a", "pcm_s16le"], None),
    ".flv": (["-c:v", "flv", "-q:v", "3", "-pix_fmt", "yuv420p"], ["-c:a", "libmp3lame"], 44100),
}
_AUDIO_CODECS: dict[str, list[str]] = {
    ".wav": ["-c:a", "pcm_s16le"],
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    ".flac": ["-c:a", "flac"],
}
_BITEXACT = ["-fflags", "+bitexact", "-flags", "+bitexact", "-map_metadata", "-1"]

# grey level of frame n in the "counter" pattern: 16 + 2*n (wraps after 110 frames)
COUNTER_STEP = 2


def counter_frame_index(luma: float) -> float:
    """Invert the "counter" pattern: take the mean luma (0-255) of a decoded frame, return the frame number."""
    return (luma - 16.0) / COUNTER_STEP


def _run(args: list[str]) -> None:
    """Run one ffmpeg command; raise RuntimeError with ffmpeg's stderr on failure."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args], capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')[-2000:]}")


def make_video(
    path: str | Path,
    *,
    duration: float = 10.0,
    size: tuple[int, int] = (320, 240),
    fps: int = 25,
    audio: bool = True,
    sample_rate: int = 44100,
    channels: int = 2,
    freq: int = 440,
    pattern: str = "testsrc2",
    faststart: bool = False,
    audio_offset: float = 0.0,
) -> Path:
    """Write a synthetic video; the container and codecs follow the suffix (.mp4 .mkv .avi .flv).

        ``pattern`` is ``testsrc2``, ``testsrc`` or ``counter`` (grey frames, luma 16 + 2*frame_number, so
        ``counter_frame_index`` recovers which frame a decoded image is). ``faststart`` puts the mp4 index
        first (like most web videos), so a truncated copy still opens. ``audio_offset`` starts the audio stream
    that many seconds after the video (as in some real files). Returns the path.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _VIDEO_CODECS:
        raise ValueError(f"make_video: unsupported suffix {suffix!r}; use one of {sorted(_VIDEO_CODECS)}")
    vcodec, acodec, forced_rate = _VIDEO_CODECS[suffix]
    w, h = size
    if pattern == "counter":
        source = (
            f"nullsrc=s={w}x{h}:r={fps}:d={duration},format=yuv420p,"
            f"geq=lum='16+mod({COUNTER_STEP}*N,220)':cb=128:cr=128"
        )
        vcodec = [*vcodec, "-qp", "0"] if "libx264" in vcodec else [*vcodec[:-2], "-q:v", "1"]
    elif pattern in ("testsrc", "testsrc2"):
        source = f"{pattern}=size={w}x{h}:rate={fps}:duration={duration}"
    else:
        raise ValueError(f"make_video: unknown pattern {pattern!r} (testsrc, testsrc2, counter)")
    args = ["-f", "lavfi", "-i", source]
    if audio:
        rate = forced_rate or sample_rate
        args += ["-itsoffset", str(audio_offset)] if audio_offset else []
        args += ["-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate={rate}:duration={duration}"]
        args += ["-map", "0:v", "-map", "1:a", *vcodec, *acodec, "-ac", str(channels)]
    else:
        args += ["-map", "0:v", *vcodec]
    if faststart and suffix == ".mp4":
        args += ["-movflags", "+faststart"]
    path.parent.mkdir(parents=True, exist_ok=True)
    _run([*args, *_BITEXACT, str(path)])
    return path


def make_audio(
    path: str | Path, *, duration: float = 10.0, sample_rate: int = 16000, channels: int = 1, freq: int = 440
) -> Path:
    """Write a sine tone as .wav (16-bit PCM), .mp3 or .flac; return the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _AUDIO_CODECS:
        raise ValueError(f"make_audio: unsupported suffix {suffix!r}; use one of {sorted(_AUDIO_CODECS)}")
    source = f"sine=frequency={freq}:sample_rate={sample_rate}:duration={duration}"
    path.parent.mkdir(parents=True, exist_ok=True)
    _run(["-f", "lavfi", "-i", source, *_AUDIO_CODECS[suffix], "-ac", str(channels), *_BITEXACT, str(path)])
    return path


def make_image(path: str | Path, size: tuple[int, int] = (320, 240), seed: int = 0) -> Path:
    """Write a deterministic RGB picture (gradient plus seeded rectangles) as .jpg or .png; return the path."""
    path = Path(path)
    w, h = size
    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(np.linspace(0, 255, w), np.linspace(0, 255, h))
    arr = np.stack([xs, ys, np.full_like(xs, (seed * 37) % 256)], axis=-1).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x1, y1 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        x2, y2 = int(rng.integers(x1 + 1, w)), int(rng.integers(y1 + 1, h))
        draw.rectangle([x1, y1, x2, y2], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        img.save(path, format="JPEG", quality=92)
    elif suffix == ".png":
        img.save(path, format="PNG")
    else:
        raise ValueError(f"make_image: unsupported suffix {suffix!r} (.jpg, .png)")
    return path


def make_mask(
    path: str | Path,
    size: tuple[int, int],
    shapes: list[tuple],
    value: int | tuple[int, int, int] = 255,
    mode: str = "L",
) -> Path:
    """Write a mask PNG of ``size`` (w, h) with a zero background and the given shapes drawn on it.

    ``shapes``: tuples ``(kind, (x1, y1, x2, y2))`` or ``(kind, box, value)`` with kind ``rect`` or
    ``ellipse``; box corners are inclusive pixels (Pillow's convention). ``value`` is the default fill
    (an int for mode ``L``/``1``, an (r, g, b) tuple for ``RGB``). Returns the path.
    """
    if mode not in ("L", "RGB", "1"):
        raise ValueError(f"make_mask: mode must be L, RGB or 1, not {mode!r}")
    img = Image.new(mode, size, 0)
    draw = ImageDraw.Draw(img)
    for shape in shapes:
        kind, box = shape[0], shape[1]
        fill = shape[2] if len(shape) > 2 else value
        if mode == "1":
            fill = 1 if fill else 0
        if kind == "rect":
            draw.rectangle(list(box), fill=fill)
        elif kind == "ellipse":
            draw.ellipse(list(box), fill=fill)
        else:
            raise ValueError(f"make_mask: unknown shape {kind!r} (rect, ellipse)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")
    return path


def truncate_file(path: str | Path, keep_fraction: float) -> int:
    """Cut a file in place to its first ``keep_fraction`` of bytes (for corrupt-input tests); return the new size."""
    if not 0.0 <= keep_fraction <= 1.0:
        raise ValueError(f"truncate_file: keep_fraction must be in [0, 1], not {keep_fraction}")
    path = Path(path)
    data = path.read_bytes()
    keep = int(len(data) * keep_fraction)
    path.write_bytes(data[:keep])
    return keep
