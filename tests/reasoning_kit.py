"""Helpers for the reasoning tests: small real drafts (JPEG frames, WAV audio) and the fake server fixture."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
from avuie.schemas import make_key, make_sample_id, render_answer
from avuie.schemas.classes import AVE_CLASSES
from PIL import Image

from avuie.reasoning.cache import ChainCache
from avuie.reasoning.engine import Draft
from tests.openai_server import FakeOpenAIServer

__all__ = ["FakeOpenAIServer", "ave_draft", "ave_drafts", "jpeg", "kill_once_cached", "wav"]


def jpeg(value: int, size: int = 224) -> bytes:
    """A grey JPEG frame."""
    buf = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), value % 256, np.uint8)).save(buf, format="JPEG")
    return buf.getvalue()


def wav(seconds: float = 1.0, rate: int = 16000, freq: float = 440.0) -> bytes:
    """A 16-bit mono sine WAV."""
    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * np.pi * freq * t) * 8000).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def ave_draft(i: int, frames: int = 2) -> Draft:
    """An AVE draft whose label and interval depend on i (so every draft has its own answer)."""
    label = AVE_CLASSES[i % len(AVE_CLASSES)]
    start, end = i % 5, 5 + i % 5 + 1
    target = {"kind": "single_event", "label": label, "start": start, "end": end, "duration": 10.0}
    from avuie.schemas import SingleEventTarget

    sample_id = make_sample_id("ave", "train", f"vid{i:03d}_{i}")
    names = [f"frame_{k:02d}.jpg" for k in range(frames)]
    sample = {
        "schema_version": "1",
        "id": sample_id,
        "key": make_key(sample_id),
        "source": "ave",
        "family": "event_localization",
        "split": "train",
        "native_id": f"vid{i:03d}_{i}",
        "media": [
            {
                "kind": "video_frames",
                "role": "video",
                "files": names,
                "frame_times": [0.5 + k for k in range(frames)],
            },
            {"kind": "audio", "role": "audio", "files": ["audio.wav"], "duration": 1.0, "sample_rate": 16000},
        ],
        "instruction": "<video>\n<audio>\nWhich event is both seen and heard, and when?",
        "target": target,
        "answer": render_answer(SingleEventTarget(**target)),
        "provenance": {
            "annotation_file": "trainSet.txt",
            "annotation_row": i,
            "builder": "ave",
            "builder_version": "1",
        },
        "license": "test",
    }
    files = {name: jpeg(10 * i + k) for k, name in enumerate(names)}
    files["audio.wav"] = wav(freq=200 + 10 * i)
    return Draft(sample=sample, media_files=files)


def ave_drafts(n: int) -> list[Draft]:
    """n AVE drafts with distinct ids and answers."""
    return [ave_draft(i) for i in range(n)]


def kill_once_cached(proc: subprocess.Popen, cache_path: Path, chains: int, timeout: float) -> set[str]:
    """SIGKILL proc once its reasoning cache holds `chains` chains (or it exits, or `timeout` s pass).

    Returns the ids of the samples whose chains the cache kept.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if cache_path.exists():
            try:
                n = sqlite3.connect(cache_path).execute("SELECT COUNT(*) FROM chains").fetchone()[0]
            except sqlite3.OperationalError:
                n = 0
            if n >= chains:
                break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    cache = ChainCache(cache_path)
    finished = cache.sample_ids()
    cache.close()
    return finished
