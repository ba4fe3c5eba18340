"""What a cut takes (``Want`` -> ``Plan`` once the header is known) and its ffmpeg command lines, built with
``ffmpeg-python`` (nothing runs here; avuie/media/ffmpeg.py runs them).

Two ways to take ``num_frames`` frames out of ``[start, start + cut)``, both in one ffmpeg process:

* **one pass** (:func:`clip_outputs` with ``seek=False``): the cut is decoded once, front to back; an ``fps``
  filter keeps the picture on screen at each frame's time. Best when frames are close together.
* **seek per frame** (``seek=True``): one input per frame, each seeking (``-ss``) to just before its frame's
  time, so only the keyframe interval before each frame is decoded instead of the whole cut. Best for long
  cuts with few frames (a 60 s clip with 10 frames). Each input is a sub-cut ``[t - m, t + m)`` centred on the
  frame's time ``t`` and goes through the same ``fps`` filter, so it keeps the same picture as one pass.

The audio of ``[start, start + cut)`` is always one output (16-bit mono WAV, padded/trimmed to the exact
number of samples). Outputs are deterministic (bitexact flags, no metadata).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from avuie.media.files import MediaError
from avuie.media.info import MediaInfo

_BITEXACT_OUT = {"fflags": "+bitexact", "map_metadata": -1}
SLACK_S = 0.1  # at most this shortfall of a file against the window asked is kept without a second run
# seek per frame once frames are at least this far apart (real web videos have a keyframe every 2-5 s)
SEEK_MIN_SPACING_S = 3.0
SEEK_MARGIN_S = 0.5  # half-width of a seek sub-cut when the frame rate is unknown


@dataclass(frozen=True)
class Plan:
    """What one ffmpeg run cuts: ``cut`` seconds from the start, clamped or not, with audio or not.

    ``taken`` is the window the outputs were actually cut over when it is longer than ``cut`` (a file a few
    hundredths of a second shorter than asked, see ``Want.slack``); None when they are the same."""

    cut: float
    clamped: bool
    audio: bool
    taken: float | None = None

    @property
    def span(self) -> float:
        """The seconds the outputs were cut over (frames are spaced over these)."""
        return self.taken if self.taken is not None else self.cut


def plan_cut(path: Path, info: MediaInfo, start: float, duration: float | None, min_duration: float):
    """(seconds cut, clamped) of ``[start, start + duration)`` on a file of header ``info``; MediaError
    ``too_short`` when less than ``min_duration`` remains, ``corrupt_media`` when no duration is stated."""
    if info.duration is None:
        raise MediaError("corrupt_media", "the container does not state a duration", path)
    available = info.duration - start
    wanted = available if duration is None else duration
    cut = round(min(wanted, available), 6)
    if cut < min_duration:
        raise MediaError(
            "too_short", f"only {max(available, 0):.3f} s from {start:.3f} s (need >= {min_duration} s)", path
        )
    return cut, cut < wanted - 1e-6


def check_request(start: float, duration: float | None) -> None:
    """ValueError unless ``start >= 0`` and ``duration`` is None or > 0."""
    if start < 0:
        raise ValueError(f"start must be >= 0, not {start}")
    if duration is not None and duration <= 0:
        raise ValueError(f"duration must be > 0, not {duration}")


@dataclass(frozen=True)
class Want:
    """What a caller asks of a file: the window, the streams it needs, whether it takes the audio."""

    start: float
    duration: float | None
    min_duration: float
    video: bool
    need_audio: bool
    take_audio: bool
    slack: float = 0.0  # a file this much shorter than asked keeps the run made for the window asked

    def plan(self, path: Path, info: MediaInfo) -> Plan:
        """The cut of this request on a file with header ``info``; MediaError when the file cannot give it."""
        if self.video and not info.has_video:
            raise MediaError("no_video_stream", "the file has no video stream", path)
        if self.need_audio and not info.has_audio:
            what = "the video has" if self.video else "the file has"
            raise MediaError("no_audio_stream", f"{what} no audio stream", path)
        cut, clamped = plan_cut(path, info, self.start, self.duration, self.min_duration)
        return Plan(cut, clamped, self.take_audio and info.has_audio)


def seek_args(start: float, cut: float, threads: int | None = None) -> dict[str, str]:
    """Input options for a cut; no `-ss` at 0, since some demuxers (FLV) fail to seek to 0 and jump elsewhere.
    ``threads`` caps the decoder's threads (None: ffmpeg's choice, about one per core)."""
    args = {"t": f"{cut:.6f}"}
    if start > 0:
        args["ss"] = f"{start:.6f}"
    if threads is not None:
        args["threads"] = str(threads)
    return args


def audio_chain(stream, sample_rate: int, num_samples: int):
    """16-bit mono at ``sample_rate``, padded with silence / trimmed to exactly ``num_samples``."""
    return (
        stream.filter("aresample", sample_rate, first_pts=0)
        .filter("aformat", sample_fmts="s16", channel_layouts="mono")
        .filter("apad", whole_len=num_samples)
        .filter("atrim", end_sample=num_samples)
    )


def wav_output(stream, target: Path, sample_rate: int):
    """The ffmpeg-python output writing ``stream`` as 16-bit PCM WAV at ``sample_rate`` into ``target``."""
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


def audio_output(
    path: Path, start: float, cut: float, sample_rate: int, target: Path, threads: int | None = None
):
    """The output writing the audio of ``[start, start + cut)`` of ``path`` (its own input) into ``target``."""
    import ffmpeg

    src = ffmpeg.input(str(path), **seek_args(start, cut, threads))
    return wav_output(audio_chain(src["a:0"], sample_rate, round(cut * sample_rate)), target, sample_rate)


def frames_output(src, cut: float, num_frames: int, size: tuple[int, int], jpeg_quality: int, pattern: Path):
    """The output writing `num_frames` JPEGs at the centres of `num_frames` equal parts of the cut."""
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


def use_seek(cut: float, num_frames: int) -> bool:
    """Whether frames are far enough apart that seeking to each beats decoding the whole cut."""
    return cut / num_frames >= SEEK_MIN_SPACING_S


def clip_outputs(
    path: Path,
    tmpdir: Path,
    start: float,
    cut: float,
    num_frames: int,
    size: tuple[int, int],
    jpeg_quality: int,
    audio_rate: int | None,
    fps: float | None = None,
    threads: int | None = None,
) -> list:
    """Every output of a clip cut: frames ``tmpdir/f_*.jpg`` (one pass or seek per frame, see the module
    docstring) and, when ``audio_rate`` is set, the WAV ``tmpdir/a.wav``. ``fps`` (the source's, when known)
    narrows the seek sub-cuts to two frame intervals; ``threads`` caps each decoder's threads."""
    import ffmpeg

    outputs = []
    if use_seek(cut, num_frames):
        half = 0.5 * cut / num_frames
        margin = min(half, 2.0 / fps if fps else SEEK_MARGIN_S)
        for i in range(num_frames):
            t = start + (2 * i + 1) * half
            sub = ffmpeg.input(str(path), **seek_args(round(t - margin, 6), round(2 * margin, 6), threads))
            outputs.append(frames_output(sub, 2 * margin, 1, size, jpeg_quality, tmpdir / f"f_{i:04d}.jpg"))
    else:
        src = ffmpeg.input(str(path), **seek_args(start, cut, threads))
        outputs.append(frames_output(src, cut, num_frames, size, jpeg_quality, tmpdir / "f_%04d.jpg"))
        if audio_rate:  # the same input: the file is demuxed once for both outputs
            chain = audio_chain(src["a:0"], audio_rate, round(cut * audio_rate))
            return [*outputs, wav_output(chain, tmpdir / "a.wav", audio_rate)]
    if audio_rate:
        outputs.append(audio_output(path, start, cut, audio_rate, tmpdir / "a.wav", threads))
    return outputs
