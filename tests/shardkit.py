"""Write tiny builds in the avuie shard format for tests and benchmarks (stand-in for shards/writer.py).

`write_build(out, {"ave": {"train": [5, 3], "test": [2]}})` writes, like the real builder,
`out/shards/<split>/<source>-<split>-<NNNNN>.tar` (members `<key>.json`, `<key>.frame_00.jpg`...,
`<key>.audio.wav`, `<key>.image.jpg` and `<key>.mask_0.png` for segmentation sources), one `.done.json` per shard
in the format of avuie/build/pipeline.py,
`manifest.parquet`, `stats.json` and `build.json`. Media are real JPEG/WAV/PNG bytes made with Pillow and numpy.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

FAMILY = {
    "ave": "event_localization",
    "avqa": "question_answering",
    "s4": "segmentation",
    "ms3": "segmentation",
    "avcap": "captioning",
    "a2v": "cross_modal_matching",
    "ks": "action_recognition",
    "meld": "emotion_recognition",
}
IMAGE_SOURCES = {"s4", "ms3", "ref_avs", "arig"}


@dataclass
class Build:
    """What `write_build` wrote: the root, the shard paths and every sample key in canonical order."""

    root: Path
    shards: list[Path] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # key -> source
    splits: dict[str, str] = field(default_factory=dict)  # key -> split


def sample_key(sample_id: str) -> str:
    """Return the WebDataset key of a sample id: slug of the id + "_" + 8 hex of sha1(id)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", sample_id).strip("_")
    return f"{slug}_{hashlib.sha1(sample_id.encode()).hexdigest()[:8]}"


def jpeg_bytes(rng: np.random.Generator, size: int) -> bytes:
    """Return a size x size RGB JPEG: a smooth gradient with a random tint (compresses like a real frame)."""
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    tint = rng.uniform(0.3, 1.0, size=3)
    pixels = (ramp[None, :, None] * 0.5 + ramp[:, None, None] * 0.5) * tint[None, None, :]
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def wav_bytes(rng: np.random.Generator, seconds: float, rate: int = 16000) -> bytes:
    """Return a mono 16-bit PCM WAV holding a sine tone at a random pitch."""
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * rng.uniform(200, 800) * t)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((tone * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def mask_png(size: int) -> bytes:
    """Return a size x size 8-bit PNG mask (0 / 255) holding a centred disc."""
    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 4) ** 2
    buffer = io.BytesIO()
    Image.fromarray((disc * 255).astype(np.uint8), "L").save(buffer, format="PNG")
    return buffer.getvalue()


def make_sample(source: str, split: str, index: int, *, frames: int, size: int, audio_seconds: float):
    """Return (sample JSON dict, {file name: bytes}) for one synthetic sample of a source."""
    rng = np.random.default_rng([index, len(source), len(split)])
    sample_id = f"{source}/{split}/clip{index:05d}"
    files: dict[str, bytes] = {}
    if source in IMAGE_SOURCES:
        files["image.jpg"] = jpeg_bytes(rng, size)
        files["audio.wav"] = wav_bytes(rng, audio_seconds)
        files["mask_0.png"] = mask_png(size)
        media = [
            {"kind": "image", "role": "image", "files": ["image.jpg"], "size": [size, size]},
            {"kind": "audio", "role": "audio", "files": ["audio.wav"], "sample_rate": 16000, "channels": 1},
            {"kind": "mask", "role": "mask_0", "files": ["mask_0.png"], "size": [size, size]},
        ]
        instruction = "<image>\n<audio>\nSegment the sounding object."
    else:
        names = [f"frame_{i:02d}.jpg" for i in range(frames)]
        for name in names:
            files[name] = jpeg_bytes(rng, size)
        files["audio.wav"] = wav_bytes(rng, audio_seconds)
        media = [
            {
                "kind": "video_frames",
                "role": "video",
                "files": names,
                "frame_count": frames,
                "size": [size, size],
            },
            {"kind": "audio", "role": "audio", "files": ["audio.wav"], "sample_rate": 16000, "channels": 1},
        ]
        instruction = "<video>\n<audio>\nWhat happens in this clip?"
    answer = f"<answer>label {index % 7}</answer>"
    sample = {
        "schema_version": "1",
        "id": sample_id,
        "key": sample_key(sample_id),
        "source": source,
        "family": FAMILY.get(source, "captioning"),
        "split": split,
        "native_id": f"clip{index:05d}",
        "media": media,
        "instruction": instruction,
        "answer": answer,
        "reasoning": "It is heard and seen.",
        "response": f"It is heard and seen. {answer}",
        "license": "test",
    }
    return sample, files


def write_shard(path: Path, samples: list[tuple[dict, dict[str, bytes]]]) -> None:
    """Write samples to a tar as `<key>.json` then `<key>.<file>` members (via `.tar.tmp`, then renamed)."""
    tmp = path.with_name(path.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for sample, files in samples:
            members = {"json": json.dumps(sample, sort_keys=True).encode(), **files}
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{sample['key']}.{ext}")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    tmp.rename(path)


def write_build(
    out: str | Path,
    plan: dict[str, dict[str, list[int]]],
    *,
    frames: int = 2,
    size: int = 32,
    audio_seconds: float = 0.1,
    tars_info: bool = False,
) -> Build:
    """Write a build: plan maps source -> split -> the sample count of each shard.

    The `.done.json` markers have the builder's keys (shard, split, fingerprint, tars, in, manifest, rejects);
    tars_info also stores each tar's bytes, sha256 and table in them (see avuie.shards.index). Returns a Build.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from avuie.shards.index import scan_local, sha256_file

    root = Path(out)
    build = Build(root)
    rows, stats = [], {"splits": {}}
    for source, splits in sorted(plan.items()):
        for split, sizes in sorted(splits.items()):
            shard_dir = root / "shards" / split
            shard_dir.mkdir(parents=True, exist_ok=True)
            index = 0
            for number, count in enumerate(sizes):
                path = shard_dir / f"{source}-{split}-{number:05d}.tar"
                batch = [
                    make_sample(
                        source, split, index + i, frames=frames, size=size, audio_seconds=audio_seconds
                    )
                    for i in range(count)
                ]
                index += count
                write_shard(path, batch)
                shard_rows = [_manifest_row(root, path, sample, files) for sample, files in batch]
                name = path.name.removesuffix(".tar")
                done = {
                    "shard": name,
                    "split": split,
                    "fingerprint": "shardkit",
                    "tars": [path.name],
                    "in": count,
                }
                done.update(manifest=shard_rows, rejects=[])
                if tars_info:
                    facts = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
                    done["tars_info"] = {path.name: {**facts, "table": scan_local(path).to_table()}}
                path.with_name(name + ".done.json").write_text(json.dumps(done))
                rows.extend(shard_rows)
                build.shards.append(path)
            split_stats = stats["splits"].setdefault(
                split, {"in": 0, "written": 0, "rejected": 0, "reasons": {}}
            )
            split_stats["in"] += index
            split_stats["written"] += index
    build.shards.sort(key=lambda p: p.relative_to(root).as_posix())
    for path in build.shards:
        for entry in scan_local(path).samples:
            build.keys.append(entry.key)
            build.sources[entry.key], build.splits[entry.key] = entry.source, entry.split
    pq.write_table(pa.Table.from_pylist(rows), root / "manifest.parquet")
    (root / "stats.json").write_text(json.dumps(stats))
    (root / "build.json").write_text(json.dumps({"config": {"plan": plan}, "tool": "tests/shardkit.py"}))
    return build


def _manifest_row(root: Path, path: Path, sample: dict, files: dict[str, bytes]) -> dict:
    return {
        "id": sample["id"],
        "key": sample["key"],
        "source": sample["source"],
        "family": sample["family"],
        "split": sample["split"],
        "shard": path.relative_to(root).as_posix(),
        "num_bytes": sum(len(data) for data in files.values()),
        "media_duration": 10.0,
        "num_frames": sum(name.endswith(".jpg") for name in files),
        "audio_seconds": 0.1,
        "label": sample["answer"],
        "answer": sample["answer"],
        "reasoning_kind": "template",
        "reasoning_chars": len(sample["reasoning"]),
        "content_hash": hashlib.sha256(json.dumps(sample, sort_keys=True).encode()).hexdigest(),
    }
