"""Turn a record's media requests into tar members and measured media items (one ffmpeg process per clip,
no separate header read: see avuie/media/ffmpeg.py).

`cut_record(record, profile)` returns a `Cut` or raises `MediaError` with a specific reason (missing, empty or
corrupt file, no audio stream...). The Crab+ profile is the default: 224x224 frames, 10 frames for video tasks,
4 for emotion tasks, 16 kHz mono audio.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from avuie.builders.base import AudioMedia, Cut, ImageMedia, MaskMedia, Record, VideoMedia
from avuie.media import ffmpeg, images
from avuie.media.files import check_media_file, media_error_from_os
from avuie.schemas import MediaItem, TaskFamily
from avuie.shards.index import sha256_file


@dataclass(frozen=True)
class Profile:
    """What the media of a sample look like: frame size, frames per clip by family, audio rate."""

    frame_size: tuple[int, int] = (224, 224)
    video_frames: int = 10
    emotion_frames: int = 4
    sample_rate: int = 16000

    def frames_for(self, family: TaskFamily) -> int:
        """The default number of frames of a clip for a task family."""
        return self.emotion_frames if family == TaskFamily.emotion_recognition else self.video_frames


def ffmpeg_threads(workers: int) -> int:
    """Decoder threads per ffmpeg process when `workers` cut at once: the cores this process may use, shared
    out (at least 1), so that workers x threads does not oversubscribe the machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def _audio_name(role: str, prefix: str = "") -> str:
    return f"{prefix}audio.wav" if role == "audio" else f"{prefix}{role}.wav"


def cut_record(
    record: Record, family: TaskFamily, profile: Profile = Profile(), threads: int | None = None
) -> tuple[Cut, dict[str, str]]:
    """Cut every medium of a record; return the Cut and the sha256 of each raw file used.

    One ffmpeg process per video or audio request (the header comes out of that same run); `threads` caps
    each process's decoder threads (see `ffmpeg_threads`; None leaves it to ffmpeg).

    Each file passes `check_media_file` (regular, non-empty, readable, name not too long) before it is hashed
    or decoded; an OS error while reading one becomes a MediaError with a specific reason.
    """
    cut = Cut()
    checksums: dict[str, str] = {}
    for req in record.media:
        try:
            check_media_file(req.path)  # cheap: nothing is hashed or decoded before it passes
            checksums[str(req.path)] = sha256_file(req.path)
            _cut_one(cut, req, family, profile, threads)
        except OSError as exc:  # the file changed under us, or an I/O error while reading it
            raise media_error_from_os(exc, req.path) from exc
    return cut, checksums


def _cut_one(cut: Cut, req, family: TaskFamily, profile: Profile, threads: int | None) -> None:
    if isinstance(req, VideoMedia):
        _cut_video(cut, req, family, profile, threads)
    elif isinstance(req, AudioMedia):
        _cut_audio(cut, req, profile, threads)
    elif isinstance(req, ImageMedia):
        data, original = images.load_image(req.path, size=profile.frame_size)
        cut.files[req.file] = data
        w, h = profile.frame_size
        cut.media.append(
            MediaItem(
                kind="image",
                role=req.role,
                files=[req.file],
                source_path=str(req.path),
                size=(w, h),
                original_size=tuple(original),
            )
        )
    elif isinstance(req, MaskMedia):
        cut.masks[req.role] = images.load_mask(req.path)
        cut.mask_paths[req.role] = str(req.path)
    else:  # pragma: no cover - the request types are closed
        raise TypeError(f"unknown media request {req!r}")


def _cut_video(cut: Cut, req: VideoMedia, family: TaskFamily, profile: Profile, threads: int | None) -> None:
    n = req.num_frames or profile.frames_for(family)
    clip = ffmpeg.extract_clip(  # one ffmpeg process: the header comes from the cut's own run
        req.path,
        start=req.start,
        duration=req.duration,
        num_frames=n,
        size=profile.frame_size,
        with_audio=req.audio_role is not None,
        sample_rate=profile.sample_rate,
        require_audio=req.audio_role is not None,
        threads=threads,
    )
    names = [f"{req.prefix}frame_{i:02d}.jpg" for i in range(len(clip.frames))]
    cut.files.update(zip(names, clip.frames, strict=False))
    w, h = profile.frame_size
    cut.media.append(
        MediaItem(
            kind="video_frames",
            role=req.role,
            files=names,
            source_path=str(req.path),
            duration=round(clip.duration, 3),
            start=req.start,
            fps=clip.fps,
            frame_times=[round(t, 3) for t in clip.frame_times],
            frame_count=len(names),
            size=(w, h),
            original_size=tuple(clip.original_size),
            source_duration=clip.source_duration,
        )
    )
    if req.audio_role is not None and clip.audio is not None:
        name = _audio_name(req.audio_role, req.prefix)
        original = (clip.audio_sample_rate, clip.audio_channels, clip.source_duration)
        _add_audio(
            cut,
            req.audio_role,
            name,
            req,
            clip.audio,
            clip.audio_num_samples,
            req.audio_windows,
            profile,
            original,
        )


def _windows(windows: list[tuple[float, float]] | None, seconds: float) -> list[tuple[float, float]] | None:
    if windows is None:
        return None
    # Clamp to what the audio really holds (ffmpeg builds differ by a few milliseconds).
    return [(float(s), float(min(e, max(seconds, s)))) for s, e in windows if s < seconds]


def _cut_audio(cut: Cut, req: AudioMedia, profile: Profile, threads: int | None) -> None:
    audio = ffmpeg.extract_audio(
        req.path, start=req.start, duration=req.duration, sample_rate=profile.sample_rate, threads=threads
    )
    original = (audio.original_sample_rate, audio.original_channels, audio.source_duration)
    _add_audio(cut, req.role, req.file, req, audio.wav, audio.num_samples, req.windows, profile, original)


def _add_audio(
    cut: Cut,
    role: str,
    name: str,
    req: VideoMedia | AudioMedia,
    wav: bytes,
    num_samples: int,
    windows: list[tuple[float, float]] | None,
    profile: Profile,
    original: tuple[int | None, int | None, float | None] = (None, None, None),
) -> None:
    """Add a cut WAV as tar member `name` and its measured audio MediaItem (windows clamped to its length).

    `original` is the source's (sample rate, channels, duration) as probed.
    """
    cut.files[name] = wav
    seconds = num_samples / profile.sample_rate
    cut.media.append(
        MediaItem(
            kind="audio",
            role=role,
            files=[name],
            source_path=str(req.path),
            duration=round(seconds, 3),
            start=req.start,
            sample_rate=profile.sample_rate,
            channels=1,
            num_samples=num_samples,
            segments=_windows(windows, seconds),
            original_sample_rate=original[0],
            original_channels=original[1],
            source_duration=original[2],
        )
    )
