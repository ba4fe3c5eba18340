"""Crab+'s own reading rules, written from their definitions (GeWu-Lab/Crab_Plus, commit 7ddc56d), not vendored.

What `OmniDataset` (train.json) and `OmniTestDataset` (test.json) in `dataset/qwen2_5_omni/omni_dataset.py` index
per task, where `_get_media_path` looks, what the test loader builds as ground truth, how
`dataset/qwen_omni_utils/v2_5/audio_process.py` cuts the audio, and how `seg/scripts/inference_3.py` /
`inference_ref_3.py` read a prediction and find the ground-truth mask. Line numbers are Crab+'s.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

VIDEO_MEDIA = {"video_path": "video", "video1_path": "video", "video2_path": "video"} | {
    k: "audio" for k in ("audio_path", "audio1_path", "audio2_path")
}
IMAGE_TASKS = ("ms3", "s4", "arig", "ref_avs")  # media_type None: joined onto the task folder

# Every key each loader indexes, per task (OmniDataset / OmniTestDataset).
TRAIN_KEYS: dict[str, tuple[str, ...]] = {
    "a2v": ("video1_path", "video2_path", "audio_path", "correct_video", "audio_event", "video1_event")
    + ("video2_event", "label"),  # 131-138
    "v2a": ("video_path", "audio1_path", "audio2_path", "correct_audio", "audio1_event", "video_event")
    + ("audio2_event", "label"),  # 180-187
    "ks": ("video_path", "audio_path", "action", "label"),  # 229-232
    "ucf": ("video_path", "audio_path", "new_label", "label"),  # 270-273
    "meld": ("video_path", "audio_path", "label", "Emotion"),  # 312-315
    "mer24": ("video_path", "audio_path", "label", "discrete"),  # 354-357
    "cremad": ("video_path", "audio_path", "label", "emotion"),  # 396-399
    "mafw": ("video_path", "audio_path", "label", "emotion"),  # 438-441
    "dfew": ("video_path", "audio_path", "label", "emotion"),  # 480-483
    "avqa": ("video_path", "audio_path", "video_id", "question_id", "type", "question", "answer", "label"),
    "avqa_thu": ("video_path", "audio_path", "id", "video_name", "video_id", "question_relation")
    + ("question_type", "multi_choice", "question_text", "answer", "label"),  # 571-581
    "ave": ("video_path", "audio_path", "event", "vid", "start_time", "end_time", "label_content"),  # 622-628
    "unav": ("video_path", "audio_path", "vid", "label_content"),  # 667-670
    "avvp": ("video_path", "audio_path", "filename", "vid", "event", "label_content"),  # 709-714
    "ms3": ("image_path", "audio_path", "vid", "uid", "a_obj", "frame_idx", "label_content"),  # 753-759
    "s4": ("image_path", "audio_path", "vid", "uid", "a_obj", "label_content"),  # 800-806
    "arig": ("image_path", "audio_path", "a_obj", "label_content"),  # 845-849
    "avcap": ("video_path", "audio_path", "video_id", "label_content"),  # 891-894
    "ref_avs": ("image_path", "audio_path", "vid", "fid", "uid", "idx", "description", "output"),  # 933-940
}
TEST_KEYS: dict[str, tuple[str, ...]] = {
    "a2v": TRAIN_KEYS["a2v"][:4],  # 1285-1289
    "v2a": TRAIN_KEYS["v2a"][:4],  # 1337-1341
    "ks": ("video_path", "audio_path", "action"),  # 1389-1391
    "ucf": ("video_path", "audio_path", "label"),  # 1431-1433
    "meld": ("video_path", "audio_path", "Emotion"),  # 1476-1478
    "cremad": ("video_path", "audio_path", "emotion"),  # 1518-1520
    "mafw": ("video_path", "audio_path", "emotion"),  # 1560-1562
    "dfew": ("video_path", "audio_path", "emotion"),  # 1602-1604
    "avqa": TRAIN_KEYS["avqa"][:-1],  # 1644-1650
    "avqa_thu": TRAIN_KEYS["avqa_thu"][:-1],  # 1692-1701
    "ave": TRAIN_KEYS["ave"][:-1],  # 1745-1750
    "avvp": TRAIN_KEYS["avvp"][:-1],  # 1789-1793
    "ms3": ("visual_path", "audio_path", "vid", "uid", "a_obj", "frame_idx"),  # 1832-1837
    "s4": ("visual_path", "audio_path", "vid", "uid", "a_obj", "frame_idx"),  # 1878-1883
    "arig": ("visual_path", "audio_path", "top_left", "bottom_right", "a_obj", "frame_idx"),  # 1923-1930
    "ref_avs": (
        "visual_path",
        "audio_path",
        "object",
        "split",
        "vid",
        "uid",
        "fid",
        "frame_idx",
    ),  # 1975-1982
}
TRAIN_OUTPUT = {"ucf": "new_label", "ref_avs": "output"} | {  # the assistant turn
    t: "label_content" for t in ("ave", "unav", "avvp", "ms3", "s4", "arig", "avcap")
}


def media_path(data_root: str, task: str, key: str, filename: str) -> str:
    """`_get_media_path` (91-96, 1246-1251): image tasks join onto the task folder, video tasks onto video|audio."""
    kind = None if task in IMAGE_TASKS else VIDEO_MEDIA.get(key)
    parts = [data_root, "AVUIE_2", task] + ([kind] if kind else []) + [filename]
    return os.path.join(*parts)


def media_keys(task: str, keys: tuple[str, ...]) -> list[str]:
    """The keys of `keys` that name media files."""
    return [k for k in keys if k in VIDEO_MEDIA or k in ("image_path", "visual_path")]


def train_audio_idx(task: str, entry: dict[str, Any]) -> int | None:
    """The `idx` OmniDataset puts on the audio element: ms3 frame_idx (764), s4 0 (810), ref_avs idx (947)."""
    return {"ms3": entry.get("frame_idx"), "s4": 0, "ref_avs": entry.get("idx")}.get(task)


def arig_train_idx(image_path: str) -> int:
    """OmniDataset's arig frame index: the image file name without its 4-character extension (848)."""
    return int(image_path.split("/")[-1][:-4])


def test_ground_truth(task: str, e: dict[str, Any]) -> str:
    """The `output` OmniTestDataset stores as the ground truth of an entry."""
    if task in ("a2v", "v2a"):  # 1289-1295, 1341-1347 ("one"/"two" is overwritten by the number)
        return f"<answer>{e['correct_video' if task == 'a2v' else 'correct_audio']}</answer>."
    if task == "ks":
        return f"<answer>{e['action']}</answer>"  # 1392
    if task == "ucf":
        return f"<answer>{e['label'].lower()}</answer>"  # 1433-1435
    if task in ("meld", "cremad", "mafw", "dfew"):  # 1479, 1521, 1563, 1605
        return f"<answer>{e['Emotion' if task == 'meld' else 'emotion']}</answer>."
    if task in ("avqa", "avqa_thu"):
        return e["answer"]  # 1667, 1701
    if task == "ave":
        return f"event:{e['event']} start_time:{e['start_time']} end_time:{e['end_time']}"  # 1764
    if task == "avvp":
        return e["event"]  # 1807
    if task in ("ms3", "s4"):
        return f"The object making the sound in the video is {e['a_obj']}."  # 1853, 1898
    if task == "arig":  # 1928-1932
        (x1, y1), (x2, y2) = e["top_left"], e["bottom_right"]
        return f"The sounding object is {e['a_obj']}. Its coordinates are <obj>({x1},{y1})({x2},{y2})</obj>."
    if task == "ref_avs":
        return f"{e['object']}"  # 1984
    raise KeyError(task)


def frame_indices(total: int, nframes: int) -> list[int]:
    """The frames Crab+'s reader takes (vision_process.py:220, 317): `linspace(0, total - 1, nframes)`, rounded
    half to even (torch.round)."""
    if nframes == 1:
        return [0]
    step = (total - 1) / (nframes - 1)
    return [round(i * step) for i in range(nframes)]


def process_audio_by_task(audio: np.ndarray, sr: int, task: str, idx: int | None) -> np.ndarray:
    """audio_process.py:98-223: pad to 1 s, then cut per task."""
    if len(audio) < sr:
        audio = np.concatenate((audio, np.zeros(sr - len(audio))))
    length = len(audio)
    if task == "avqa":  # 110-127
        nps, segs = int(length / 60), []
        for i in range(0, 60, 6):
            seg = audio[int(max(0, i - 0.5) * nps) : int(nps * min(60, i + 1.5))]
            if i - 0.5 < 0:
                seg = np.concatenate((np.zeros(2 * nps - len(seg)), seg))
            if i + 1.5 > 60:
                seg = np.concatenate((seg, np.zeros(2 * nps - len(seg))))
            segs.append(seg)
        return np.concatenate(segs)
    if task in ("mer24", "meld", "dfew", "mafw", "cremad"):  # 146-162
        segs = [
            audio[i * sr : (i + 1) * sr] if len(audio) > (i + 1) * sr else audio[i * sr :] for i in range(4)
        ]
        return np.concatenate([np.concatenate((s, np.zeros(sr - len(s)))) for s in segs])
    if task in ("s4", "ms3", "ref_avs"):  # 182-218
        tot = 10 if task == "ref_avs" else 5
        nps, i = int(length / tot), idx or 0
        seg = audio[int(max(0, i) * nps) : int(nps * min(tot, i + 1))]
        return np.concatenate((seg, np.zeros(nps - len(seg)))) if len(seg) < nps else seg[:nps]
    tot = 5 if task == "arig" else 10  # 129-144, 164-180: equal parts of the whole file
    nps = int(length / tot)
    segs = [audio[i * nps : (i + 1) * nps] for i in range(tot)]
    return np.concatenate([np.concatenate((s, np.zeros(nps - len(s)))) for s in segs])


def seg_mask_path(image_path: str) -> str:
    """inference_3.py:355: the frame's path with /frames/ -> /labels_rgb/ and .jpg -> .png."""
    return image_path.replace("/frames/", "/labels_rgb/").replace(".jpg", ".png")


def ref_mask_path(image_path: str, fid: Any) -> str:
    """inference_ref_3.py:256."""
    return (
        image_path.replace("/media/", "/gt_mask/")
        .replace(".jpg", ".png")
        .replace("/frames/", f"/fid_{fid}/0000")
    )


COORD = re.compile(r"\[(\d+),(\d+)(?:,(\d+),(\d+))?\]")  # inference_3.py:39, inference_ref_3.py:45


def sam2_prompt(predict: str, referring: bool = False) -> tuple[list[int] | None, list[list[int]]] | None:
    """The box and points Crab+'s SAM2 step takes from a prediction (None: it takes nothing)."""
    predict = predict.split("</s>", 1)[0]
    if referring and ("<answer>false</answer>" in predict or "<answer>true</answer>" not in predict):
        return None  # inference_ref_3.py:39-43
    found = COORD.findall(predict)
    boxes = [[int(v) for v in m] for m in found if m[2] and m[3]]
    points = [[int(m[0]), int(m[1])] for m in found if not (m[2] and m[3])][-3:]  # the last three points
    box = boxes[0] if boxes else None  # the first box
    if referring:  # inference_ref_3.py:45-67: a box, points, or both
        return None if box is None and not points else (box, points)
    if box is not None and points:  # inference_3.py:314-326: the box with up to three points
        return box, points
    return (None, points) if len(points) >= 3 else None  # three points without a box; else insufficient


def valid_prompt(
    box: list[int] | None, points: list[list[int]], size: int = 224, referring: bool = False
) -> bool:
    """validate_coordinates (inference_3.py:62-74, inference_ref_3.py:73-86): box ordered and inside the 224
    frame, points inside it; inference_3 also needs a point, inference_ref_3 a box or a point."""
    if box and (
        box[0] < 0 or box[1] < 0 or box[2] >= size or box[3] >= size or box[0] >= box[2] or box[1] >= box[3]
    ):
        return False
    if not points and (not referring or box is None):
        return False
    return all(0 <= x < size and 0 <= y < size for x, y in points)


def load_mask(path: str, size: int = 224) -> np.ndarray:
    """load_mask (inference_3.py:87-96): greyscale, nearest-neighbour to 224x224, foreground > 0."""
    from PIL import Image

    mask = Image.open(path).convert("L").resize((size, size), Image.Resampling.NEAREST)
    return (np.array(mask) > 0).astype(np.uint8)
