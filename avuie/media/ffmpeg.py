"""The ffmpeg media layer: probe a file, cut a clip (N frames + 16 kHz mono audio) in one ffmpeg process.

Commands are built with ``ffmpeg-python`` and run through :func:`run_ffmpeg` (the one place that starts
processes, so it can be timed or counted). Outputs are deterministic (bitexact flags, no metadata): a rebuild
gives the same bytes, hence the same content hash. Bad inputs raise :class:`MediaError` with a ``reason``.
The picture helpers (images, masks, mask geometry, the PASCAL-VOC palette) live in avuie/media/images.py.

Times are seconds. Sizes are ``(width, height)``. Frame ``i`` of a cut ``[start, start + d)`` with ``N``
frames is the picture shown at ``start + (i + 0.5) * d / N``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

REASONS = (
    "missing_file",
    "empty_file",
    "corrupt_media",
    "no_video_stream",
    "no_audio_stream",
    "too_short",
    "ffmpeg_failed",
)
# stderr lines that mean the input itself is damaged (not our command)
_CORRUPT_MARKERS = (
    "invalid data found when processing input",
    "moov atom not found",
    "partial file",
    "packet corrupt",
    "corrupt input packet",
    "error reading header",
    "could not find codec parameters",
    "end of file",
)
_BITEXACT_OUT = {"fflags": "+bitexact", "map_metadata": -1}
DEFAULT_TIMEOUT_S = 600.0


class MediaError(Exception):
    """A media file could not be used; ``reason`` is one of ``REASONS``, ``detail`` says why in words."""

    def __init__(self, reason: str, detail: str, path: str | Path | None = None):
        if reason not in REASONS:
            raise ValueError(f"unknown MediaError reason {reason!r}")
        self.reason, self.detail, self.path = reason, detail, str(path) if path is not None else None
        super().__init__(f"{reason}: {detail}" + (f" ({path})" if path is not None else ""))


@dataclass(frozen=True)
class MediaInfo:
    """What a file holds (first video stream, first audio stream). Duration in s (centisecond precision)."""

    duration: float | None
    fps: float | None
    width: int | None
    height: int | None
    has_video: bool
    has_audio: bool
    audio_sample_rate: int | None
    audio_channels: int | None
    video_codec: str | None
    audio_codec: str | None
    format: str | None


@dataclass
class Clip:
    """A cut of a video: JPEG frames (``size``), their times, and the WAV audio of ``[start, start+duration)``."""

    frames: list[bytes] = field(repr=False)
    frame_times: list[float]
    audio: bytes | None = field(repr=False)
    audio_num_samples: int
    start: float
    duration: float
    size: tuple[int, int]
    original_size: tuple[int, int]
    fps: float | None
    source_duration: float
    sample_rate: int
    clamped: bool = False


@dataclass
class AudioCut:
    """A cut of an audio track as 16-bit PCM mono WAV bytes, with what was measured."""

    wav: bytes = field(repr=False)
    num_samples: int
    start: float
    duration: float
    sample_rate: int
    original_sample_rate: int | None
    original_channels: int | None
    source_duration: float
    clamped: bool = False


# ---------------------------------------------------------------- executables and the process runner


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Return the ffmpeg binary: the system ``ffmpeg`` if on PATH, else imageio-ffmpeg's bundled one."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - imageio-ffmpeg is a hard dependency
        raise RuntimeError(
            "no ffmpeg on PATH and imageio-ffmpeg is not installed: pip install imageio-ffmpeg"
        ) from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


@lru_cache(maxsize=1)
def ffprobe_exe() -> str | None:
    """Return the ``ffprobe`` binary if one is on PATH, else None (probing then parses ffmpeg's stderr)."""
    return shutil.which("ffprobe")


def run_ffmpeg(args: list[str], timeout: float = DEFAULT_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run one ffmpeg/ffprobe command line (``args[0]`` is the binary); return the completed process (bytes)."""
    try:
        return subprocess.run(args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise MediaError("ffmpeg_failed", f"ffmpeg timed out after {timeout:.0f} s") from exc


def check_file(path: Path) -> None:
    """Raise MediaError("missing_file" or "empty_file") unless `path` is a non-empty regular file."""
    if not path.exists():
        raise MediaError("missing_file", "file does not exist", path)
    if not path.is_file():
        raise MediaError("missing_file", "path is not a regular file", path)
    if path.stat().st_size == 0:
        raise MediaError("empty_file", "file has zero bytes", path)


def _stderr_reason(stderr: str) -> str:
    low = stderr.lower()
    return "corrupt_media" if any(m in low for m in _CORRUPT_MARKERS) else "ffmpeg_failed"


def _tail(stderr: str, n: int = 6) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


# ---------------------------------------------------------------- probing


def _round_duration(seconds: float) -> float:
    """Round to centiseconds exactly as ffmpeg prints ``Duration:`` (so ffprobe and ffmpeg agree)."""
    us = round(seconds * 1_000_000)
    return ((us + 5000) // 10000) / 100


_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "3.0(back)": 3, "4.0": 4, "quad": 4, "quad(side)": 4}
_CHANNELS |= {
    "4.1": 5,
    "5.0": 5,
    "5.0(side)": 5,
    "5.1": 6,
    "5.1(side)": 6,
    "6.0": 6,
    "6.1": 7,
    "7.0": 7,
    "7.1": 8,
}
_STREAM_RE = re.compile(r"Stream #0:\d+(?:\[0x[0-9a-f]+\])?(?:\([^)]*\))?: (Video|Audio): (.*)")


def _parse_fps(text: str) -> float | None:
    for unit in ("fps", "tbr"):
        m = re.search(r"([\d.]+)(k?) " + unit, text)
        if m:
            value = float(m.group(1)) * (1000 if m.group(2) else 1)
            return round(value, 2) if value > 0 else None
    return None


def parse_ffmpeg_header(stderr: str) -> MediaInfo | None:
    """Parse the ``Input #0`` block that ``ffmpeg -i`` prints; return None when there is no such block."""
    m = re.search(r"Input #0, (.+?), from ", stderr)
    if not m:
        return None
    info: dict = {"format": m.group(1), "duration": None, "has_video": False, "has_audio": False}
    d = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", stderr)
    if d:
        info["duration"] = _round_duration(int(d.group(1)) * 3600 + int(d.group(2)) * 60 + float(d.group(3)))
    for kind, rest in _STREAM_RE.findall(stderr):
        if kind == "Video" and not info["has_video"] and "(attached pic)" not in rest:
            size = re.search(r"(?:^|[ ,])(\d{1,5})x(\d{1,5})(?=$|[ ,\[])", rest)
            info |= {"has_video": True, "video_codec": rest.split()[0].rstrip(","), "fps": _parse_fps(rest)}
            info |= {"width": int(size.group(1)), "height": int(size.group(2))} if size else {}
        elif kind == "Audio" and not info["has_audio"]:
            a = re.search(r"(\d+) Hz, ([^,]+)", rest)
            layout = a.group(2).strip() if a else ""
            n = re.match(r"(\d+) channels", layout)
            channels = int(n.group(1)) if n else _CHANNELS.get(layout, _CHANNELS.get(layout.split("(")[0]))
            info |= {
                "has_audio": True,
                "audio_codec": rest.split()[0].rstrip(","),
                "audio_channels": channels,
            }
            info |= {"audio_sample_rate": int(a.group(1))} if a else {}
    keys = MediaInfo.__dataclass_fields__
    return MediaInfo(**{k: info.get(k) for k in keys})


def parse_ffprobe_json(text: str) -> MediaInfo:
    """Turn ``ffprobe -print_format json -show_format -show_streams`` output into a MediaInfo."""
    data = json.loads(text)
    fmt = data.get("format", {})
    streams = data.get("streams", [])
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
        ),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    duration = _round_duration(float(fmt["duration"])) if fmt.get("duration") not in (None, "N/A") else None
    fps = None
    if video:
        for key in ("avg_frame_rate", "r_frame_rate"):
            num, _, den = str(video.get(key, "0/0")).partition("/")
            if float(den or 1) > 0 and float(num) > 0:
                fps = round(float(num) / float(den or 1), 2)
                break
    return MediaInfo(
        duration=duration,
        fps=fps,
        width=video.get("width") if video else None,
        height=video.get("height") if video else None,
        has_video=video is not None,
        has_audio=audio is not None,
        audio_sample_rate=int(audio["sample_rate"]) if audio and audio.get("sample_rate") else None,
        audio_channels=audio.get("channels") if audio else None,
        video_codec=video.get("codec_name") if video else None,
        audio_codec=audio.get("codec_name") if audio else None,
        format=fmt.get("format_name"),
    )


def probe(path: str | Path) -> MediaInfo:
    """Read a media file's header (ffprobe if present, else ``ffmpeg -i`` stderr); return its MediaInfo.

    Raises MediaError: ``missing_file``, ``empty_file``, ``corrupt_media`` (ffmpeg cannot open it).
    """
    path = Path(path).absolute()
    check_file(path)
    probe_bin = ffprobe_exe()
    if probe_bin:
        cmd = [probe_bin, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
        proc = run_ffmpeg(cmd)
        stderr = proc.stderr.decode(errors="replace")
        if proc.returncode != 0 or not proc.stdout.strip():
            raise MediaError(
                _stderr_reason(stderr) if stderr else "corrupt_media", f"ffprobe: {_tail(stderr)}", path
            )
        info = parse_ffprobe_json(proc.stdout.decode(errors="replace"))
    else:
        proc = run_ffmpeg([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)])
        stderr = proc.stderr.decode(errors="replace")
        parsed = parse_ffmpeg_header(stderr)
        if parsed is None:
            raise MediaError(_stderr_reason(stderr), f"ffmpeg cannot open the file: {_tail(stderr, 3)}", path)
        info = parsed
    if not info.has_video and not info.has_audio:
        raise MediaError("corrupt_media", "no audio or video stream found", path)
    return info


# ---------------------------------------------------------------- cutting


def _plan_cut(path: Path, info: MediaInfo, start: float, duration: float | None, min_duration: float):
    if info.duration is None:
        raise MediaError("corrupt_media", "the container does not state a duration", path)
    if start < 0:
        raise ValueError(f"start must be >= 0, not {start}")
    available = info.duration - start
    if duration is not None and duration <= 0:
        raise ValueError(f"duration must be > 0, not {duration}")
    wanted = available if duration is None else duration
    cut = round(min(wanted, available), 6)
    if cut < min_duration:
        raise MediaError(
            "too_short", f"only {max(available, 0):.3f} s from {start:.3f} s (need >= {min_duration} s)", path
        )
    return cut, cut < wanted - 1e-6


def _audio_chain(stream, sample_rate: int, num_samples: int):
    """16-bit mono at ``sample_rate``, padded with silence / trimmed to exactly ``num_samples``."""
    return (
        stream.filter("aresample", sample_rate, first_pts=0)
        .filter("aformat", sample_fmts="s16", channel_layouts="mono")
        .filter("apad", whole_len=num_samples)
        .filter("atrim", end_sample=num_samples)
    )


def _wav_output(stream, target: Path, sample_rate: int):
    import ffmpeg

    return ffmpeg.output(
        stream,
        str(target),
        acodec="pcm_s16le",
        ar=sample_rate,
        f="wav",
        **_BITEXACT_OUT,
        **{"flags:a": "+bitexact"},
    )


def _run_graph(outputs: list, path: Path) -> str:
    """Compile the outputs into one command, run it once, raise on failure; return stderr text."""
    import ffmpeg

    args = ffmpeg.merge_outputs(*outputs).compile(cmd=ffmpeg_exe())
    proc = run_ffmpeg([args[0], "-hide_banner", "-nostdin", "-y", *args[1:]])
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise MediaError(
            _stderr_reason(stderr), f"ffmpeg exited with {proc.returncode}: {_tail(stderr)}", path
        )
    if "partial file" in stderr.lower():
        raise MediaError("corrupt_media", f"truncated file: {_tail(stderr, 3)}", path)
    return stderr


def _seek_args(start: float, cut: float) -> dict[str, str]:
    """Input options for a cut; no `-ss` at 0, since some demuxers (FLV) fail to seek to 0 and jump elsewhere."""
    args = {"t": f"{cut:.6f}"}
    if start > 0:
        args["ss"] = f"{start:.6f}"
    return args


def extract_clip(
    path: str | Path,
    *,
    start: float = 0.0,
    duration: float | None = None,
    num_frames: int = 10,
    size: tuple[int, int] = (224, 224),
    with_audio: bool = True,
    sample_rate: int = 16000,
    require_audio: bool = True,
    min_duration: float = 0.2,
    info: MediaInfo | None = None,
    jpeg_quality: int = 2,
) -> Clip:
    """Cut ``[start, start + duration)`` of a video: ``num_frames`` JPEG frames resized to ``size`` and the audio.

    One ffmpeg process decodes the cut once and writes every frame and the WAV (16-bit mono ``sample_rate``).
    ``duration=None`` means to the end; a cut past the end is clamped (``Clip.clamped``) unless less than
    ``min_duration`` remains (``too_short``). Pass ``info`` (from :func:`probe`) to skip the header read,
    otherwise one light ``probe`` runs first. ``jpeg_quality`` is ffmpeg's ``-q:v`` (2 = best).
    Raises MediaError: missing_file, empty_file, corrupt_media, no_video_stream, no_audio_stream, too_short,
    ffmpeg_failed.
    """
    import ffmpeg

    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, not {num_frames}")
    path = Path(path).absolute()
    check_file(path)
    info = info or probe(path)
    if not info.has_video:
        raise MediaError("no_video_stream", "the file has no video stream", path)
    if with_audio and require_audio and not info.has_audio:
        raise MediaError("no_audio_stream", "the video has no audio stream", path)
    cut, clamped = _plan_cut(path, info, start, duration, min_duration)
    want_audio = with_audio and info.has_audio
    num_samples = round(cut * sample_rate)
    w, h = size
    with tempfile.TemporaryDirectory(prefix="avuie_clip_") as tmp:
        tmpdir = Path(tmp)
        src = ffmpeg.input(str(path), **_seek_args(start, cut))
        video = (
            src["v:0"]
            .filter("setpts", f"PTS-{0.5 * cut / num_frames:.6f}/TB")
            .filter("fps", fps=f"{num_frames}/{cut:.6f}", round="up", start_time=0)
            .filter("scale", w=w, h=h, flags="bicubic", out_range="full")
            .filter("setsar", 1)
            .filter("format", "yuvj420p")
        )
        frame_opts = {"frames:v": num_frames, "q:v": jpeg_quality, "flags:v": "+bitexact"}
        outputs = [
            ffmpeg.output(
                video, str(tmpdir / "f_%04d.jpg"), vcodec="mjpeg", f="image2", **frame_opts, **_BITEXACT_OUT
            )
        ]
        if want_audio:
            outputs.append(
                _wav_output(_audio_chain(src["a:0"], sample_rate, num_samples), tmpdir / "a.wav", sample_rate)
            )
        stderr = _run_graph(outputs, path)
        frames = [p.read_bytes() for p in sorted(tmpdir.glob("f_*.jpg"))]
        if len(frames) < num_frames:
            raise MediaError(
                "corrupt_media", f"decoded {len(frames)} of {num_frames} frames: {_tail(stderr, 3)}", path
            )
        audio = (tmpdir / "a.wav").read_bytes() if want_audio else None
    return Clip(
        frames=frames,
        frame_times=[round(start + (i + 0.5) * cut / num_frames, 6) for i in range(num_frames)],
        audio=audio,
        audio_num_samples=num_samples if want_audio else 0,
        start=float(start),
        duration=cut,
        size=(w, h),
        original_size=(info.width or 0, info.height or 0),
        fps=info.fps,
        source_duration=info.duration or 0.0,
        sample_rate=sample_rate,
        clamped=clamped,
    )


def extract_audio(
    path: str | Path,
    *,
    start: float = 0.0,
    duration: float | None = None,
    sample_rate: int = 16000,
    min_duration: float = 0.2,
    info: MediaInfo | None = None,
) -> AudioCut:
    """Cut ``[start, start + duration)`` of a file's first audio track to 16-bit mono WAV at ``sample_rate``.

    Works on audio files (wav, mp3, flac) and on videos (flv, mp4...). ``duration=None`` means to the end;
    clamping and errors as in :func:`extract_clip` (``no_audio_stream`` when there is no audio).
    """
    import ffmpeg

    path = Path(path).absolute()
    check_file(path)
    info = info or probe(path)
    if not info.has_audio:
        raise MediaError("no_audio_stream", "the file has no audio stream", path)
    cut, clamped = _plan_cut(path, info, start, duration, min_duration)
    num_samples = round(cut * sample_rate)
    with tempfile.TemporaryDirectory(prefix="avuie_audio_") as tmp:
        target = Path(tmp) / "a.wav"
        src = ffmpeg.input(str(path), **_seek_args(start, cut))
        _run_graph(
            [_wav_output(_audio_chain(src["a:0"], sample_rate, num_samples), target, sample_rate)], path
        )
        wav = target.read_bytes()
    return AudioCut(
        wav=wav,
        num_samples=num_samples,
        start=float(start),
        duration=cut,
        sample_rate=sample_rate,
        original_sample_rate=info.audio_sample_rate,
        original_channels=info.audio_channels,
        source_duration=info.duration or 0.0,
        clamped=clamped,
    )


def audio_windows(
    total_seconds: float, n: int, window: float, stride: float | None = None
) -> list[list[float]]:
    """Return ``n`` windows ``[start, end]`` of ``window`` s inside ``[0, total_seconds]``.

    With ``stride`` the k-th window starts at ``k * stride`` (MUSIC-AVQA: n=10, window=2, stride=6); without,
    the windows are spread evenly from 0 to the end (10 s clip, n=10, window=1: ten 1 s segments; emotion:
    n=1, window=4; arig: n=5, window=1). Windows never pass the end: they are shifted back (and shortened
    only when the audio is shorter than one window). Values are rounded to milliseconds.
    """
    if n < 1 or window <= 0 or total_seconds <= 0:
        raise ValueError(
            f"audio_windows needs n >= 1, window > 0, total > 0 (got {n}, {window}, {total_seconds})"
        )
    width = min(window, total_seconds)
    if stride is None:
        stride = (total_seconds - width) / (n - 1) if n > 1 else 0.0
    out = []
    for k in range(n):
        s = min(k * stride, total_seconds - width)
        out.append([round(s, 3), round(s + width, 3)])
    return out
