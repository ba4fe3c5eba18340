"""Media preprocessing for the trainer: decoded shard tensors in, model inputs out.

The streaming loader gives video frames as uint8 [T,3,H,W], images as uint8 [3,H,W] and audio as float32 [n] at
16 kHz. The Qwen2.5-Omni thinker wants Qwen2-VL patches (`qwen_patchify`, the exact layout of the Qwen2-VL image
processor, checked against it in the tests) and Whisper log-mel features (`log_mel`, the Whisper feature
extractor of transformers). The modular paradigm wants plain normalised pixels and fixed-length Whisper windows.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

SAMPLE_RATE = 16000
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)


def as_frames(tensor: torch.Tensor) -> torch.Tensor:
    """Frames [T,3,H,W] from a video [T,3,H,W] or an image [3,H,W]; raises on other shapes."""
    if tensor.dim() == 3:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 4 or tensor.shape[1] != 3:
        raise ValueError(f"expected frames [T,3,H,W] or an image [3,H,W], got shape {tuple(tensor.shape)}")
    return tensor


def resize_frames(frames: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 or float frames [T,3,H,W] -> float32 [T,3,size,size] on the 0..255 scale (bicubic, clamped)."""
    x = frames.float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return x.clamp(0, 255)


def normalize(frames: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """0..255 frames [T,3,H,W] -> (x/255 - mean) / std per channel, float32."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (frames.float() / 255.0 - m) / s


def qwen_patchify(
    frames: torch.Tensor, patch_size: int = 14, merge_size: int = 2, temporal_patch_size: int = 2
) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Normalised frames [T,3,H,W] -> (patches [t*h*w, 3*tp*p*p], grid (t, h, w)) as the Qwen2-VL processor does.

    T is padded to a multiple of `temporal_patch_size` by repeating the last frame (a single image becomes one
    temporal patch); H and W must be multiples of patch_size * merge_size.
    """
    t, c, height, width = frames.shape
    unit = patch_size * merge_size
    if height % unit or width % unit:
        raise ValueError(f"frame size {height}x{width} is not a multiple of patch*merge = {unit}")
    if t % temporal_patch_size:
        pad = temporal_patch_size - t % temporal_patch_size
        frames = torch.cat([frames, frames[-1:].expand(pad, -1, -1, -1)], dim=0)
    gt, gh, gw = frames.shape[0] // temporal_patch_size, height // patch_size, width // patch_size
    x = frames.reshape(
        gt,
        temporal_patch_size,
        c,
        gh // merge_size,
        merge_size,
        patch_size,
        gw // merge_size,
        merge_size,
        patch_size,
    )
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(gt * gh * gw, c * temporal_patch_size * patch_size * patch_size).contiguous(), (
        gt,
        gh,
        gw,
    )


@lru_cache(maxsize=8)
def _feature_extractor(num_mel_bins: int, chunk_seconds: int):
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(
        feature_size=num_mel_bins, sampling_rate=SAMPLE_RATE, chunk_length=chunk_seconds
    )


def select_windows(wave: torch.Tensor, meta: dict, sample_rate: int = 16000) -> torch.Tensor:
    """The audio the model hears: the sample's audio windows (`segments`, seconds) joined in order.

    Crab+ feeds MUSIC-AVQA ten 2 s windows taken every 6 s of the 60 s clip; contiguous windows (ten 1 s
    segments of a 10 s clip) give the whole audio back. Without segments the whole waveform is returned.
    """
    segments = meta.get("segments") or []
    rate = int(meta.get("sample_rate") or sample_rate)
    parts = [wave[int(round(s * rate)) : int(round(e * rate))] for s, e in segments]
    parts = [p for p in parts if p.numel()]
    return torch.cat(parts) if parts else wave


def log_mel(
    wave: torch.Tensor, num_mel_bins: int = 128, num_frames: int | None = None
) -> tuple[torch.Tensor, int]:
    """Waveform float32 [n] at 16 kHz -> (Whisper log-mel [mel, frames], number of valid frames).

    Without `num_frames` the features cover the clip (n / 160 frames). With it, the audio is cut or zero-padded
    to exactly `num_frames` frames (the fixed window a Whisper encoder expects).
    """
    wave = wave.detach().float().reshape(-1).cpu().numpy()
    hop = 160
    if num_frames is not None:
        n = num_frames * hop
        valid = min(len(wave) // hop, num_frames)
        wave = np.pad(wave[:n], (0, max(0, n - len(wave))))
    else:
        valid = len(wave) // hop
    if valid < 4:
        raise ValueError(f"audio too short for log-mel features: {len(wave)} samples")
    chunk = max(1, -(-len(wave) // SAMPLE_RATE))
    fe = _feature_extractor(num_mel_bins, chunk)
    feats = fe(wave, sampling_rate=SAMPLE_RATE, padding="longest", return_tensors="np")["input_features"][0]
    feats = torch.from_numpy(np.ascontiguousarray(feats[:, : (num_frames or valid)]))
    return feats.float(), valid


def omni_audio_tokens(num_frames: int) -> int:
    """Tokens the Qwen2.5-Omni audio encoder makes from `num_frames` mel frames (conv stride 2, then pool 2)."""
    after_conv = (num_frames - 1) // 2 + 1
    return (after_conv - 2) // 2 + 1


def seconds_per_frame(meta: dict, num_frames: int) -> float:
    """Seconds between sampled frames, from a MediaItem dict (frame_times, or duration / frame_count); 1.0 if unknown."""
    times = meta.get("frame_times") or []
    if len(times) >= 2:
        return float(times[-1] - times[0]) / (len(times) - 1) or 1.0
    duration = meta.get("duration")
    if duration and num_frames:
        return float(duration) / num_frames
    return 1.0
