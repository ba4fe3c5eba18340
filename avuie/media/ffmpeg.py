"""The ffmpeg media layer: cut a clip (N frames + 16 kHz mono audio) in one ffmpeg process, whose own stderr
gives the file's header (no probe process before it); read a header alone (:func:`read_header`, :func:`probe`).

Commands are built with ``ffmpeg-python`` (avuie/media/graph.py) and run through :func:`run_ffmpeg` (the one
place that starts processes, so it can be timed or counted; every run has a deadline). Outputs are deterministic (bitexact flags, no metadata): a rebuild
gives the same bytes, hence the same content hash. Bad inputs raise :class:`MediaError` with a ``reason``.
The picture helpers (images, masks, mask geometry, the PASCAL-VOC palette) live in avuie/media/images.py.

Times are seconds. Sizes are ``(width, height)``. Frame ``i`` of a cut ``[start, start + d)`` with ``N``
frames is the picture shown at ``start + (i + 0.5) * d / N`` (``d`` the window asked when the file is at
most ``graph.SLACK_S`` shorter, see ``_cut``).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import threading
import wave
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from avuie.media import graph
from avuie.media.files import REASONS, MediaError, check_media_file  # noqa: F401 - re-exported
from avuie.media.graph import SLACK_S, Plan, Want, check_request
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
    audio_sample_rate: int | None = None  # the source's audio, as its header states
    audio_channels: int | None = None


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


def _run_outputs(outputs: list) -> tuple[int, str]:
    """Compile the outputs into one command and run it once; return (exit status, stderr text)."""
    import ffmpeg

    args = ffmpeg.merge_outputs(*outputs).compile(cmd=ffmpeg_exe())
    proc = run_ffmpeg([args[0], "-hide_banner", "-nostdin", "-y", *args[1:]])
    return proc.returncode, proc.stderr.decode(errors="replace")


def _failure(code: int, stderr: str, path: Path) -> MediaError | None:
    """The MediaError of a finished cut run (non-zero exit, or a truncated input), or None when it went well."""
    if code != 0:
        return MediaError(_stderr_reason(stderr), f"ffmpeg exited with {code}: {_tail(stderr)}", path)
    if "partial file" in stderr.lower():
        return MediaError("corrupt_media", f"truncated file: {_tail(stderr, 3)}", path)
    return None


def _cut(path: Path, want: Want, info: MediaInfo | None, build) -> tuple[MediaInfo, Plan, str]:
    """Run a cut in one ffmpeg process; return the header, the plan that ran and ffmpeg's stderr.

    With ``info`` unknown the cut runs as asked and the header is read from that same run's stderr: no
    separate header process. Only when the header changes the plan (the file is shorter than the window by
    more than ``want.slack``, or has no audio to take) does a second run follow. A smaller shortfall keeps the
    run (the plan says so in ``taken``). ``build(plan, fps)`` makes the outputs of a plan.
    """
    if info is not None:
        plan = want.plan(path, info)
        code, stderr = _run_outputs(build(plan, info.fps))
        if (error := _failure(code, stderr, path)) is not None:
            raise error
        return info, plan, stderr
    guess = Plan(round(float(want.duration or 0.0), 6), False, want.take_audio)
    code, stderr = _run_outputs(build(guess, None))
    header = parse_ffmpeg_header(stderr)
    if header is None:
        raise MediaError(_stderr_reason(stderr), f"ffmpeg cannot open the file: {_tail(stderr, 3)}", path)
    real = want.plan(path, header)
    if real.audio != guess.audio or guess.cut - real.cut > want.slack:
        return _cut(path, want, header, build)  # clamped, or no audio to take: once more, header known
    if (error := _failure(code, stderr, path)) is not None:
        raise error
    return header, replace(real, taken=guess.cut if real.clamped else None), stderr


def read_header(path: str | Path) -> MediaInfo:
    """The header of a media file as ``ffmpeg -i`` prints it (the bundled ffmpeg, no ffprobe), cached per
    (path, size, modification time), so the several records cut from one file read it once.

    Raises MediaError like :func:`probe`.
    """
    path = Path(path).absolute()
    check_media_file(path)
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _HEADERS_LOCK:  # build workers are threads
        if key in _HEADERS:
            return _HEADERS[key]
    proc = run_ffmpeg([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)])
    stderr = proc.stderr.decode(errors="replace")
    info = parse_ffmpeg_header(stderr)
    if info is None:
        raise MediaError(_stderr_reason(stderr), f"ffmpeg cannot open the file: {_tail(stderr, 3)}", path)
    with _HEADERS_LOCK:
        if len(_HEADERS) >= _HEADER_CACHE_SIZE:
            _HEADERS.pop(next(iter(_HEADERS)))
        _HEADERS[key] = info
    return info


_HEADER_CACHE_SIZE = 256
_HEADERS: dict = {}
_HEADERS_LOCK = threading.Lock()


def _read_frames(tmpdir: Path, num_frames: int, stderr: str, path: Path) -> list[bytes]:
    """The JPEG frames ffmpeg wrote into tmpdir, in order; MediaError when fewer than asked were decoded."""
    frames = [p.read_bytes() for p in sorted(tmpdir.glob("f_*.jpg"))]
    if len(frames) < num_frames:
        raise MediaError(
            "corrupt_media", f"decoded {len(frames)} of {num_frames} frames: {_tail(stderr, 3)}", path
        )
    return frames


def _open(
    path: str | Path, start: float, duration: float | None, info: MediaInfo | None
) -> tuple[Path, MediaInfo | None]:
    """Check a request and its file (cheap, nothing decoded); return the absolute path and the header when it
    is needed up front (a cut to the end needs the duration: read once per file) or was given."""
    check_request(start, duration)
    path = Path(path).absolute()
    check_media_file(path)
    return path, read_header(path) if info is None and duration is None else info


def _wav_of(path: Path, plan: Plan, sample_rate: int) -> bytes:
    """The WAV bytes ffmpeg wrote, cut to the plan's samples when its window ran past the file (the tail
    past ``plan.cut`` is the silence padded in)."""
    data = path.read_bytes()
    if plan.taken is None:
        return data
    with wave.open(io.BytesIO(data)) as src:
        params, pcm = src.getparams(), src.readframes(round(plan.cut * sample_rate))
    out = io.BytesIO()
    with wave.open(out, "wb") as dst:
        dst.setparams(params)
        dst.writeframes(pcm)
    return out.getvalue()


def _clear(tmpdir: Path) -> Path:
    """Remove what an earlier run of this cut wrote into its own temporary folder; return the folder."""
    for p in tmpdir.iterdir():
        p.unlink()
    return tmpdir


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
    threads: int | None = None,
) -> Clip:
    """Cut ``[start, start + duration)`` of a video: ``num_frames`` JPEG frames resized to ``size`` and the audio.

    One ffmpeg process writes every frame and the WAV (16-bit mono ``sample_rate``) and prints the header
    this function reads the facts from (see ``_cut``). Frames close together come from one pass over the cut;
    frames far apart from a seek to each (avuie/media/graph.py). ``duration=None`` means to the end (the
    header is then read first, once per file: :func:`read_header`). A cut past the end is clamped
    (``Clip.clamped``) unless less than ``min_duration`` remains (``too_short``). ``info`` (from
    :func:`probe`) skips the header read. ``jpeg_quality`` is ffmpeg's ``-q:v`` (2 = best). ``threads`` caps
    the decoder's threads (None: ffmpeg's own choice; a build with several workers passes fewer).
    Raises MediaError: missing_file, empty_file, not_a_file, unreadable, name_too_long, corrupt_media,
    no_video_stream, no_audio_stream, too_short, timeout, ffmpeg_failed.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, not {num_frames}")
    path, info = _open(path, start, duration, info)
    slack = min(SLACK_S, 0.5 * duration / num_frames) if duration else 0.0  # frames stay inside the file
    want = Want(start, duration, min_duration, True, with_audio and require_audio, with_audio, slack)
    with tempfile.TemporaryDirectory(prefix="avuie_clip_") as tmp:

        def build(plan: Plan, fps: float | None) -> list:
            rate = sample_rate if plan.audio else None
            args = (start, plan.cut, num_frames, size, jpeg_quality, rate, fps, threads)
            return graph.clip_outputs(path, _clear(Path(tmp)), *args)

        info, plan, stderr = _cut(path, want, info, build)
        frames = _read_frames(Path(tmp), num_frames, stderr, path)
        audio = _wav_of(Path(tmp) / "a.wav", plan, sample_rate) if plan.audio else None
    return Clip(
        frames=frames,
        frame_times=[round(start + (i + 0.5) * plan.span / num_frames, 6) for i in range(num_frames)],
        audio=audio,
        audio_num_samples=round(plan.cut * sample_rate) if plan.audio else 0,
        start=float(start),
        duration=plan.cut,
        size=(size[0], size[1]),
        original_size=(info.width or 0, info.height or 0),
        fps=info.fps,
        source_duration=info.duration or 0.0,
        sample_rate=sample_rate,
        clamped=plan.clamped,
        audio_sample_rate=info.audio_sample_rate,
        audio_channels=info.audio_channels,
    )


def extract_audio(
    path: str | Path,
    *,
    start: float = 0.0,
    duration: float | None = None,
    sample_rate: int = 16000,
    min_duration: float = 0.2,
    info: MediaInfo | None = None,
    threads: int | None = None,
) -> AudioCut:
    """Cut ``[start, start + duration)`` of a file's first audio track to 16-bit mono WAV at ``sample_rate``.

    Works on audio files (wav, mp3, flac) and on videos (flv, mp4...). One ffmpeg process, the header read
    from its own output as in :func:`extract_clip`; ``duration=None`` means to the end; clamping and errors
    as in :func:`extract_clip` (``no_audio_stream`` when there is no audio); ``threads`` as there.
    """
    path, info = _open(path, start, duration, info)
    want = Want(start, duration, min_duration, False, True, True, SLACK_S)
    with tempfile.TemporaryDirectory(prefix="avuie_audio_") as tmp:
        target = Path(tmp) / "a.wav"

        def build(plan: Plan, fps: float | None) -> list:
            target = _clear(Path(tmp)) / "a.wav"
            return [graph.audio_output(path, start, plan.cut, sample_rate, target, threads)]

        info, plan, _ = _cut(path, want, info, build)
        wav = _wav_of(target, plan, sample_rate)
    return AudioCut(
        wav=wav,
        num_samples=round(plan.cut * sample_rate),
        start=float(start),
        duration=plan.cut,
        sample_rate=sample_rate,
        original_sample_rate=info.audio_sample_rate,
        original_channels=info.audio_channels,
        source_duration=info.duration or 0.0,
        clamped=plan.clamped,
    )
