"""Decode the media of one sample ({file name: bytes} from its tar members) into tensors, by the kind its JSON says,
and batch decoded samples (`collate_samples`).

video_frames -> uint8 [T, 3, H, W] (float in [0, 1] with frame_format "float"); image -> uint8 [3, H, W];
audio (WAV) -> float32 [num_samples] in [-1, 1], channels averaged; mask -> uint8 [H, W] of 0/1.
"""

from __future__ import annotations

import io
import wave

import numpy as np
import torch
from PIL import Image


def decode_media(
    sample: dict, files: dict[str, bytes], frame_format: str = "uint8"
) -> dict[str, torch.Tensor]:
    """Decode a sample's media files ({file name: bytes}) to tensors keyed by role (see AVStream)."""
    media = {}
    for item in sample.get("media", []):
        kind, role, names = item["kind"], item["role"], item["files"]
        missing = [name for name in names if name not in files]
        if missing:
            raise ValueError(f"media {role!r} lists files missing from the tar: {missing}")
        if kind in ("video_frames", "image"):
            pixels = torch.from_numpy(_planar_rgb([files[name] for name in names]))
            pixels = pixels[0] if kind == "image" else pixels
            media[role] = pixels.float().div_(255) if frame_format == "float" else pixels
        elif kind == "audio":
            media[role] = torch.from_numpy(np.concatenate([_waveform(files[name]) for name in names]))
        elif kind == "mask":
            media[role] = torch.from_numpy(_mask(files[names[0]]))
        else:
            raise ValueError(f"unknown media kind {kind!r} for role {role!r}")
    return media


def _planar_rgb(images: list[bytes]) -> np.ndarray:
    """Decode images of one size to uint8 [N, 3, H, W] (band by band: much faster than a transposing copy)."""
    out = None
    for number, data in enumerate(images):
        with Image.open(io.BytesIO(data)) as image:
            bands = image.convert("RGB").split()
            if out is None:
                out = np.empty((len(images), 3, image.height, image.width), dtype=np.uint8)
            if bands[0].size != (out.shape[3], out.shape[2]):
                raise ValueError(f"frames differ in size: {bands[0].size} vs {(out.shape[3], out.shape[2])}")
            for channel, band in enumerate(bands):
                out[number, channel] = np.asarray(band)
    return out


def _waveform(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as wav:
        width, channels, raw = wav.getsampwidth(), wav.getnchannels(), wav.readframes(wav.getnframes())
    if width == 2:
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 4:
        samples = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2147483648.0
    elif width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        raise ValueError(f"unsupported WAV sample width {width}")
    return samples.reshape(-1, channels).mean(axis=1) if channels > 1 else samples


def _mask(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        values = np.array(image.convert("L"))
    return (values >= 128 if values.max() > 1 else values > 0).astype(np.uint8)


def collate_samples(items: list[dict]) -> dict:
    """Batch AVStream items: {"key", "sample", "shard": lists; "index": LongTensor [B]; "media": {role: tensor
    [B, *max shape], zero-padded}; "lengths": {role: LongTensor [B], size of the first dim, 0 where absent}}.

    Undecoded media (bytes) stay lists per role, None where absent.
    """
    batch = {
        "key": [item["key"] for item in items],
        "sample": [item["sample"] for item in items],
        "shard": [item.get("shard") for item in items],
        "index": torch.tensor([item.get("index", -1) for item in items], dtype=torch.long),
        "media": {},
        "lengths": {},
    }
    roles = list(dict.fromkeys(role for item in items for role in item["media"]))
    for role in roles:
        values = [item["media"].get(role) for item in items]
        present = [value for value in values if value is not None]
        if not isinstance(present[0], torch.Tensor):
            batch["media"][role] = values
            continue
        shape = [max(value.shape[d] for value in present) for d in range(present[0].dim())]
        out = torch.zeros([len(items), *shape], dtype=present[0].dtype)
        for row, value in enumerate(values):
            if value is not None:
                out[(row, *(slice(0, n) for n in value.shape))] = value
        batch["media"][role] = out
        batch["lengths"][role] = torch.tensor(
            [0 if v is None else v.shape[0] for v in values], dtype=torch.long
        )
    return batch
