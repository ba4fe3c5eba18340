"""AVQA (Yang et al., ACM MM 2022): multiple-choice questions about 10 s VGGSound clips.

Release layout (docs/SOURCES.md; the official preprocessing reads these keys): the raw root holds the two
question files and the clips, as the dataset site and AlyssaYoung/AVQA lay them out:

    train_qa.json, val_qa.json      (at the root, or in data/, data/json/ or annotations/)
    data/video/<video_name>.mp4     (also accepted: video/, videos/, data/videos/)

A question file is a JSON list of objects (an object keyed by question id is accepted too) with
`question_text`, `multi_choice` (the four option strings), `answer` (an integer index into `multi_choice`;
a digit string is accepted), `video_name` (`<ytid>_<start:06d>`, e.g. `-HG3Omg_89c_000030`), `video_id`
(an integer of video_map.json), `question_type` (`Which`, `Come From`, `Happening`, `Where`, `Why`,
`Before Next`, `When`, `Used For`) and optionally `id`.

Splits: `train_qa.json` -> train, `val_qa.json` -> val (papers, Crab+ included, evaluate on it as the test set;
the split keeps the release's name). One sample per question: native id `<video_name>_<id>` (`<video_name>_r<n>`,
n the 1-based position in the file, when the entry has no `id`). Options are listed in the instruction as
`(a) ...; (b) ...`; the answer is the option's text. Media: the 10 s clip, 10 frames, 16 kHz audio with ten
1 s segments.

Rejects: `malformed_entry` (missing or mistyped key), `bad_options` (not 4 distinct non-empty strings),
`answer_out_of_range`, `malformed_json` (a whole file); an id seen twice is the framework's `duplicate_id`.
No builder parameters.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from avuie.schemas import MultipleChoiceTarget, TaskFamily

from ._clip import clip_video
from .base import Builder, BuilderError, Record, Reject, error_text, register
from .instructions import instruction

SPLIT_FILES = {"train": "train_qa.json", "val": "val_qa.json"}
ANNOTATION_DIRS = ("", "data", "data/json", "annotations")
VIDEO_DIRS = ("data/video", "video", "videos", "data/videos")
CLIP_SECONDS = 10
NUM_OPTIONS = 4
LETTERS = "abcd"


def annotation_dir(raw: Path) -> Path:
    """The folder holding train_qa.json / val_qa.json; BuilderError when none of the known places has them."""
    for sub in ANNOTATION_DIRS:
        cand = raw / sub if sub else raw
        if any((cand / f).exists() for f in SPLIT_FILES.values()):
            return cand
    raise BuilderError(f"{raw} holds no AVQA release (expected train_qa.json / val_qa.json)")


def format_options(options: list[str]) -> str:
    """'(a) x; (b) y; ...': how the options are listed in the instruction."""
    return "; ".join(f"({LETTERS[i]}) {o}" for i, o in enumerate(options))


def load_entries(path: Path) -> list[tuple[str | None, Any]]:
    """(id or None, entry) pairs of a question file (a JSON list, or an object keyed by id); ValueError if neither."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path.name} is not valid JSON: {exc}") from None
    if isinstance(data, list):
        return [(None, x) for x in data]
    if isinstance(data, dict):
        return [(str(k), v) for k, v in data.items()]
    raise ValueError(f"{path.name} holds a {type(data).__name__}, not a list of questions")


def parse_choice(item: dict[str, Any]) -> tuple[str, list[str], int, str]:
    """(question, options, answer index, question type) of one entry; ValueError("<reason>: <detail>")."""
    question = item.get("question_text")
    options = item.get("multi_choice")
    answer = item.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("malformed_entry: no question_text")
    if not isinstance(options, list) or len(options) != NUM_OPTIONS:
        raise ValueError(f"bad_options: multi_choice {options!r} is not a list of {NUM_OPTIONS} options")
    options = [" ".join(str(o).split()) for o in options]
    if any(not o for o in options) or len({o.lower() for o in options}) != len(options):
        raise ValueError(f"bad_options: options {options!r} are empty or not distinct")
    if isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer)
    if isinstance(answer, bool) or not isinstance(answer, int):
        raise ValueError(f"malformed_entry: answer {answer!r} is not an option index")
    if not 0 <= answer < len(options):
        raise ValueError(f"answer_out_of_range: answer {answer} with {len(options)} options")
    return " ".join(question.split()), options, answer, str(item.get("question_type", "")).strip()


@register
class AvqaThuBuilder(Builder):
    """AVQA multiple-choice question answering: one sample per question."""

    name = "avqa_thu"
    raw_aliases = ("avqa-thu", "AVQA")
    family = TaskFamily.question_answering
    license = (
        "research use (AVQA dataset terms, mn.cs.tsinghua.edu.cn/avqa); videos from VGGSound (CC BY 4.0)"
    )
    layout = "{train_qa.json,val_qa.json}, data/video/<video_name>.mp4"
    description = "10 s clip + question + 4 options; one correct option"
    splits = ("train", "val")

    def read(self, raw: Path) -> Iterator[Record | Reject]:
        """Yield one record (or reject) per question of train_qa.json and val_qa.json."""
        raw = Path(raw)
        ann = annotation_dir(raw)
        video_dir = next((raw / d for d in VIDEO_DIRS if (raw / d).is_dir()), raw / VIDEO_DIRS[0])
        for split, fname in SPLIT_FILES.items():
            path = ann / fname
            if not path.exists():
                continue
            try:
                entries = load_entries(path)
            except ValueError as exc:
                yield Reject(split, fname, "malformed_json", str(exc), "", fname, None)
                continue
            for pos, (key, item) in enumerate(entries, start=1):
                yield self._record(split, fname, pos, key, item, video_dir)

    def _record(
        self, split: str, fname: str, pos: int, key: str | None, item: Any, video_dir: Path
    ) -> Record | Reject:
        entry = f"{fname}:{pos}"

        def reject(reason: str, detail: str, native_id: str = "") -> Reject:
            return Reject(split, entry, reason, detail, native_id, fname, pos)

        if not isinstance(item, dict):
            return reject("malformed_entry", f"entry is a {type(item).__name__}, not an object")
        name = str(item.get("video_name") or "").strip()
        if not name:
            return reject("malformed_entry", "no video_name")
        qid = item.get("id", key)
        native_id = f"{name}_{qid}" if qid not in (None, "") else f"{name}_r{pos}"
        try:
            question, options, answer, qtype = parse_choice(item)
        except ValueError as exc:
            reason, _, detail = str(exc).partition(": ")
            return reject(reason, detail, native_id)
        try:
            target = MultipleChoiceTarget(
                question=question, options=options, answer_index=answer, question_type=qtype
            )
        except ValueError as exc:
            return reject("invalid_target", error_text(exc), native_id)
        video = clip_video(video_dir / f"{name}.mp4", CLIP_SECONDS)
        return Record(
            native_id=native_id,
            split=split,
            entry=entry,
            instruction=instruction("avqa_thu", question=question, options=format_options(options)),
            media=[video],
            target=target,
            context={"video_name": name, "video_id": item.get("video_id"), "options": options},
            annotation_file=fname,
            annotation_row=pos,
        )
