"""`avuie export --format crab-plus`: the layout the official Crab+ trainer reads (GeWu-Lab/Crab_Plus).

The Crab+ loader (`dataset/qwen2_5_omni/omni_dataset.py`) opens `AVUIE_2/<task>/{train,test}.json` under its
`data_root` and joins each entry's media names onto fixed folders:

- video tasks: `AVUIE_2/<task>/video/<video_path>` (read with decord, `nframes` 10, or 4 for emotion) and
  `AVUIE_2/<task>/audio/<audio_path>` (librosa at 16 kHz, then cut per task: ten 1 s segments of a 10 s clip,
  ten 2 s windows every 6 s of a 60 s MUSIC-AVQA clip, the first 4 s for emotion);
- image tasks (s4, ms3, arig, ref_avs): `AVUIE_2/<task>/<image_path>` and `AVUIE_2/<task>/<audio_path>`, in an
  AVSBench-style tree (`v1s/`, `v1m/`, Ref-AVS `media/`); s4 and ms3 take second `idx` of a 5 s audio, ref_avs
  second `idx` of a 10 s audio.

The mapping (one sample -> one JSON entry; `<key>` is the sample's webdataset key, unique):

| what | where |
|---|---|
| task folder | the sample's `source` (the 19 `--source` names are the Crab+ task names) |
| split file | `train` -> train.json; `test*` (Ref-AVS test_s/u/n too) -> test.json; `val` -> `--val-to` (default: its own val.json, which the official loader does not read; `train`, `test` or `drop` instead); other splits -> `<split>.json` |
| frames | `video/<key>/frame_00.jpg...` (`video/<key>_<role>/` when a sample has two videos) |
| video | `video/<key>.mp4`: the frames encoded one per sampled time, so decord's `nframes` gives them back (`--video frames` skips it and `video_path` names the frame folder instead) |
| audio | `audio/<key>.wav` (16 kHz mono, the sample's own audio) |
| image tasks | `<tree>/<key>/frames/<idx>.jpg`, `<tree>/<key>/audio.wav`, `<tree>/<key>/masks/mask_k.png` |
| assistant turn | the sample's `response` (reasoning + tagged answer) under `output` and under the key the loader reads for that task (`label_content`, `label`, `new_label` for ucf) |
| identity | `sample_id` (ours), `task_name`, `split` (the build's split name) |
| instruction | ours, with Crab markers `<video_start><video><video_end>` etc. (the Crab+ loader writes its own prompts) |

Image-task audio: our s4/ms3/ref_avs samples carry the 1 s of audio aligned with their frame. The loader cuts
second `idx` out of a 5 s (10 s for ref_avs) file, so the exported `audio.wav` is that length with the sample's
second at slot `idx` (s4: always slot 0, as the loader hard-codes it) and silence elsewhere: the loader then
feeds the model exactly the sample's audio. Task fields the loader indexes (`vid`, `event`, `a_obj`,
`correct_video`...) are filled from the typed target; fields with no counterpart are empty strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from avuie.export.common import (
    ExportOptions,
    JsonArrayFiles,
    decode_wav,
    encode_mp4,
    encode_wav,
    frame_rate,
    iter_samples,
    media_of,
    run_parallel,
    write_file,
    write_frames,
)

IMAGE_TREES = {"s4": "v1s", "ms3": "v1m", "arig": "v1s", "ref_avs": "media"}
# task -> (seconds the loader expects, whether the loader's slot is the entry's `idx` (else slot 0))
AUDIO_SLOTS = {"s4": (5, False), "ms3": (5, True), "ref_avs": (10, True)}
IDX_KEY = {"ms3": "frame_idx", "ref_avs": "idx", "s4": "idx", "arig": "idx"}
# The key the Crab+ loader reads as the assistant turn (all entries also carry `output`).
OUTPUT_KEY = {"ucf": "new_label", "ref_avs": "output"} | {
    t: "label_content" for t in ("ave", "unav", "avvp", "ms3", "s4", "arig", "avcap")
}
MARKERS = {
    "<video>": "<video_start><video><video_end>",
    "<audio>": "<audio_start><audio><audio_end>",
    "<image>": "<image_start><image><image_end>",
}
_MARKER_RE = re.compile("|".join(re.escape(m) for m in MARKERS))


def crab_instruction(text: str) -> str:
    """Our instruction with the media markers in Crab's form (`<video>` -> `<video_start><video><video_end>`)."""
    return _MARKER_RE.sub(lambda m: MARKERS[m.group(0)], text)


def split_file(split: str, val_to: str) -> str | None:
    """The JSON file name (without .json) a split goes to, or None when it is dropped."""
    if split == "train":
        return "train"
    if split.startswith("test"):
        return "test"
    if split == "val":
        return None if val_to == "drop" else val_to
    return split


def _video_id(sample: dict[str, Any]) -> str:
    """The original video/clip id: the raw file's stem (the folder above `frames/` for frame trees)."""
    for m in sample["media"]:
        path = Path(m.get("source_path") or "")
        if not path.name:
            continue
        if path.parent.name == "frames" and path.parent.parent.name:
            return path.parent.parent.name
        return path.stem
    return sample["native_id"]


def frame_index(sample: dict[str, Any], slots: int) -> int:
    """The second of the clip the sample's frame comes from, clamped to [0, slots).

    Taken from the audio's start when the sample carries only that second's audio (s4/ms3/ref_avs cut 1 s at
    the frame), else from a single audio window, else from the trailing digits of the raw image name.
    """
    for m in media_of(sample, "audio")[:1]:
        segments = m.get("segments") or []
        if m.get("start") is not None and (m.get("duration") or 0) <= 1.5:
            return min(max(int(round(m["start"])), 0), slots - 1)
        if len(segments) == 1:
            return min(max(int(round(segments[0][0])), 0), slots - 1)
    for m in media_of(sample, "image"):
        digits = re.search(r"(\d+)$", Path(m.get("source_path") or "").stem)
        if digits:
            return min(max(int(digits.group(1)), 0), slots - 1)
    return 0


def slotted_audio(wav: bytes, item: dict[str, Any], seconds: int, slot: int) -> bytes:
    """A `seconds`-long WAV whose second `slot` holds the item's (first) audio window; silence elsewhere."""
    pcm, sr = decode_wav(wav)
    segments = item.get("segments") or []
    if len(segments) == 1 and len(pcm) > (segments[0][1] - segments[0][0] + 0.25) * sr:
        s, e = segments[0]
        pcm = pcm[int(round(s * sr)) : int(round(e * sr))]
    out = np.zeros(seconds * sr, dtype=np.float32)
    window = pcm[:sr]
    out[slot * sr : slot * sr + len(window)] = window
    return encode_wav(out, sr)


def task_fields(sample: dict[str, Any]) -> dict[str, Any]:
    """The task-specific keys the Crab+ loader indexes, filled from the typed target."""
    t, source, vid = sample["target"], sample["source"], _video_id(sample)
    kind = t["kind"]
    if kind == "single_event":
        return {"vid": vid, "event": t["label"], "start_time": t["start"], "end_time": t["end"]}
    if kind == "dense_events":
        return {"vid": vid}
    if kind == "av_parsing":
        labels = sorted(set(t["audio"]) | set(t["visual"]))
        return {"vid": vid, "filename": vid, "event": ",".join(labels)}
    if kind == "open_qa":
        return {
            "video_id": vid,
            "question_id": sample["native_id"],
            "type": t.get("question_type", ""),
            "question": t["question"],
            "answer": t["answer"],
        }
    if kind == "multiple_choice":
        return {
            "id": sample["native_id"],
            "video_name": vid,
            "video_id": vid,
            "question_relation": "",
            "question_type": t.get("question_type", ""),
            "multi_choice": t["options"],
            "question_text": t["question"],
            "answer": t["options"][t["answer_index"]],
        }
    if kind in ("segmentation", "referring_segmentation", "grounding"):
        labels = [g["label"] for g in t.get("groups", [])] or ([t["label"]] if "label" in t else [])
        fields: dict[str, Any] = {"vid": vid, "uid": sample["native_id"], "a_obj": ", ".join(labels)}
        if kind == "referring_segmentation":
            fields |= {"fid": 0, "description": t["expression"], "present": t["present"]}
        return fields
    if kind == "caption":
        return {"video_id": vid}
    if kind == "matching":
        first, second = t["candidate_labels"]
        if t["direction"] == "a2v":
            return {
                "correct_video": t["answer_index"] + 1,
                "audio_event": t["query_label"],
                "video1_event": first,
                "video2_event": second,
            }
        return {
            "correct_audio": t["answer_index"] + 1,
            "video_event": t["query_label"],
            "audio1_event": first,
            "audio2_event": second,
        }
    if kind == "classification":
        key = {"ks": "action", "ucf": "label", "meld": "Emotion", "mer24": "discrete"}.get(source, "emotion")
        return {key: t["label"]}
    return {}


def _suffix(items: list[dict[str, Any]], m: dict[str, Any]) -> str:
    return "" if len(items) == 1 else f"_{m['role']}"


def _video_task_media(
    sample: dict[str, Any], files: dict[str, bytes], task_dir: Path, video: str
) -> dict[str, Any]:
    key, paths = sample["key"], {}
    videos, audios = media_of(sample, "video_frames"), media_of(sample, "audio")
    for i, m in enumerate(videos):
        name = key + _suffix(videos, m)
        frames = write_frames(task_dir / "video" / name, m, files)
        path = name
        if video == "mp4":
            path = encode_mp4(frames, frame_rate(m), task_dir / "video" / f"{name}.mp4").name
        paths["video_path" if len(videos) == 1 else f"video{i + 1}_path"] = path
        paths["frames_path" if len(videos) == 1 else f"video{i + 1}_frames"] = name
    for i, m in enumerate(audios):
        name = f"{key}{_suffix(audios, m)}.wav"
        write_file(task_dir / "audio" / name, files[m["files"][0]])
        paths["audio_path" if len(audios) == 1 else f"audio{i + 1}_path"] = name
    return paths


def _image_task_media(sample: dict[str, Any], files: dict[str, bytes], task_dir: Path) -> dict[str, Any]:
    task = sample["source"]
    seconds, follows_idx = AUDIO_SLOTS.get(task, (5, False))
    idx = frame_index(sample, seconds)
    base = f"{IMAGE_TREES.get(task, task)}/{sample['key']}"
    paths: dict[str, Any] = {IDX_KEY.get(task, "idx"): idx}
    images = media_of(sample, "image")
    for m in images:
        paths["image_path"] = f"{base}/frames/{idx}.jpg"
        write_file(task_dir / paths["image_path"], files[m["files"][0]])
    paths["image_path_list"] = [paths["image_path"]] if images else []
    for m in media_of(sample, "audio")[:1]:
        wav = files[m["files"][0]]
        if task in AUDIO_SLOTS:
            wav = slotted_audio(wav, m, seconds, idx if follows_idx else 0)
        paths["audio_path"] = f"{base}/audio.wav"
        write_file(task_dir / paths["audio_path"], wav)
    masks = [f for m in media_of(sample, "mask") for f in m["files"]]
    for f in masks:
        write_file(task_dir / base / "masks" / f, files[f])
    if masks:
        paths["mask_path"] = f"{base}/masks/{masks[0]}"
        paths["mask_paths"] = [f"{base}/masks/{f}" for f in masks]
    return paths


def crab_entry(sample: dict[str, Any], files: dict[str, bytes], root: Path, video: str) -> dict[str, Any]:
    """Write one sample's media under root/<task>/ and return its Crab+ JSON entry."""
    task = sample["source"]
    task_dir = root / task
    if media_of(sample, "image"):
        media = _image_task_media(sample, files, task_dir)
    else:
        media = _video_task_media(sample, files, task_dir, video)
    entry = {
        "sample_id": sample["id"],
        "task_name": task,
        "split": sample["split"],
        "instruction": crab_instruction(sample["instruction"]),
        "output": sample["response"],
        **task_fields(sample),
        **media,
    }
    entry[OUTPUT_KEY.get(task, "label")] = sample["response"]
    return entry


README = """# AV-UIE v2 in the Crab+ layout (written by `avuie export --format crab-plus`)

Point the official Crab+ trainer's `data_root` at the folder that holds this `AVUIE_2/`.
`export.json` lists the entries per task and file. The mapping from avuie samples to these entries is
documented in avuie/export/crab.py; in short: one entry per sample, media named by the sample key under
`<task>/video/`, `<task>/audio/` (video tasks) or `<task>/<tree>/<key>/` (image tasks), and the assistant turn
(reasoning + tagged answer) under `output` and the key the loader reads. val split: {val_to}.
"""


def export_crab_plus(
    builds: list[Path], dest: Path, opts: ExportOptions, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Write DEST/AVUIE_2/<task>/{train,test,...}.json and the media; return counts per task and file."""
    root = dest / "AVUIE_2"
    out = JsonArrayFiles(lambda name: root / f"{name}.json")

    def work(item: tuple[dict[str, Any], dict[str, bytes]]) -> tuple[str | None, dict[str, Any] | None]:
        sample, files = item
        name = split_file(sample["split"], opts.val_to)
        if name is None:
            return None, None
        return f"{sample['source']}/{name}", crab_entry(sample, files, root, opts.video)

    try:
        for name, entry in run_parallel(
            iter_samples(builds, opts.splits, opts.sources), work, opts.workers, progress
        ):
            if name is not None:
                out.append(name, entry)
    finally:
        counts = out.close()
    summary = {"format": "crab-plus", "dest": str(dest), "val_to": opts.val_to, "files": counts}
    (root / "export.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    (root / "README.md").write_text(README.format(val_to=opts.val_to))
    return summary
