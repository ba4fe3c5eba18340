"""Label-conditioned prompts, one versioned file per task family (avuie/reasoning/prompts/<family>.md).

A prompt file has a version comment, a `# System` section, three `# Example` sections (each with `## Target`: a
JSON `{"source", "target"}`, `## Request` and `## Reply`) and a `# Request` template with the fields {source},
{instruction}, {media}, {facts}, {audio_note} and {answer}. An example's answer is never spelled in the file:
its request says `{answer}` and its reply ends in `{final}`, both rendered from its target in the answer style of
the sample being asked for (`schemas/answers.py`, `schemas/wordings.py`). `build_messages` turns a draft into
chat messages: the system text, the three worked examples as user/assistant turns, then the sample's request
with its frames as image data URLs and its audio as `input_audio` (when the endpoint supports it; otherwise the
annotation describes the audio in words).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from avuie.reasoning.engine import Draft
from avuie.schemas import DEFAULT_STYLE, TARGET_TYPES, answer_style, render_answer
from avuie.schemas.wordings import final_words

PROMPT_DIR = Path(__file__).parent / "prompts"
# The marker the request ends with; a corrective message repeats it.
GROUND_TRUTH_LINE = "Ground-truth answer (end your reply with exactly this): {answer}"


@dataclass(frozen=True)
class Prompt:
    """One family's prompt: version, system text, worked examples (request, reply) and the request template."""

    family: str
    version: str
    system: str
    examples: tuple[tuple[str, str], ...]
    request: str
    sha: str

    @property
    def prompt_version(self) -> str:
        """The version recorded in reasoning_info, e.g. 'event_localization/v1'."""
        return f"{self.family}/v{self.version}"


@dataclass(frozen=True)
class MediaSettings:
    """How media go into a request: frame size (longest side, px), at most how many frames, audio capability."""

    image_size: int = 224
    max_frames: int = 10
    audio_input: bool = False
    jpeg_quality: int = 85


def _sections(text: str, level: str) -> list[tuple[str, str]]:
    """Split markdown into (heading, body) pairs at headings of exactly `level` ('#' or '##')."""
    parts = re.split(rf"^{level} (.+)$", text, flags=re.MULTILINE)
    return [(parts[i].strip().lower(), parts[i + 1].strip()) for i in range(1, len(parts), 2)]


def _example(family: str, head: str, body: str, style: str) -> tuple[str, str]:
    """One worked example's (request, reply), its answer rendered from its target in `style`."""
    parts = dict(_sections(body, "##"))
    if not {"target", "request", "reply"} <= set(parts):
        raise ValueError(f"prompt {family}: {head!r} needs '## Target', '## Request' and '## Reply'")
    try:
        spec = json.loads(parts["target"])
        target = TARGET_TYPES[spec["target"]["kind"]].model_validate(spec["target"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"prompt {family}: {head!r} has no valid target: {exc}") from exc
    if "{answer}" not in parts["request"] or not parts["reply"].endswith("{final}"):
        raise ValueError(
            f"prompt {family}: {head!r} needs {{answer}} in its request and {{final}} at its end"
        )
    answer = render_answer(target, style, spec.get("source"))
    final = final_words(answer, target.kind, style)
    return parts["request"].replace("{answer}", answer), parts["reply"].replace("{final}", final)


def parse_prompt(family: str, text: str, style: str = DEFAULT_STYLE) -> Prompt:
    """Parse a prompt file's text, its worked examples in answer style `style`; raises ValueError naming what is
    missing."""
    version = re.search(r"<!--.*?version:\s*([\w.-]+).*?-->", text)
    if not version:
        raise ValueError(f"prompt {family}: no '<!-- version: N -->' line")
    sections = _sections(text, "#")
    system = [body for head, body in sections if head == "system"]
    request = [body for head, body in sections if head == "request"]
    examples = [_example(family, head, body, style) for head, body in sections if head.startswith("example")]
    if len(system) != 1 or len(request) != 1 or len(examples) != 3:
        raise ValueError(f"prompt {family}: needs one System, three Examples and one Request section")
    if "{answer}" not in request[0]:
        raise ValueError(f"prompt {family}: the Request template must contain {{answer}}")
    sha = hashlib.sha256(f"{text}\n{style}".encode()).hexdigest()[:12]
    return Prompt(family, version.group(1), system[0], tuple(examples), request[0], sha)


@cache
def load_prompt(family: str, style: str = DEFAULT_STYLE) -> Prompt:
    """The prompt of a task family, read from avuie/reasoning/prompts/<family>.md, examples in `style`."""
    path = PROMPT_DIR / f"{family}.md"
    if not path.exists():
        raise ValueError(f"no prompt for task family {family!r} (expected {path})")
    return parse_prompt(family, path.read_text(encoding="utf-8"), style)


def draft_style(draft: Draft) -> str:
    """The answer style of a draft's ground-truth answer (the default when it is in none)."""
    sample = draft.sample
    target = TARGET_TYPES[sample["target"]["kind"]].model_validate(sample["target"])
    return answer_style(sample.get("answer", ""), target, sample.get("source")) or DEFAULT_STYLE


def _secs(x: float) -> str:
    return f"{float(x):g}"


def _segs(segs: list) -> str:
    return ", ".join(f"{_secs(s)}-{_secs(e)} s" for s, e in segs)


def _groups(groups: list[dict]) -> str:
    return "; ".join(f"{g['label']} in box {g['box']} with points {g['points']}" for g in groups)


def describe_target(target: dict[str, Any]) -> str:
    """The ground truth of a target in words (what the annotation says), for the label-conditioned prompt."""
    k = target["kind"]
    if k == "single_event":
        return (
            f"Annotated event: {target['label']}, both audible and visible from {target['start']} s to "
            f"{target['end']} s of the {_secs(target['duration'])} s clip."
        )
    if k == "dense_events":
        events = "; ".join(f"{e['label']} {_secs(e['start'])}-{_secs(e['end'])} s" for e in target["events"])
        return f"Annotated events of the {_secs(target['duration'])} s video: {events}."
    if k == "av_parsing":
        audio = "; ".join(f"{lbl} ({_segs(s)})" for lbl, s in target["audio"].items()) or "none"
        visual = "; ".join(f"{lbl} ({_segs(s)})" for lbl, s in target["visual"].items()) or "none"
        weak = " (video-level labels only: the segments span the whole clip)" if target.get("weak") else ""
        return f"Audio events: {audio}. Visual events: {visual}.{weak}"
    if k == "open_qa":
        return f"Question: {target['question']} Correct answer: {target['answer']}."
    if k == "multiple_choice":
        options = " ".join(f"({i + 1}) {o}" for i, o in enumerate(target["options"]))
        return f"Question: {target['question']} Options: {options}. Correct option: {target['answer_index'] + 1}."
    if k == "segmentation":
        return (
            f"Sounding objects (pixels of the 224x224 frame, x right, y down): {_groups(target['groups'])}."
        )
    if k == "referring_segmentation":
        where = f" It is {_groups(target['groups'])}." if target["present"] else " It is not in the frame."
        return f'Expression: "{target["expression"]}". Present: {target["present"]}.{where}'
    if k == "grounding":
        return (
            f"Sounding object: {target['label']} in box {list(target['box'])} (pixels of the 224x224 frame)."
        )
    if k == "caption":
        return f"Reference caption: {target['caption']}"
    if k == "matching":
        noun = "video" if target["direction"] == "a2v" else "audio"
        cands = "; ".join(f"{noun} {i + 1} is {lbl}" for i, lbl in enumerate(target["candidate_labels"]))
        return f"Query class: {target['query_label']}. Candidates: {cands}. Match: {noun} {target['answer_index'] + 1}."
    if k == "classification":
        original = target.get("original_label") or target["label"]
        return f"Class: {target['label']} (the dataset's label: {original})."
    raise ValueError(f"unknown target kind {k!r}")


def describe_audio(target: dict[str, Any]) -> str:
    """What the annotation says about the audio, for endpoints that take no audio input."""
    k = target["kind"]
    if k == "single_event":
        return f"the sound of {target['label']} is heard from {target['start']} s to {target['end']} s"
    if k == "dense_events":
        return "the annotated events above are heard at the listed times"
    if k == "av_parsing":
        audio = "; ".join(f"{lbl} ({_segs(s)})" for lbl, s in target["audio"].items())
        return f"heard: {audio}" if audio else "none of the annotated events is heard"
    if k in ("segmentation", "referring_segmentation"):
        labels = ", ".join(g["label"] for g in target["groups"])
        return f"the sound of {labels}" if labels else "a sound whose source is not the referred object"
    if k == "grounding":
        return f"the sound of {target['label']}"
    if k == "matching":
        if target["direction"] == "a2v":
            return f"the sound of {target['query_label']}"
        return "; ".join(
            f"audio {i + 1}: the sound of {lbl}" for i, lbl in enumerate(target["candidate_labels"])
        )
    if k == "classification":
        return f"sounds consistent with {target['label']}"
    return "the annotation does not describe the audio beyond the question and answer"


def _jpeg_data_url(data: bytes, settings: MediaSettings) -> str:
    """A JPEG data URL of a frame whose longest side is `image_size` (frames already so are sent as they are)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    if image.format != "JPEG" or max(image.size) != settings.image_size:
        image = image.convert("RGB")
        scale = settings.image_size / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=settings.jpeg_quality)
        data = buf.getvalue()
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


def _pick(files: list[str], n: int) -> list[int]:
    if len(files) <= n:
        return list(range(len(files)))
    return [round(i * (len(files) - 1) / (n - 1)) for i in range(n)] if n > 1 else [0]


def media_parts(draft: Draft, settings: MediaSettings) -> tuple[list[dict[str, Any]], str]:
    """The content parts for a draft's media (a text label, then images or audio) and a one-line summary."""
    parts: list[dict[str, Any]] = []
    summary: list[str] = []
    for item in draft.sample.get("media", []):
        kind, role, files = item["kind"], item.get("role", item["kind"]), item["files"]
        present = [f for f in files if f in draft.media_files]
        if kind in ("video_frames", "image"):
            chosen = _pick(present, settings.max_frames)
            times = item.get("frame_times") or []
            at = [_secs(times[i]) for i in chosen if i < len(times)]
            label = f"{role}: {len(chosen)} frame(s)" + (f" at {', '.join(at)} s" if at else "")
            summary.append(label)
            parts.append({"type": "text", "text": f"[{label}]"})
            for i in chosen:
                url = _jpeg_data_url(draft.media_files[present[i]], settings)
                parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "audio" and settings.audio_input and present:
            seconds = item.get("duration")
            label = f"{role}: audio" + (f" ({_secs(seconds)} s)" if seconds else "")
            summary.append(label + " attached")
            parts.append({"type": "text", "text": f"[{label}]"})
            data = base64.b64encode(draft.media_files[present[0]]).decode()
            fmt = present[0].rsplit(".", 1)[-1]
            parts.append({"type": "input_audio", "input_audio": {"data": data, "format": fmt}})
        elif kind == "audio":
            summary.append(f"{role}: audio not attached (described below)")
    return parts, "; ".join(summary) or "none"


def request_text(draft: Draft, prompt: Prompt, settings: MediaSettings, media_summary: str) -> str:
    """The filled-in request template of a draft."""
    target = draft.sample["target"]
    audio_note = "" if settings.audio_input else f"Audio (from the annotation): {describe_audio(target)}."
    fields = {
        "source": draft.sample.get("source", ""),
        "instruction": draft.sample.get("instruction", ""),
        "media": media_summary,
        "facts": describe_target(target),
        "audio_note": audio_note,
        "answer": draft.sample["answer"],
    }
    return prompt.request.format_map(fields).strip()


def build_messages(draft: Draft, settings: MediaSettings) -> tuple[Prompt, list[dict[str, Any]]]:
    """The prompt used and the chat messages (system, three worked examples, the request with media)."""
    prompt = load_prompt(str(draft.sample["family"]), draft_style(draft))
    messages: list[dict[str, Any]] = [{"role": "system", "content": prompt.system}]
    for request, reply in prompt.examples:
        messages += [{"role": "user", "content": request}, {"role": "assistant", "content": reply}]
    parts, summary = media_parts(draft, settings)
    parts.append({"type": "text", "text": request_text(draft, prompt, settings, summary)})
    messages.append({"role": "user", "content": parts})
    return prompt, messages
