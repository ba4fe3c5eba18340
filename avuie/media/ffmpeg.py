"""The ffmpeg media layer: probe a file, cut a clip (N frames + 16 kHz mono audio) in one ffmpeg process.

Commands are built with ``ffmpeg-python`` and run through :func:`run_ffmpeg` (the one place that starts
processes, so it can be timed or counted). Outputs are deterministic (bitexact flags, no metadata): a rebuild
gives the same bytes, hence the same content hash. Bad inputs raise :class:`MediaError` with a ``reason``.
The picture helpers (images, masks, mask geometry, the PASCAL-VOC palette) live in avuie/media/images.py.

Times are seconds. Sizes are ``(width, height)``. Frame ``i`` of a cut ``[start, start + d)`` with ``N``
frames is the picture shown at ``start + (i + 0.5) * d / N``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from avuie.media.files import REASONS, MediaError, check_media_file  # noqa: F401 - re-exported
from avuie.media.info import MediaInfo, parse_ffmpeg_header, parse_ffprobe_json

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

TIMEOUT_ENV = "AVUIE_FFMPEG_TIMEOUT"


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


def default_timeout() -> float:
    """Seconds one ffmpeg call may run: ``$AVUIE_FFMPEG_TIMEOUT`` when set (> 0), else ``DEFAULT_TIMEOUT_S``."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV}={text!r} is not a number of seconds") from None
    if not value > 0:
        raise ValueError(f"{TIMEOUT_ENV}={text!r} must be > 0")
    return value


def run_ffmpeg(args: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run one ffmpeg/ffprobe command line (``args[0]`` is the binary); return the completed process (bytes).

    ``timeout`` (default :func:`default_timeout`) bounds the whole run: past it the process is killed and
    MediaError ``timeout`` is raised.
    """
    timeout = default_timeout() if timeout is None else timeout
    try:
        return subprocess.run(args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise MediaError("timeout", f"ffmpeg ran past its {timeout:g} s timeout and was stopped") from exc


def _stderr_reason(stderr: str) -> str:
    low = stderr.lower()
    return "corrupt_media" if any(m in low for m in _CORRUPT_MARKERS) else "ffmpeg_failed"


def _tail(stderr: str, n: int = 6) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


# ---------------------------------------------------------------- probing


def probe(path: str | Path) -> MediaInfo:
    """Read a media file's header (ffprobe if present, else ``ffmpeg -i`` stderr); return its MediaInfo.

    Raises MediaError: ``missing_file``, ``empty_file``, ``corrupt_media`` (ffmpeg cannot open it).
    """
    path = Path(path).absolute()
    check_media_file(path)
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


def _video_info(path: Path, info: MediaInfo | None, need_audio: bool) -> MediaInfo:
    """The file's MediaInfo (probed unless given); MediaError when it lacks a stream the cut needs."""
    info = info or probe(path)
    if not info.has_video:
        raise MediaError("no_video_stream", "the file has no video stream", path)
    if need_audio and not info.has_audio:
        raise MediaError("no_audio_stream", "the video has no audio stream", path)
    return info


def _read_frames(tmpdir: Path, num_frames: int, stderr: str, path: Path) -> list[bytes]:
    """The JPEG frames ffmpeg wrote into tmpdir, in order; MediaError when fewer than asked were decoded."""
    frames = [p.read_bytes() for p in sorted(tmpdir.glob("f_*.jpg"))]
    if len(frames) < num_frames:
        raise MediaError(
            "corrupt_media", f"decoded {len(frames)} of {num_frames} frames: {_tail(stderr, 3)}", path
        )
    return frames


def _frames_output(src, cut: float, num_frames: int, size: tuple[int, int], jpeg_quality: int, pattern: Path):
    """The ffmpeg-python output writing `num_frames` JPEGs at the centres of `num_frames` equal parts of the cut."""
    import ffmpeg

    w, h = size
    video = (
        src["v:0"]
        .filter("setpts", f"PTS-{0.5 * cut / num_frames:.6f}/TB")
        .filter("fps", fps=f"{num_frames}/{cut:.6f}", round="up", start_time=0)
        .filter("scale", w=w, h=h, flags="bicubic", out_range="full")
        .filter("setsar", 1)
        .filter("format", "yuvj420p")
    )
    frame_opts = {"frames:v": num_frames, "q:v": jpeg_quality, "flags:v": "+bitexact"}
    return ffmpeg.output(video, str(pattern), vcodec="mjpeg", f="image2", **frame_opts, **_BITEXACT_OUT)


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
    check_media_file(path)
    info = _video_info(path, info, with_audio and require_audio)
    cut, clamped = _plan_cut(path, info, start, duration, min_duration)
    want_audio = with_audio and info.has_audio
    num_samples = round(cut * sample_rate)
    with tempfile.TemporaryDirectory(prefix="avuie_clip_") as tmp:
        tmpdir = Path(tmp)
        src = ffmpeg.input(str(path), **_seek_args(start, cut))
        outputs = [_frames_output(src, cut, num_frames, size, jpeg_quality, tmpdir / "f_%04d.jpg")]
        if want_audio:
            outputs.append(
                _wav_output(_audio_chain(src["a:0"], sample_rate, num_samples), tmpdir / "a.wav", sample_rate)
            )
        stderr = _run_graph(outputs, path)
        frames = _read_frames(tmpdir, num_frames, stderr, path)
        audio = (tmpdir / "a.wav").read_bytes() if want_audio else None
    return Clip(
        frames=frames,
        frame_times=[round(start + (i + 0.5) * cut / num_frames, 6) for i in range(num_frames)],
        audio=audio,
        audio_num_samples=num_samples if want_audio else 0,
        start=float(start),
        duration=cut,
        size=(size[0], size[1]),
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
    check_media_file(path)
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
