"""What a media file holds (`MediaInfo`) and the parsers of the two descriptions ffmpeg tools print: the
`Input #0` block of `ffmpeg -i` and ffprobe's JSON. Pure text work; avuie/media/ffmpeg.py runs the processes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass


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
