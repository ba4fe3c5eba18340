"""One test sample as an OpenAI-compatible chat request: the content parts vLLM accepts for Qwen2.5-Omni.

The instruction's media markers say where each medium goes, in the order of the sample's media (as the trainer
reads them): the k-th `<video>` takes the k-th `video_frames` item, sent as one `image_url` part per frame
(JPEG data URLs, at most `max_frames`, evenly picked); `<audio>` takes the k-th `audio` item, sent as an
`input_audio` part (base64 WAV); `<image>` the k-th `image` item, as an `image_url` part. The text between
markers becomes `text` parts. A medium without a marker goes after the text; masks are ground truth and never
sent, nor are the sample's answer, target, reasoning or response.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

MARKER = re.compile(r"<(video|audio|image)>")
MARKER_KIND = {"video": "video_frames", "audio": "audio", "image": "image"}
IMAGE_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
# The default system prompt: Qwen2.5-Omni's own (the one its chat template expects for audio input).
OMNI_SYSTEM = (
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory and "
    "visual inputs, as well as generating text and speech."
)
PROMPT_VERSION = "predict/v1"


@dataclass(frozen=True)
class RequestShape:
    """How samples become requests: system prompt ("" for none), frames per video (0: all), audio sent or not."""

    system_prompt: str = OMNI_SYSTEM
    max_frames: int = 0
    audio: bool = True

    def version(self) -> str:
        """What identifies these settings in the cache key."""
        digest = hashlib.sha256(json.dumps([self.system_prompt, self.max_frames, self.audio]).encode())
        return f"{PROMPT_VERSION}+{digest.hexdigest()[:12]}"


def _pick(n: int, most: int) -> list[int]:
    """Indices of at most `most` of n frames, evenly spread (all when most is 0 or n <= most)."""
    if most <= 0 or n <= most:
        return list(range(n))
    return [round(i * (n - 1) / (most - 1)) for i in range(most)] if most > 1 else [0]


def _file(files: dict[str, bytes], name: str, sample_id: str) -> bytes:
    if name not in files:
        raise ValueError(f"{sample_id}: media file {name!r} is not in the sample")
    return files[name]


def media_parts(
    item: dict[str, Any], files: dict[str, bytes], shape: RequestShape, sample_id: str
) -> list[dict]:
    """The content parts of one media item (none for masks, and for audio when the shape sends no audio)."""
    kind, names = item.get("kind"), list(item.get("files") or [])
    if kind in ("video_frames", "image"):
        chosen = [names[i] for i in _pick(len(names), shape.max_frames if kind == "video_frames" else 0)]
        parts = []
        for name in chosen:
            mime = IMAGE_TYPES.get(name.rsplit(".", 1)[-1].lower(), "image/jpeg")
            data = base64.b64encode(_file(files, name, sample_id)).decode()
            parts.append({"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}})
        return parts
    if kind == "audio" and shape.audio:
        return [
            {
                "type": "input_audio",
                "input_audio": {
                    "data": base64.b64encode(_file(files, name, sample_id)).decode(),
                    "format": name.rsplit(".", 1)[-1].lower(),
                },
            }
            for name in names
        ]
    return []


def request_messages(sample: dict[str, Any], files: dict[str, bytes], shape: RequestShape) -> list[dict]:
    """The chat messages of a sample: the system prompt (when set) and one user message whose content
    interleaves the instruction's text and the media parts. ValueError when a media file is missing."""
    sample_id = str(sample.get("id", ""))
    queues: dict[str, list[dict]] = {k: [] for k in MARKER_KIND.values()}
    for item in sample.get("media") or []:
        if item.get("kind") in queues:
            queues[item["kind"]].append(item)
    text = str(sample.get("instruction") or "")
    parts: list[dict] = []
    pos = 0
    for match in MARKER.finditer(text):
        _add_text(parts, text[pos : match.start()])
        pos = match.end()
        queue = queues[MARKER_KIND[match.group(1)]]
        if queue:
            parts += media_parts(queue.pop(0), files, shape, sample_id)
    _add_text(parts, text[pos:])
    for queue in queues.values():  # media the instruction does not place
        for item in queue:
            parts += media_parts(item, files, shape, sample_id)
    messages = [{"role": "system", "content": shape.system_prompt}] if shape.system_prompt else []
    return [*messages, {"role": "user", "content": parts}]


def _add_text(parts: list[dict], text: str) -> None:
    if text.strip():
        parts.append({"type": "text", "text": text.strip()})
