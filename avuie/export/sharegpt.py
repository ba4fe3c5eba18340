"""`avuie export --format sharegpt`: LLaMA-Factory's sharegpt (OpenAI `messages`) JSON with media paths.

DEST gets one `<split>.json` per build split, a `dataset_info.json` naming them (`avuie_train`, `avuie_val`,
`avuie_test`: copy its entries into LLaMA-Factory's data/dataset_info.json, or point `dataset_dir` at DEST),
and the media under `DEST/media/<source>/<key>/`: `<role>.mp4` (or the `<role>_frames/` JPEGs with
`--video frames`, given as a list of frame paths), `<role>.wav`, `<role>.jpg`, masks as PNG. Paths in the JSON are
relative to DEST (LLaMA-Factory's default `media_dir` is the dataset folder). The user turn is the instruction
with its `<video>`, `<audio>`, `<image>` placeholders, one per listed medium, in order; the assistant turn is the
response (reasoning, then the final answer).

Frames: LLaMA-Factory resamples every video at its `video_fps` (default 2.0): it keeps
`floor(min(frames, video_maxlen, duration * video_fps))` frames spread over the clip, so at 2 fps a 4 s UCF clip
of 10 sampled frames keeps 8. The export writes the `video_fps` and `video_maxlen` that keep every frame of
every exported video (`llamafactory` in the returned summary and `DEST/llamafactory.json`, also named in
`DEST/README.md`; each record's `video_fps` lists its videos' own rates): set them in the training config.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from avuie.export.common import (
    ExportOptions,
    JsonArrayFiles,
    encode_mp4,
    frame_rate,
    iter_samples,
    run_parallel,
    write_file,
    write_frames,
)


def _sharegpt_media(sample: dict[str, Any], files: dict[str, bytes], dest: Path, video: str) -> dict:
    base = Path("media") / sample["source"] / sample["key"]
    out: dict[str, list[Any]] = {"images": [], "videos": [], "audios": []}
    for m in sample["media"]:
        name = m["role"]
        if m["kind"] == "video_frames":
            frames = write_frames(dest / base / f"{name}_frames", m, files)
            if video == "mp4":
                encode_mp4(frames, frame_rate(m), dest / base / f"{name}.mp4")
                out["videos"].append(str(base / f"{name}.mp4"))
            else:
                out["videos"].append([str(p.relative_to(dest)) for p in frames])
        elif m["kind"] == "audio":
            write_file(dest / base / f"{name}.wav", files[m["files"][0]])
            out["audios"].append(str(base / f"{name}.wav"))
        elif m["kind"] == "image":
            write_file(dest / base / f"{name}.jpg", files[m["files"][0]])
            out["images"].append(str(base / f"{name}.jpg"))
        elif m["kind"] == "mask":  # not read by LLaMA-Factory; kept beside the sample for evaluation
            for f in m["files"]:
                write_file(dest / base / f, files[f])
    return out


def keep_every_frame(rates: Iterable[float], counts: Iterable[int]) -> dict[str, Any]:
    """LLaMA-Factory's `video_fps` and `video_maxlen` that keep every frame: above the fastest video's frame rate
    (with a margin against rounding of the stream duration) and at least the longest frame count."""
    top = max(rates, default=0.0)
    return {
        "video_fps": math.ceil(top * 1.05 * 100) / 100 if top else 2.0,
        "video_maxlen": max(counts, default=1),
    }


def sharegpt_record(sample: dict[str, Any], media: dict[str, list[Any]]) -> dict[str, Any]:
    """A LLaMA-Factory sharegpt (OpenAI-style `messages`) record; `<video>`/`<audio>`/`<image>` stay as-is.

    `video_fps` lists each video's frame rate (its frames over its duration): the rate that keeps its frames."""
    videos = [m for m in sample["media"] if m["kind"] == "video_frames"]
    return {
        "id": sample["id"],
        "source": sample["source"],
        "family": sample["family"],
        "messages": [
            {"role": "user", "content": sample["instruction"]},
            {"role": "assistant", "content": sample["response"]},
        ],
        **media,
        "video_fps": [float(frame_rate(m)) for m in videos],
    }


def dataset_info(splits: Iterable[str], prefix: str = "avuie") -> dict[str, Any]:
    """LLaMA-Factory `dataset_info.json` entries, one per split file."""
    return {
        f"{prefix}_{split}": {
            "file_name": f"{split}.json",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images", "videos": "videos", "audios": "audios"},
            "tags": {
                "role_tag": "role",
                "content_tag": "content",
                "user_tag": "user",
                "assistant_tag": "assistant",
            },
        }
        for split in sorted(splits)
    }


README = """# AV-UIE v2 as LLaMA-Factory sharegpt (written by `avuie export --format sharegpt`)

Copy the entries of `dataset_info.json` into LLaMA-Factory's data/dataset_info.json (or point `dataset_dir` here).
Keep every sampled frame of every video: set `video_fps: {video_fps}` and `video_maxlen: {video_maxlen}` in the
training config (LLaMA-Factory's default 2.0 fps drops frames of clips sampled faster, e.g. 8 of a 4 s UCF clip's 10).
"""


def export_sharegpt(
    builds: list[Path], dest: Path, opts: ExportOptions, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Write DEST/<split>.json (sharegpt), DEST/dataset_info.json and media under DEST/media/; return counts."""
    files_out = JsonArrayFiles(lambda split: dest / f"{split}.json")
    rates: list[float] = []
    frames: list[int] = []

    def work(item: tuple[dict[str, Any], dict[str, bytes]]) -> tuple[str, dict[str, Any], list[int]]:
        sample, files = item
        record = sharegpt_record(sample, _sharegpt_media(sample, files, dest, opts.video))
        return (
            sample["split"],
            record,
            [len(m["files"]) for m in sample["media"] if m["kind"] == "video_frames"],
        )

    try:
        for split, record, counts_of_frames in run_parallel(
            iter_samples(builds, opts.splits, opts.sources), work, opts.workers, progress
        ):
            files_out.append(split, record)
            rates.extend(record["video_fps"])
            frames.extend(counts_of_frames)
    finally:
        counts = files_out.close()
    (dest / "dataset_info.json").write_text(json.dumps(dataset_info(counts), indent=2))
    settings = keep_every_frame(rates, frames)
    (dest / "llamafactory.json").write_text(json.dumps(settings, indent=2))
    (dest / "README.md").write_text(README.format(**settings))
    return {"format": "sharegpt", "dest": str(dest), "splits": counts, "llamafactory": settings}
