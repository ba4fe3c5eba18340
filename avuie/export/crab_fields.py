"""The task fields of a crab-plus entry: every key Crab+'s training and test loaders index, from the typed target.

Read from GeWu-Lab/Crab_Plus (commit 7ddc56d) `dataset/qwen2_5_omni/omni_dataset.py`: `OmniDataset`
(train.json, lines 117-970) and `OmniTestDataset` (test.json, 1272-2014). An entry carries the union of the two
loaders' keys, so it reads wherever `--val-to` sends it. Where the test loader builds its ground truth from
fields (a2v `correct_video`, ave `event`/`start_time`/`end_time`, arig `a_obj`/`top_left`/`bottom_right`, the
classes, avvp's verbatim `event`), the fields are chosen so that it builds exactly our Crab+-style answer
(`avuie.schemas.crab`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from avuie.schemas import TARGET_TYPES, render_answer
from avuie.schemas.crab import object_names

# The tasks OmniTestDataset loads (omni_dataset.py:1214-1231): each needs a test.json.
TEST_TASKS = frozenset(
    ("a2v", "v2a", "avqa", "avqa_thu", "ave", "avvp", "ms3", "s4", "ref_avs", "arig")
    + ("meld", "mafw", "dfew", "cremad", "ks", "ucf")
)
# The key OmniDataset reads as the assistant turn (every entry also carries `output`).
OUTPUT_KEY = {"ucf": "new_label", "ref_avs": "output"} | {
    t: "label_content" for t in ("ave", "unav", "avvp", "ms3", "s4", "arig", "avcap")
}
# The class key of each classification task (ks 231/1391, ucf 273/1433, meld 315/1478, mer24 357, others 399...).
CLASS_KEY = {"ks": "action", "ucf": "label", "meld": "Emotion", "mer24": "discrete"}


def video_id(sample: dict[str, Any]) -> str:
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
    for m in [m for m in sample["media"] if m["kind"] == "audio"][:1]:
        segments = m.get("segments") or []
        if m.get("start") is not None and (m.get("duration") or 0) <= 1.5:
            return min(max(int(round(m["start"])), 0), slots - 1)
        if len(segments) == 1:
            return min(max(int(round(segments[0][0])), 0), slots - 1)
    for m in [m for m in sample["media"] if m["kind"] == "image"]:
        digits = re.search(r"(\d+)$", Path(m.get("source_path") or "").stem)
        if digits:
            return min(max(int(digits.group(1)), 0), slots - 1)
    return 0


def ref_avs_fid(sample: dict[str, Any]) -> int:
    """Ref-AVS's mask folder number `fid` of the expression: from the raw mask path (`gt_mask/<vid>/fid_<fid>/`),
    else the number that ends the uid, else 0 (a null reference has no mask folder)."""
    for m in sample["media"]:
        found = re.search(r"fid_(\d+)", m.get("source_path") or "")
        if found:
            return int(found.group(1))
    tail = re.search(r"_(\d+)(?:_row\d+)?_f\d+$", sample["native_id"])
    return int(tail.group(1)) if tail else 0


def _segmentation_fields(sample: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    target = TARGET_TYPES[t["kind"]].model_validate(t)
    fields: dict[str, Any] = {"vid": video_id(sample), "uid": sample["native_id"]}
    if t["kind"] == "grounding":
        x1, y1, x2, y2 = t["box"]
        return fields | {"a_obj": t["label"], "top_left": [x1, y1], "bottom_right": [x2, y2]}
    fields["a_obj"] = object_names(target.groups)
    if t["kind"] == "referring_segmentation":  # 933-940 (train), 1975-1982 (test)
        fields |= {"fid": ref_avs_fid(sample), "description": t["expression"], "object": t["expression"]}
        fields["present"] = t["present"]
    return fields


def _matching_fields(t: dict[str, Any]) -> dict[str, Any]:
    first, second = t["candidate_labels"]
    if t["direction"] == "a2v":  # 131-138, 1285-1295
        return {"correct_video": t["answer_index"] + 1, "audio_event": t["query_label"]} | {
            "video1_event": first,
            "video2_event": second,
        }
    return {"correct_audio": t["answer_index"] + 1, "video_event": t["query_label"]} | {
        "audio1_event": first,
        "audio2_event": second,
    }


def _question_fields(sample: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    vid = video_id(sample)
    if t["kind"] == "open_qa":  # 524-529, 1646-1650
        return {"video_id": vid, "question_id": sample["native_id"], "type": t.get("question_type", "")} | {
            "question": t["question"],
            "answer": t["answer"],
        }
    return {  # 573-581, 1694-1701
        "id": sample["native_id"],
        "video_name": vid,
        "video_id": vid,
        "question_relation": "",
        "question_type": t.get("question_type", ""),
        "multi_choice": t["options"],
        "question_text": t["question"],
        "answer": t["options"][t["answer_index"]],
    }


def task_fields(sample: dict[str, Any]) -> dict[str, Any]:
    """The task-specific keys Crab+'s loaders index, filled from the typed target."""
    t, source = sample["target"], sample["source"]
    kind = t["kind"]
    if kind == "single_event":  # 624-628, 1747-1750, ground truth 1764
        return {"vid": video_id(sample), "event": t["label"], "start_time": t["start"], "end_time": t["end"]}
    if kind == "dense_events":  # 669-670
        return {"vid": video_id(sample)}
    if kind == "av_parsing":  # 711-714, 1791-1793; the test ground truth is `event` verbatim (1807)
        target = TARGET_TYPES[kind].model_validate(t)
        vid = video_id(sample)
        return {"vid": vid, "filename": vid, "event": render_answer(target, "crab", source)}
    if kind in ("open_qa", "multiple_choice"):
        return _question_fields(sample, t)
    if kind in ("segmentation", "referring_segmentation", "grounding"):
        return _segmentation_fields(sample, t)
    if kind == "caption":  # 893
        return {"video_id": video_id(sample)}
    if kind == "matching":
        return _matching_fields(t)
    if kind == "classification":
        return {CLASS_KEY.get(source, "emotion"): t["label"]}
    return {}
