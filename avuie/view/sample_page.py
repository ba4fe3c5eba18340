"""The page of one sample: frames at their real timestamps, the audio with its event spans on a timeline, masks,
boxes and points over their frames, the instruction, chain, answer and parsed target, the correction form and the
provenance. Every value goes through `esc`; media come from /media by byte range (see avuie.view.tarread).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from avuie.schemas import TARGET_TYPES, AnswerParseError, parse_answer
from avuie.view.html import esc, kv_table, link

COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45")
GUTTER, SPAN_W, ROW_H = 170, 830, 22


def media_url(build: str, key: str, member: str) -> str:
    """The URL of one member of a sample."""
    return "/media?" + urlencode({"build": build, "key": key, "m": member})


def frame_times(item: dict[str, Any]) -> list[float | None]:
    """The time (s) of each frame of a video_frames item: frame_times, else start + i / fps, else None."""
    files = item.get("files", [])
    if item.get("frame_times") and len(item["frame_times"]) == len(files):
        return [float(t) for t in item["frame_times"]]
    if item.get("fps"):
        start = float(item.get("start") or 0.0)
        return [start + i / float(item["fps"]) for i in range(len(files))]
    return [None] * len(files)


def _frame_strip(build: str, key: str, item: dict[str, Any]) -> str:
    figures = []
    for name, t in zip(item["files"], frame_times(item), strict=True):
        when = f"t = {t:.2f} s" if t is not None else esc(name)
        seek = f' data-seek="{t:.3f}"' if t is not None else ""
        figures.append(
            f'<figure class="frame"{seek}><img src="{esc(media_url(build, key, name))}" alt="{esc(name)}" '
            f'loading="lazy"><figcaption>{when}</figcaption></figure>'
        )
    return (
        f'<div class="strip" title="click a frame to play the audio from its time">{"".join(figures)}</div>'
    )


def event_rows(target: dict[str, Any]) -> list[tuple[str, list[tuple[float, float]]]]:
    """The labelled spans (seconds) a target puts on the timeline: AVE one event, UnAV each event, AVVP each
    audio and visual class; [] for other targets."""
    kind = target.get("kind")
    if kind == "single_event":
        return [(target["label"], [(float(target["start"]), float(target["end"]))])]
    if kind == "dense_events":
        rows: dict[str, list[tuple[float, float]]] = {}
        for event in target.get("events", []):
            rows.setdefault(event["label"], []).append((float(event["start"]), float(event["end"])))
        return list(rows.items())
    if kind == "av_parsing":
        out = []
        for modality in ("audio", "visual"):
            for label, spans in sorted((target.get(modality) or {}).items()):
                out.append((f"{modality}: {label}", [(float(s), float(e)) for s, e in spans]))
        return out
    return []


def timeline_svg(
    duration: float, rows: list[tuple[str, list[tuple[float, float]]]], ticks: list[float]
) -> str:
    """An SVG timeline of `duration` seconds: one row per label with its spans, frame-time ticks and a playhead
    (moved by view.js while the audio plays; clicking a span seeks to its start)."""
    duration = max(float(duration), 1e-6)

    def x(t: float) -> float:
        return GUTTER + SPAN_W * min(max(t, 0.0), duration) / duration

    height = ROW_H * (len(rows) + 1) + 8
    parts = [f'<line x1="{GUTTER}" y1="{ROW_H - 4}" x2="{GUTTER + SPAN_W}" y2="{ROW_H - 4}" class="axis"/>']
    for second in range(int(duration) + 1):
        parts.append(f'<text x="{x(second):.1f}" y="10" class="tick">{second}</text>')
    for t in ticks:
        parts.append(
            f'<line x1="{x(t):.1f}" y1="{ROW_H - 9}" x2="{x(t):.1f}" y2="{ROW_H + 1}" class="ftick"/>'
        )
    for i, (label, spans) in enumerate(rows):
        y, color = ROW_H * (i + 1) + 2, COLORS[i % len(COLORS)]
        parts.append(f'<text x="4" y="{y + 14}" class="rowlabel">{esc(label)}</text>')
        for start, end in spans:
            parts.append(
                f'<rect class="span" data-seek="{start:.3f}" x="{x(start):.1f}" y="{y}" '
                f'width="{max(x(end) - x(start), 2):.1f}" height="{ROW_H - 6}" fill="{color}">'
                f"<title>{esc(label)}: {start:g}-{end:g} s</title></rect>"
            )
    parts.append(f'<line class="playhead" x1="{GUTTER}" y1="0" x2="{GUTTER}" y2="{height}"/>')
    return (
        f'<svg class="timeline" viewBox="0 0 {GUTTER + SPAN_W + 10} {height}" data-duration="{duration:.3f}" '
        f'data-gutter="{GUTTER}" data-span="{SPAN_W}" preserveAspectRatio="none">{"".join(parts)}</svg>'
    )


def _audio_block(build: str, key: str, item: dict[str, Any], rows: list, ticks: list[float]) -> str:
    name = item["files"][0]
    duration = item.get("duration") or 0.0
    facts = ", ".join(
        f
        for f in (
            f"{duration:g} s" if duration else "",
            f"{item['sample_rate']} Hz" if item.get("sample_rate") else "",
            f"{item['channels']} ch" if item.get("channels") else "",
        )
        if f
    )
    timeline = timeline_svg(duration, rows, ticks) if duration and (rows or ticks) else ""
    return (
        f'<div class="audio"><h3>{esc(item.get("role") or "audio")} <small>{esc(facts)}</small></h3>'
        f'<audio controls preload="auto" src="{esc(media_url(build, key, name))}"></audio>{timeline}</div>'
    )


def _groups(target: dict[str, Any]) -> list[dict[str, Any]]:
    if target.get("kind") == "grounding":
        return [{"label": target["label"], "box": target["box"], "points": [], "mask": None}]
    return list(target.get("groups") or [])


def _image_stage(build: str, key: str, item: dict[str, Any], target: dict[str, Any], masks: set[str]) -> str:
    name = item["files"][0]
    width, height = item.get("size") or target.get("frame_size") or (224, 224)
    overlays, shapes, legend = [], [], []
    for i, group in enumerate(_groups(target)):
        color = COLORS[i % len(COLORS)]
        if group.get("mask") in masks:
            overlays.append({"url": media_url(build, key, group["mask"]), "color": color})
        x1, y1, x2, y2 = group["box"]
        shapes.append(
            f'<rect x="{x1}" y="{y1}" width="{x2 - x1 + 1}" height="{y2 - y1 + 1}" stroke="{color}" class="box"/>'
        )
        shapes += [
            f'<circle cx="{px}" cy="{py}" r="3" fill="{color}" class="point"/>' for px, py in group["points"]
        ]
        legend.append(
            f'<li><span class="swatch" style="background:{color}"></span>{esc(group["label"])}</li>'
        )
    return (
        f'<div class="stage" style="aspect-ratio:{width}/{height}">'
        f'<img src="{esc(media_url(build, key, name))}" alt="{esc(name)}">'
        f'<canvas class="mask-overlay" width="{width}" height="{height}" '
        f"data-masks='{esc(json.dumps(overlays))}'></canvas>"
        f'<svg class="shapes" viewBox="0 0 {width} {height}">{"".join(shapes)}</svg></div>'
        f'<ul class="legend">{"".join(legend) or "<li>no object in this frame</li>"}</ul>'
    )


def media_section(build: str, key: str, sample: dict[str, Any]) -> str:
    """The frames, image overlays and audio players of a sample, in the order of its media list."""
    target = sample.get("target") or {}
    masks = {f for item in sample["media"] if item["kind"] == "mask" for f in item["files"]}
    ticks = [
        t
        for item in sample["media"]
        if item["kind"] == "video_frames"
        for t in frame_times(item)
        if t is not None
    ]
    rows = event_rows(target)
    parts = []
    for item in sample["media"]:
        if item["kind"] == "video_frames":
            parts.append(f"<h3>{esc(item.get('role') or 'frames')}</h3>" + _frame_strip(build, key, item))
        elif item["kind"] == "image":
            parts.append(_image_stage(build, key, item, target, masks))
        elif item["kind"] == "audio":
            parts.append(_audio_block(build, key, item, rows, ticks))
    return '<section class="media">' + "".join(parts) + "</section>"


def json_block(data: dict[str, Any]) -> str:
    """A dict as JSON with one top-level key a line (compact values)."""
    lines = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in data.items())
    return "{\n" + lines + "\n}"


def parsed_target(sample: dict[str, Any]) -> tuple[str, bool | None]:
    """(the answer parsed back into a target, as JSON text; whether it equals the stored target or None when the
    answer does not parse)."""
    target = sample.get("target") or {}
    cls = TARGET_TYPES.get(target.get("kind"))
    if cls is None:
        return "unknown target kind", None
    try:
        stored = cls.model_validate(target)
        parsed = parse_answer(sample["answer"], stored, source=sample.get("source"))
    except (AnswerParseError, ValueError) as error:
        return f"does not parse: {error}", None
    dumped = parsed.model_dump(mode="json")
    return json_block(dumped), dumped == stored.model_dump(mode="json")


def text_section(sample: dict[str, Any]) -> str:
    """Instruction, reasoning chain, tagged answer and the target it parses to."""
    parsed, same = parsed_target(sample)
    verdict = {
        True: "equals the stored target",
        False: "differs from the stored target: the answer's wording rounds or merges it (stored target below)",
        None: "",
    }[same]
    stored = ""
    if same is False:
        stored = (
            f'<h3>Stored target</h3><pre class="stored">{esc(json_block(sample.get("target") or {}))}</pre>'
        )
    info = sample.get("reasoning_info") or {}
    origin = ", ".join(
        f"{k}: {info[k]}" for k in ("kind", "model", "check_outcome", "fallback_reason") if info.get(k)
    )
    return (
        '<section class="texts"><h2>Instruction</h2>'
        f'<pre class="instruction">{esc(sample["instruction"])}</pre>'
        f'<h2>Reasoning <small>{esc(origin)}</small></h2><pre class="reasoning">{esc(sample["reasoning"])}</pre>'
        f'<h2>Answer</h2><pre class="answer">{esc(sample["answer"])}</pre>'
        f'<h3>Parsed target <small class="{"ok" if same else "bad" if same is None else "differs"}">'
        f'{esc(verdict)}</small></h3><pre class="parsed">{esc(parsed)}</pre>{stored}</section>'
    )


def edit_section(build: str, key: str, sample: dict[str, Any], pending: dict | None, back: str) -> str:
    """The correction form (chain text and flag) and, when edits wait, the link to apply them."""
    text = (pending or {}).get("reasoning") or sample["reasoning"]
    flagged = bool((pending or {}).get("flagged"))
    state = ""
    if pending:
        edited = text.strip() != sample["reasoning"].strip()
        state = (
            f'<p class="pending">{"An edited chain" if edited else "A flag"} for this sample waits in the review '
            f"file: {link('/review', 'review and apply')}.</p>"
        )
    return (
        '<section class="correct"><h2>Correct</h2>'
        "<p>Edit the chain (the answer is appended when you leave it out); it is checked like "
        "<code>avuie review apply</code> and saved to the build's review file.</p>"
        + state
        + '<form method="post" action="/edit" id="edit-form">'
        f'<input type="hidden" name="build" value="{esc(build)}"><input type="hidden" name="key" value="{esc(key)}">'
        f'<input type="hidden" name="back" value="{esc(back)}">'
        f'<textarea name="reasoning" id="chain" rows="7">{esc(text)}</textarea>'
        f'<label><input type="checkbox" name="flagged" value="1"{" checked" if flagged else ""}> flag this sample'
        '</label> <button type="submit" id="save-edit">Save edit</button></form></section>'
    )


def provenance_section(
    row: dict[str, Any], sample: dict[str, Any], build_facts: dict[str, Any], span: tuple
) -> str:
    """Where the sample came from: raw file and row, builder, media sources, shard and byte range, digests."""
    prov = sample.get("provenance") or {}
    raw = str(build_facts.get("raw") or "")
    sources = sorted({item.get("source_path") or "" for item in sample["media"]} - {""})
    shown = [s[len(raw) :].lstrip("/") if raw and s.startswith(raw) else s for s in sources]
    checks = prov.get("raw_checksums") or {}
    facts = [
        ("annotation file", prov.get("annotation_file")),
        ("annotation row", prov.get("annotation_row")),
        ("builder", f"{prov.get('builder')} v{prov.get('builder_version')}"),
        ("media from (under the raw tree)", "\n".join(shown)),
        ("raw checksums", "\n".join(f"{name}: {digest[:16]}" for name, digest in sorted(checks.items()))),
        ("shard", f"{row.get('shard')} bytes {span[0]}-{span[1]}"),
        ("content hash", sample.get("content_hash")),
        ("licence", sample.get("license")),
        ("build.json sha256", build_facts.get("sha256")),
        ("build fingerprint", build_facts.get("fingerprint")),
        ("records digest", build_facts.get("records")),
    ]
    return '<section class="provenance"><h2>Provenance</h2>' + kv_table(facts) + "</section>"
