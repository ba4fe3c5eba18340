"""`avuie export --format crab-plus`: the layout Crab+'s own code reads (GeWu-Lab/Crab_Plus, commit 7ddc56d).

Crab+'s loaders (`dataset/qwen2_5_omni/omni_dataset.py`: `OmniDataset` reads `AVUIE_2/<task>/train.json`,
`OmniTestDataset` `AVUIE_2/<task>/test.json`, lines 26-32) join media names onto `AVUIE_2/<task>/video/`,
`AVUIE_2/<task>/audio/` (video tasks) or `AVUIE_2/<task>/` itself (s4, ms3, arig, ref_avs; 91-96, 1246-1251).
Its SAM2 step (`seg/scripts/inference_3.py:355`, `inference_ref_3.py:256`) finds a frame's ground-truth mask
from the frame's path. docs/FIDELITY.md has the rules with their lines and the tests that hold them.

| what | where |
|---|---|
| task folder | the sample's `source` (the 19 `--source` names are Crab+'s task names) |
| split file | `train` -> train.json; `test*` (Ref-AVS test_s/u/n) -> test.json; `val` -> `--val-to`: `auto` (default) sends val to test.json for a task Crab+ evaluates whose export has no test split (avqa_thu: AVQA has no public test), else to its own val.json; `val`, `train`, `test` or `drop` for all |
| video | `video/<key>.mp4` (+ the JPEGs in `video/<key>/`): one video frame per sampled frame, so decord's `nframes` (10, 4 for emotion) takes every frame back; `--video frames` names the frame folder instead |
| audio | `audio/<key>.wav` (16 kHz mono, the sample's own audio: Crab+ cuts its tenths, MUSIC-AVQA windows or first 4 s itself) |
| image tasks | `AVS/v1s/<key>/` (s4, arig), `AVS/v1m/<key>/` (ms3), `REFAVS/media/<key>/` (ref_avs), each with `frames/<idx>.jpg` and `audio.wav`, as Crab+'s README lays them out |
| image-task audio | s4/ms3: 5 s, ref_avs: 10 s, silent but for the sample's second at the slot the loader cuts: `frame_idx` (val.json too: renamed test.json, it reads), except s4 in train.json (slot 0, omni_dataset.py:810); arig: its 5 s as is |
| masks | s4/ms3: `AVS/v1?/<key>/labels_rgb/<idx>.png` (the frame path with `/frames/` -> `/labels_rgb/`, inference_3.py:355): the union of the sounding objects; ref_avs: `REFAVS/gt_mask/<key>/fid_<fid>/0000<idx>.png` (inference_ref_3.py:256), empty when the object is absent; our per-object masks in `<key>/masks/` |
| keys | the union of both loaders' keys for the task (`avuie/export/crab_fields.py`): `image_path` and `visual_path`, `idx` and `frame_idx`, ref_avs `object` and `description`, arig `top_left`/`bottom_right`... |
| assistant turn | the sample's `response` (reasoning + final answer) under `output` and under the key the training loader reads (`label_content`, `label`, `new_label` for ucf) |
| instruction | ours, with Crab markers `<video_start><video><video_end>` etc. (Crab+'s loaders write their own prompts) |
"""

from __future__ import annotations

import io
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
from avuie.export.crab_fields import OUTPUT_KEY, TEST_TASKS, frame_index, ref_avs_fid, task_fields
from avuie.schemas.crab_media import CRAB_MEDIA, audio_slot

IMAGE_TREES = {"s4": "AVS/v1s", "ms3": "AVS/v1m", "arig": "AVS/v1s", "ref_avs": "REFAVS/media"}
VAL_TARGETS = ("auto", "val", "train", "test", "drop")
MARKERS = {
    "<video>": "<video_start><video><video_end>",
    "<audio>": "<audio_start><audio><audio_end>",
    "<image>": "<image_start><image><image_end>",
}
_MARKER_RE = re.compile("|".join(re.escape(m) for m in MARKERS))


def crab_instruction(text: str) -> str:
    """Our instruction with the media markers in Crab's form (`<video>` -> `<video_start><video><video_end>`)."""
    return _MARKER_RE.sub(lambda m: MARKERS[m.group(0)], text)


def split_file(split: str, val_to: str, task: str = "", tested: frozenset[str] = frozenset()) -> str | None:
    """The JSON file name (without .json) a sample's split goes to, or None when it is dropped.

    `val_to="auto"`: val goes to test.json for a task Crab+ evaluates (`TEST_TASKS`) that is not in `tested`
    (the tasks whose export has a test split), else to val.json.
    """
    if split == "train":
        return "train"
    if split.startswith("test"):
        return "test"
    if split != "val":
        return split
    if val_to == "auto":
        return "test" if task in TEST_TASKS and task not in tested else "val"
    return None if val_to == "drop" else val_to


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


def union_mask_png(sample: dict[str, Any], files: dict[str, bytes]) -> bytes:
    """One 0/255 PNG of every sounding object's mask united (all black when the sample has none)."""
    from PIL import Image

    from avuie.media.images import encode_mask_png

    masks = [np.asarray(Image.open(io.BytesIO(files[f])).convert("L")) > 0 for m in media_of(sample, "mask")
             for f in m["files"]]  # fmt: skip
    if not masks:
        image = media_of(sample, "image")[0]["files"][0]
        w, h = Image.open(io.BytesIO(files[image])).size
        return encode_mask_png(np.zeros((h, w), dtype=bool))
    return encode_mask_png(np.logical_or.reduce(masks))


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


def _mask_path(task: str, sample: dict[str, Any], image: str, idx: int) -> str | None:
    """Where Crab+'s SAM2 step looks for the frame's ground-truth mask (relative to the task folder)."""
    if task in ("s4", "ms3"):  # inference_3.py:355
        return image.replace("/frames/", "/labels_rgb/").replace(".jpg", ".png")
    if task == "ref_avs":  # inference_ref_3.py:256 (on the full path; our paths hold one /media/)
        fid = ref_avs_fid(sample)
        return (
            image.replace("/media/", "/gt_mask/")
            .replace(".jpg", ".png")
            .replace("/frames/", f"/fid_{fid}/0000")
        )
    return None


def _image_task_media(
    sample: dict[str, Any], files: dict[str, bytes], task_dir: Path, json_name: str
) -> dict[str, Any]:
    task = sample["source"]
    spec = CRAB_MEDIA[task]
    idx = frame_index(sample, spec.parts)
    base = f"{IMAGE_TREES[task]}/{sample['key']}"
    image = f"{base}/frames/{idx}.jpg"
    write_file(task_dir / image, files[media_of(sample, "image")[0]["files"][0]])
    paths: dict[str, Any] = {"image_path": image, "visual_path": image, "idx": idx, "frame_idx": idx}
    for m in media_of(sample, "audio")[:1]:
        wav = files[m["files"][0]]
        if spec.audio == "slot":
            wav = slotted_audio(wav, m, spec.parts, audio_slot(task, json_name, idx))
        paths["audio_path"] = f"{base}/audio.wav"
        write_file(task_dir / paths["audio_path"], wav)
    mask = _mask_path(task, sample, image, idx)
    if mask is not None:
        write_file(task_dir / mask, union_mask_png(sample, files))
        paths["mask_path"] = mask
    own = [f for m in media_of(sample, "mask") for f in m["files"]]
    for f in own:
        write_file(task_dir / base / "masks" / f, files[f])
    paths["mask_paths"] = [f"{base}/masks/{f}" for f in own]
    return paths


def crab_entry(
    sample: dict[str, Any], files: dict[str, bytes], root: Path, video: str, json_name: str = "train"
) -> dict[str, Any]:
    """Write one sample's media under root/<task>/ and return its Crab+ JSON entry for `<json_name>.json`."""
    task = sample["source"]
    task_dir = root / task
    if task in IMAGE_TREES:
        media = _image_task_media(sample, files, task_dir, json_name)
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

Point Crab+'s `data_root` at the folder that holds this `AVUIE_2/`. `export.json` lists the entries per task and
file. One entry per sample, media named by the sample key under `<task>/video/`, `<task>/audio/` (video tasks) or
`<task>/AVS/v1s|v1m/<key>/`, `<task>/REFAVS/media/<key>/` (image tasks, ground-truth masks where Crab+'s SAM2
step looks for them); the assistant turn (reasoning + final answer) under `output` and the key the loader reads.
val split: {val_to}.
"""


def _tested_tasks(builds: list[Path], opts: ExportOptions) -> frozenset[str]:
    """The tasks whose export holds a test split (for `--val-to auto`)."""
    from avuie.catalog.db import open_catalog

    rows = open_catalog(builds).rows("SELECT DISTINCT source, split FROM samples")
    rows = [r for r in rows if not opts.sources or r["source"] in opts.sources]
    rows = [r for r in rows if not opts.splits or r["split"] in opts.splits]
    return frozenset(r["source"] for r in rows if str(r["split"]).startswith("test"))


def export_crab_plus(
    builds: list[Path], dest: Path, opts: ExportOptions, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Write DEST/AVUIE_2/<task>/{train,test,...}.json and the media; return counts per task and file."""
    root = dest / "AVUIE_2"
    out = JsonArrayFiles(lambda name: root / f"{name}.json")
    tested = _tested_tasks(builds, opts) if opts.val_to == "auto" else frozenset()

    def work(item: tuple[dict[str, Any], dict[str, bytes]]) -> tuple[str | None, dict[str, Any] | None]:
        sample, files = item
        name = split_file(sample["split"], opts.val_to, sample["source"], tested)
        if name is None:
            return None, None
        return f"{sample['source']}/{name}", crab_entry(sample, files, root, opts.video, name)

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
