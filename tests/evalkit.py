"""Eval test kit: a small shard build of every target kind (tar + manifest) and prediction files."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from avuie.schemas import (
    AVParsingTarget,
    CaptionTarget,
    ClassificationTarget,
    DenseEventsTarget,
    GroundingTarget,
    MatchingTarget,
    MediaItem,
    MultipleChoiceTarget,
    ObjectGroup,
    OpenQATarget,
    Provenance,
    ReferringSegmentationTarget,
    Sample,
    SegmentationTarget,
    SingleEventTarget,
    make_key,
    render_answer,
)
from avuie.schemas.classes import AVE_CLASSES, AVQA_ANSWERS, LLP_CLASSES, REFAVS_OBJECTS
from avuie.schemas.classes_clips import KINETICS_SOUNDS_CLASSES, MELD_EMOTIONS
from avuie.schemas.vocab import AVS_CLASSES
from PIL import Image

N = 6
FAMILY = {"ave": "event_localization", "avvp": "event_localization", "unav": "event_localization",
          "avqa": "question_answering", "avqa_thu": "question_answering", "s4": "segmentation",
          "ms3": "segmentation", "ref_avs": "segmentation", "arig": "segmentation", "avcap": "captioning",
          "a2v": "cross_modal_matching", "ks": "action_recognition", "meld": "emotion_recognition"}  # fmt: skip
CAPTIONS = ["a man plays a red guitar on a stage", "two dogs bark at a passing car in the rain",
            "a woman sings while a piano plays softly", "children laugh and clap in a classroom",
            "a chainsaw cuts a tree as birds sing", "an engine roars as a motorcycle speeds away"]  # fmt: skip


def group(i: int, j: int) -> ObjectGroup:
    x, y = 10 + 30 * j + i, 20 + 5 * j
    box = (x, y, x + 25, y + 40)
    return ObjectGroup(label=AVS_CLASSES[i + j], box=box, points=[(x + 2, y + 2), (x + 10, y + 20), (x + 20, y + 30)],
                       mask=f"mask_{j}.png")  # fmt: skip


def target(source: str, i: int):
    if source == "ave":
        return SingleEventTarget(label=AVE_CLASSES[i], start=i, end=i + 3)
    if source == "avvp":
        return AVParsingTarget(
            audio={LLP_CLASSES[i]: [(0, 4 + i)]}, visual={LLP_CLASSES[i]: [(2, 8)], "Dog": [(0, 2)]}
        )
    if source == "unav":
        return DenseEventsTarget(events=[{"label": "dog barking", "start": 2.0 * i, "end": 2.0 * i + 4.5},
                                         {"label": "man speaking", "start": 30.0, "end": 30.0 + i + 1}], duration=60)  # fmt: skip
    if source == "avqa":
        qtype = "Audio/Counting" if i % 2 else "Audio-Visual/Temporal"
        return OpenQATarget(question="Which?", answer=AVQA_ANSWERS[i], question_type=qtype)
    if source == "avqa_thu":
        return MultipleChoiceTarget(
            question="What?", options=["cat", "dog", "car", "bird"], answer_index=i % 4
        )
    if source in ("s4", "ms3"):
        return SegmentationTarget(groups=[group(i, j) for j in range(1 if source == "s4" else 2)])
    if source == "ref_avs":
        present = i % 2 == 0
        groups = [group(i, 0).model_copy(update={"label": REFAVS_OBJECTS[i]})] if present else []
        return ReferringSegmentationTarget(expression="the loud one", present=present, groups=groups)
    if source == "arig":
        return GroundingTarget(label=AVS_CLASSES[i], box=(5 * i, 10, 5 * i + 60, 90))
    if source == "avcap":
        return CaptionTarget(caption=CAPTIONS[i])
    if source == "a2v":
        labels = ("dog", "cat") if i % 2 == 0 else ("cat", "dog")
        return MatchingTarget(direction="a2v", answer_index=i % 2, query_label="dog", candidate_labels=labels)
    if source == "ks":
        return ClassificationTarget(label=KINETICS_SOUNDS_CLASSES[i])
    return ClassificationTarget(label=MELD_EMOTIONS[i % 7])


def png(mask: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, format=fmt)
    return buf.getvalue()


def make_sample(source: str, i: int) -> tuple[Sample, dict[str, bytes]]:
    t = target(source, i)
    split = ("test_s" if i % 2 == 0 else "test_n") if source == "ref_avs" else "test"
    frame = png(np.full((224, 224, 3), 90, np.uint8), "JPEG")
    files: dict[str, bytes] = {"audio.wav": b"RIFF"}
    media = [MediaItem(kind="audio", role="audio", files=["audio.wav"])]
    if source in ("s4", "ms3", "ref_avs", "arig"):
        media.append(MediaItem(kind="image", role="image", files=["image.jpg"]))
        files["image.jpg"] = frame
        for g in getattr(t, "groups", []):
            mask = np.zeros((224, 224), np.uint8)
            x1, y1, x2, y2 = g.box
            mask[y1 : y2 + 1, x1 : x2 + 1] = 255
            media.append(MediaItem(kind="mask", role=g.mask[:-4], files=[g.mask]))
            files[g.mask] = png(mask)
    else:
        for prefix in ("", "v1_") if source == "a2v" else ("",):
            media.append(
                MediaItem(kind="video_frames", role=f"video{prefix[:2]}", files=[f"{prefix}frame_00.jpg"])
            )
            files[f"{prefix}frame_00.jpg"] = frame
    sid = f"{source}/{split}/{i}"
    answer = render_answer(t, "tags", source)  # one box per object (the Crab+ style: test_eval_styles.py)
    sample = Sample(id=sid, key=make_key(sid), source=source, family=FAMILY[source], split=split, native_id=str(i),
                    media=media, instruction="<video> <audio> Answer.", target=t, answer=answer,
                    reasoning="I look and listen.", response=f"I look and listen. {answer}",
                    provenance=Provenance(annotation_file="a.txt", builder=source, builder_version="1"),
                    license="test")  # fmt: skip
    return sample, files


def write_build(root: Path, sources=tuple(FAMILY), n: int = N) -> list[Sample]:
    """One shard and manifest per source under `root` (`n` samples each, split test; ref_avs test_s/test_n);
    returns the samples written."""
    samples, rows = [], []
    for source in sources:
        out = root / source
        tar_path = out / "shards" / "test" / f"{source}-test-00000.tar"
        tar_path.parent.mkdir(parents=True)
        with tarfile.open(tar_path, "w") as tar:
            for i in range(n):
                sample, files = make_sample(source, i)
                members = {"json": sample.model_dump_json().encode(), **files}
                for suffix, data in members.items():
                    info = tarfile.TarInfo(f"{sample.key}.{suffix}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                samples.append(sample)
                rows.append({"id": sample.id, "key": sample.key, "source": source, "split": sample.split,
                             "shard": str(tar_path.relative_to(out))})  # fmt: skip
        mine = [r for r in rows if r["source"] == source]
        pq.write_table(pa.Table.from_pylist(mine), out / "manifest.parquet")
    return samples


def write_preds(path: Path, samples: list[Sample], edit=lambda s: s.response) -> Path:
    """A predictions JSONL: one {"id", "response"} per sample (`edit(sample)` gives the response)."""
    path.write_text("".join(json.dumps({"id": s.id, "response": edit(s)}) + "\n" for s in samples))
    return path
