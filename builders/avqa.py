"""MUSIC-AVQA (Li et al., CVPR 2022): open questions about ~60 s music performances.

Release layout (docs/SOURCES.md): the raw root is the repository root of GeWu-Lab/MUSIC-AVQA, the folder
holding `data/json_update/` (the corrected annotations, preferred) and/or `data/json/` (the original ones);
`data/` itself is accepted as the root too:

    data/json_update/avqa-{train,val,test}.json     a JSON list of question objects (pretty-printed)
    data/json/avqa-{train,val,test}.json            the original release (duplicated question ids)
    MUSIC-AVQA-videos-Real/<video_id>.mp4           the real videos (8-digit ids, e.g. 00000093)
    MUSIC-AVQA-videos-Synthetic/<video_id>.mp4      the synthetic videos (ids va..., sa..., ev..., vv..., es...)

Videos are looked up, in this order, in the folders `MUSIC-AVQA-videos-Real`, `MUSIC-AVQA-videos-Synthetic`,
`MUCIS-AVQA-videos-Synthetic` (the spelling of the official synthetic zip), `videos`, `video`, each beside `data/`
or inside it; a video found in none is reported missing at the first existing folder's path.

A question object: `video_id`, `question_id`, `type` (a JSON *string*: `["Audio-Visual", "Temporal"]`),
`question_content` with placeholders `<Object> <LR> <FL> <TH> <LRer> <LL> <BA>`, `templ_values` (a JSON string
list, filled into the placeholders left to right; the counts must match), `question_deleted`, and the answer
under the misspelled key `anser` (`answer` is accepted too). The full-width `？` becomes `?`.

One sample per question: native id `<video_id>_q<question_id>` (`<video_id>_r<position>` when an entry has no
`question_id`, as some MUSIC-AVQA-v2.0 files). The question type is kept as "Modality/Type"; the answer goes
through the 42-word vocabulary (`canonical("avqa", ...)`). Media: the whole clip, 10 frames, 16 kHz audio
with ten 2 s windows centred 0.5 s after every 6th second (0-1.5, 5.5-7.5, ..., 53.5-55.5), as Crab+ feeds its
model (`avuie.schemas.crab_media.avqa_windows`; Crab+ pads the first window with 0.5 s of silence before the clip).

Rejects: `malformed_entry` (not an object, a missing key, a `type`/`templ_values` that is not JSON),
`template_mismatch` (placeholders and values differ in number), `question_deleted`, `unknown_answer`,
`malformed_json` (a whole file). The original `json/` files repeat 27 val and 55 test question ids, with
conflicting answers: the framework keeps the first occurrence and rejects the others as `duplicate_id`.

Parameters: `annotations` = `json_update` (default) or `json`. With the default and no `data/json_update/`
folder, `data/json/` is used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avuie.schemas import OpenQATarget, TaskFamily, canonical
from avuie.schemas.crab_media import avqa_windows

from .base import Builder, BuilderError, Record, Reject, VideoMedia, error_text, register
from .instructions import instruction

SPLITS = ("train", "val", "test")
ANNOTATION_SETS = ("json_update", "json")
VIDEO_DIRS = (
    "MUSIC-AVQA-videos-Real",
    "MUSIC-AVQA-videos-Synthetic",
    "MUCIS-AVQA-videos-Synthetic",
    "videos",
    "video",
)
AUDIO_WINDOWS = [(max(0.0, s), e) for s, e in avqa_windows()]  # the first starts at the clip
PLACEHOLDER = re.compile(r"<[A-Za-z]+>")


def avqa_data_dir(raw: Path) -> Path:
    """The folder holding json_update/ or json/: `raw/data` or `raw`; BuilderError when neither has them."""
    for cand in (raw / "data", raw):
        if any((cand / a).is_dir() for a in ANNOTATION_SETS):
            return cand
    raise BuilderError(f"{raw} holds no MUSIC-AVQA release (expected data/json_update/ or data/json/)")


def json_strings(value: Any, what: str) -> list[str]:
    """A list of strings from a JSON-string field (or an already decoded list); ValueError otherwise."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{what} {value!r} is not a JSON list") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} {value!r} is not a list of strings")
    return value


def fill_question(template: str, values: list[str]) -> str:
    """Fill the placeholders of a question left to right; ValueError when their number differs from the values."""
    slots = PLACEHOLDER.findall(template)
    if len(slots) != len(values):
        raise ValueError(f"{len(slots)} placeholders {slots} but {len(values)} values {values}")
    it = iter(values)
    text = PLACEHOLDER.sub(lambda _m: next(it), template)
    return " ".join(text.replace("？", "?").split())


class VideoIndex:
    """Where each video is: one directory listing per candidate folder, looked up by `<video_id>.mp4`."""

    def __init__(self, data: Path) -> None:
        roots = [data.parent, data] if data.name == "data" else [data]
        self.dirs = [r / d for d in VIDEO_DIRS for r in roots if (r / d).is_dir()]
        self._names = [{p.name for p in d.iterdir()} for d in self.dirs]
        self.default = self.dirs[0] if self.dirs else roots[0] / VIDEO_DIRS[0]

    def path(self, video_id: str) -> Path:
        """The video file of an id (the default folder's path when no folder holds it)."""
        name = f"{video_id}.mp4"
        for d, names in zip(self.dirs, self._names, strict=True):
            if name in names:
                return d / name
        return self.default / name


def load_json_list(path: Path) -> list[Any]:
    """The JSON list of a file (UTF-8 with or without BOM); ValueError when it is not a JSON list."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ValueError(f"{path.name} holds a {type(data).__name__}, not a list of questions")
    return data


@register
class AvqaBuilder(Builder):
    """MUSIC-AVQA open question answering: one sample per question."""

    name = "avqa"
    parameters = ("annotations",)
    raw_aliases = ("music_avqa", "MUSIC-AVQA")
    family = TaskFamily.question_answering
    license = "MIT (LICENSE file of GeWu-Lab/MUSIC-AVQA; its README says GPL-3.0); videos research use"
    layout = "data/json_update/avqa-{train,val,test}.json, MUSIC-AVQA-videos-{Real,Synthetic}/<video_id>.mp4"
    description = "~60 s music performance + question; an open answer from a 42-word vocabulary"

    def annotation_dir(self, data: Path) -> Path:
        """The annotation folder chosen by the `annotations` parameter (json_update by default)."""
        wanted = self.params.get("annotations")
        if wanted is not None and wanted not in ANNOTATION_SETS:
            raise BuilderError(f"avqa: annotations must be one of {ANNOTATION_SETS}, not {wanted!r}")
        folder = data / (wanted or "json_update")
        if not folder.is_dir() and wanted is None:
            folder = data / "json"
        if not folder.is_dir():
            raise BuilderError(f"avqa: {folder} does not exist")
        return folder

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield one record (or reject) per question of avqa-{train,val,test}.json."""
        data = avqa_data_dir(Path(raw))
        folder = self.annotation_dir(data)
        files = {s: folder / f"avqa-{s}.json" for s in SPLITS if (folder / f"avqa-{s}.json").exists()}
        if not files:
            raise BuilderError(f"avqa: {folder} has none of avqa-train.json, avqa-val.json, avqa-test.json")
        videos = VideoIndex(data)
        for split, path in files.items():
            fname = f"{folder.name}/{path.name}"
            try:
                entries = load_json_list(path)
            except ValueError as exc:
                yield Reject(split, fname, "malformed_json", str(exc), "", fname, None)
                continue
            for pos, item in enumerate(entries, start=1):
                yield self._record(split, fname, pos, item, videos)

    def _record(self, split: str, fname: str, pos: int, item: Any, videos: VideoIndex) -> Record | Reject:
        entry = f"{fname}:{pos}"

        def reject(reason: str, detail: str, native_id: str = "") -> Reject:
            return Reject(split, entry, reason, detail, native_id, fname, pos)

        if not isinstance(item, dict):
            return reject("malformed_entry", f"entry is a {type(item).__name__}, not an object")
        answer_raw = item.get("anser", item.get("answer"))
        missing = [k for k in ("video_id", "question_content", "type") if not item.get(k)]
        if missing or answer_raw in (None, ""):
            return reject("malformed_entry", f"missing {', '.join(missing) or 'anser'}")
        vid = str(item["video_id"]).strip()
        qid = item.get("question_id")
        native_id = f"{vid}_q{qid}" if qid not in (None, "") else f"{vid}_r{pos}"
        try:
            qtype = json_strings(item["type"], "type")
            question = fill_question(
                str(item["question_content"]), json_strings(item.get("templ_values", "[]"), "templ_values")
            )
        except ValueError as exc:
            reason = "template_mismatch" if "placeholders" in str(exc) else "malformed_entry"
            return reject(reason, str(exc), native_id)
        if str(item.get("question_deleted", 0)).strip() not in ("0", "", "False", "false"):
            return reject("question_deleted", f"question {qid} is marked deleted", native_id)
        try:
            answer = canonical("avqa", str(answer_raw))
        except ValueError as exc:
            return reject("unknown_answer", str(exc), native_id)
        try:
            target = OpenQATarget(question=question, answer=answer, question_type="/".join(qtype))
        except ValueError as exc:
            return reject("invalid_target", error_text(exc), native_id)
        video = VideoMedia(path=videos.path(vid), num_frames=10, audio_windows=AUDIO_WINDOWS)
        return Record(
            native_id=native_id,
            split=split,
            entry=entry,
            instruction=instruction("avqa", question=question),
            media=[video],
            target=target,
            context={"video_id": vid, "question_id": qid, "question_template": item["question_content"]},
            annotation_file=fname,
            annotation_row=pos,
        )
