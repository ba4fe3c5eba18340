"""`avuie eval`: parse each response with the tag parser and score every task with its benchmark's metric.

Each response is parsed with `avuie.schemas.parse_answer(text, like=ground_truth_target)`. A response whose
answer reads but breaks a target constraint (a box past the frame, end before start) is still scored as written
and counted in `n_constraint_violations`. A response with no readable answer counts as wrong and is counted in
`n_unparseable`; "wrong" means the worst score each metric can give that sample: a wrong answer or label, every
AVE segment wrong, every AVVP F 0, no UnAV detection, an empty caption, no box, and for masks the inverse of the
ground truth (IoU 0, mask F 0, S 1 on Ref-AVS's null set; the F sweep's all-foreground point still counts for
its batch, as in the reference). Mask metrics are scored per batch as the references batch them: s4 and ms3 one
video (the sample's native id without `_f<frame>`), ref_avs four expressions in metadata-row order.

A prediction line that is not a JSON object with a string "id" and a string "response" (no "response" key, not
JSON, not UTF-8, longer than the line cap, nested too deeply, ...) is malformed: it is not scored (its sample,
when the id is known, counts as unpredicted, not as unparseable) and the report says so in
"n_malformed_lines", "malformed_lines" (the first 20 line numbers) and "malformed_reasons" ({reason: count}).
Nothing a prediction says stops the run: a response the parser fails on with anything but a parse error counts
as unparseable and is listed in the task's "parser_errors"; a task whose scoring fails reports its "error" and
the other tasks are still scored.

The report: {"predictions", "data", "mask_backend", "mask_backend_reason", "n_predictions", "n_malformed_lines",
"malformed_lines", "malformed_reasons", "n_duplicate_ids", "n_unknown_ids", "unknown_ids" (first 20),
"tasks": {source: {"n", "n_unparseable", "n_constraint_violations", "n_parser_errors", "parser_errors" (first
5), "n_unpredicted", "n_malformed" (its malformed lines that carry an id: not scored), "metrics": {...},
"primary": {"metric", "value", "higher_is_better"}, and "error" when its scoring failed}}}. The primary metric of each task is what `avuie transfer`
compares.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from avuie.eval.masks import make_masker
from avuie.eval.reading import (
    MAX_LINE_BYTES,
    GroundTruth,
    Predictions,
    load_ground_truth,
    read_predictions,
    shown_id,
    source_of,
)
from avuie.eval.scorers import PRIMARY, SCORERS, ScoreOptions, plain

SEG_SOURCES = ("s4", "ms3", "ref_avs")
ERRORS_SHOWN = 5  # parser errors kept per task in the report


def parse_prediction(response: str, gt: GroundTruth) -> tuple[dict | None, str]:
    """Parse one response against its ground truth. Returns (plain target or None, "ok" | "constraint" |
    "unparseable" | "parser_error: <exception>"); never raises."""
    from avuie.schemas import AnswerParseError, parse_answer

    for validate, status in ((True, "ok"), (False, "constraint")):
        try:
            return plain(parse_answer(response, like=gt.target, source=gt.source, validate=validate)), status
        except (AnswerParseError, ValueError):  # a parse error: try without the constraints, then give up
            continue
        except Exception as exc:  # noqa: BLE001 - the parser must not stop the run on a hostile response
            return None, f"parser_error: {type(exc).__name__}: {str(exc)[:200]}"
    return None, "unparseable"


def metric_value(metrics: dict, path: str) -> float | None:
    """The value at a dotted path of a metrics dict ("segment.type_av"), or None where absent."""
    if path in metrics:  # keys may hold dots themselves ("acc@0.5")
        return metrics[path]
    value: Any = metrics
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def score_task(
    items: Sequence[GroundTruth], responses: Sequence[str], masker=None, options: ScoreOptions | None = None
) -> dict:
    """Score one task: its ground-truth samples and their responses (same order, one target kind).

    `masker` (the prompt-to-mask step) overrides `options.masker`. Returns {"n", "n_unparseable",
    "n_constraint_violations", "n_parser_errors", "parser_errors", "metrics", "primary"}.
    """
    kinds = {it.target.kind for it in items}
    if len(kinds) != 1:
        raise ValueError(f"one task must hold one target kind, found {sorted(kinds)}")
    kind = kinds.pop()
    opts = options or ScoreOptions()
    if masker is not None:
        opts.masker = masker
    parsed = [parse_prediction(r, it) for r, it in zip(responses, items, strict=True)]
    preds = [p for p, _ in parsed]
    errors = [f"{it.id}: {s[len('parser_error: '):]}" for (_, s), it in zip(parsed, items, strict=True)
              if s.startswith("parser_error")]  # fmt: skip
    metrics = SCORERS[kind](preds, [plain(it.target) for it in items], list(items), opts)
    name, higher = PRIMARY[kind]
    return {
        "n": len(items),
        "n_unparseable": sum(s == "unparseable" for _, s in parsed) + len(errors),
        "n_constraint_violations": sum(s == "constraint" for _, s in parsed),
        "n_parser_errors": len(errors),
        "parser_errors": errors[:ERRORS_SHOWN],
        "metrics": metrics,
        "primary": {"metric": name, "value": metric_value(metrics, name), "higher_is_better": higher},
    }


def _failed_task(items: Sequence[GroundTruth], exc: Exception) -> dict:
    """The report entry of a task whose scoring raised: its error, no metrics."""
    name, higher = PRIMARY[items[0].target.kind]
    return {"n": len(items), "error": f"{type(exc).__name__}: {str(exc)[:500]}", "metrics": {},
            "primary": {"metric": name, "value": None, "higher_is_better": higher}}  # fmt: skip


def _no_match_message(pred_path: str | Path, tasks: Sequence[str] | None, malformed: dict) -> str:
    bad = ""
    if malformed["n_malformed_lines"]:
        lines = ", ".join(map(str, malformed["malformed_lines"][:5]))
        reasons = ", ".join(f"{reason}: {n}" for reason, n in malformed["malformed_reasons"].items())
        bad = f" ({malformed['n_malformed_lines']} malformed lines, e.g. line {lines}; {reasons})"
    return f"no prediction in {pred_path} belongs to the tasks {sorted(tasks or [])}{bad}"


def _report_head(pred_path, data_root, read: Predictions, unknown: list[str], masker) -> dict[str, Any]:
    return {
        "predictions": str(pred_path),
        "data": str(data_root),
        "mask_backend": masker.name if masker else None,
        "mask_backend_reason": masker.reason if masker else None,
        "n_predictions": len(read.responses),
        **read.malformed_summary(),
        "n_duplicate_ids": read.duplicates,
        "n_unknown_ids": len(unknown),
        "unknown_ids": [shown_id(i) for i in unknown[:20]],
        "tasks": {},
    }


def _score_all(by_task: dict[str, list[GroundTruth]], read: Predictions, unpredicted, opts: ScoreOptions,
               progress: Callable[[str, int, int], None] | None) -> dict[str, dict]:  # fmt: skip
    out: dict[str, dict] = {}
    for done, (task, items) in enumerate(sorted(by_task.items()), 1):
        try:
            result = score_task(items, [read.responses[it.id] for it in items], options=opts)
        except Exception as exc:  # noqa: BLE001 - one task's failure must not lose the others' scores
            result = _failed_task(items, exc)
        result["n_unpredicted"] = sum(n for pair, n in unpredicted.items() if pair.startswith(f"{task}/"))
        result["n_malformed"] = sum(bool(i) and source_of(i) == task for _, _, i in read.malformed)
        if task in SEG_SOURCES:
            result["mask_backend"] = opts.masker.name if opts.masker else None
        out[task] = result
        if progress:
            progress("scoring tasks", done, len(by_task))
    return out


def evaluate(
    pred_path: str | Path,
    data_root: str | Path,
    tasks: Sequence[str] | None = None,
    mask_backend: str = "auto",
    sam2_checkpoint: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    caption_tokenizer: str = "simple",
    meteor: str = "auto",
    max_line_bytes: int = MAX_LINE_BYTES,
) -> dict:
    """Score a predictions file against a build directory; `tasks` limits the sources (None: all predicted).

    `progress(stage, done, total)` is called while shards are read and tasks scored; `caption_tokenizer` and
    `meteor` choose the caption tokenisation and METEOR (see `metrics_caption`); a prediction line longer than
    `max_line_bytes` is reported, not read. Returns the report dict described in this module's docstring.
    Raises ValueError when no prediction matches the selection (naming the malformed lines, if any).
    """
    read = read_predictions(pred_path, max_line_bytes)
    wanted = {i for i in read.responses if tasks is None or source_of(i) in set(tasks)}
    if not wanted:
        raise ValueError(_no_match_message(pred_path, tasks, read.malformed_summary()))
    opts = ScoreOptions(caption_tokenizer=caption_tokenizer, meteor=meteor)
    if any(source_of(i) in SEG_SOURCES for i in wanted):
        opts.masker = make_masker(mask_backend, sam2_checkpoint)
    sam2 = opts.masker is not None and opts.masker.name == "sam2"
    found, unpredicted = load_ground_truth(
        data_root,
        wanted,
        lambda source: sam2 and source in SEG_SOURCES,
        on_shard=(lambda d, t: progress("reading shards", d, t)) if progress else None,
    )
    by_task: dict[str, list[GroundTruth]] = {}
    for sample_id in sorted(found):
        by_task.setdefault(found[sample_id].source, []).append(found[sample_id])
    report = _report_head(pred_path, data_root, read, sorted(wanted - set(found)), opts.masker)
    report["tasks"] = _score_all(by_task, read, unpredicted, opts, progress)
    return report
