"""The multi-task transfer report: per task, the multi-task score minus the single-task score.

Crab+'s headline is the share of tasks where one multi-task model beats the single-task models (positive
transfer). Inputs are `avuie eval` reports (or run directories holding one); each task is compared on its report's
primary metric. `gain` is multi minus single, sign-flipped for a lower-is-better metric, so a positive gain is
always positive transfer; a task counts as positive when its gain exceeds `tolerance` (default 0).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

REPORT_NAMES = ("report.json", "eval_report.json", "eval/report.json")


def resolve_report(path: str | Path) -> Path:
    """The report file of a path: the file itself, or a run directory's report.json / eval_report.json /
    eval/report.json. Raises FileNotFoundError naming what was looked for."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        for name in REPORT_NAMES:
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(
            f"{path} holds none of {', '.join(REPORT_NAMES)}: run `avuie eval --to` first"
        )
    raise FileNotFoundError(f"{path} does not exist")


def load_report(path: str | Path) -> dict:
    """Read an `avuie eval` report (file or run directory). Raises ValueError when it is not one."""
    file = resolve_report(path)
    try:
        report = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file} is not JSON: {exc.msg}") from None
    if not isinstance(report, dict) or not isinstance(report.get("tasks"), dict):
        raise ValueError(f"{file} is not an `avuie eval` report (no 'tasks')")
    report.setdefault("path", str(file))
    return report


def primary_scores(report: dict) -> dict[str, dict]:
    """{task: {"metric", "value", "higher_is_better"}} of a report, tasks without a value left out."""
    out = {}
    for task, result in report["tasks"].items():
        primary = result.get("primary") or {}
        if primary.get("value") is not None:
            out[task] = {
                "metric": primary.get("metric"),
                "value": float(primary["value"]),
                "higher_is_better": bool(primary.get("higher_is_better", True)),
            }
    return out


def transfer_report(singles: Sequence[dict], multi: dict, tolerance: float = 0.0) -> dict:
    """Compare single-task reports with one multi-task report, task by task.

    Returns {"tasks": {task: {"metric", "single", "multi", "delta", "gain", "positive"}}, "n_tasks",
    "n_positive", "share_positive", "mean_gain", "single_only", "multi_only"}. Raises ValueError when a task is
    in two single-task reports, or single and multi score a task on different metrics.
    """
    single: dict[str, dict] = {}
    for report in singles:
        for task, score in primary_scores(report).items():
            if task in single:
                raise ValueError(f"task {task!r} is in more than one single-task report")
            single[task] = score
    multi_scores = primary_scores(multi)
    tasks: dict[str, dict] = {}
    for task in sorted(set(single) & set(multi_scores)):
        s, m = single[task], multi_scores[task]
        if s["metric"] != m["metric"]:
            raise ValueError(
                f"task {task!r}: single-task metric {s['metric']!r} differs from multi {m['metric']!r}"
            )
        delta = m["value"] - s["value"]
        gain = delta if m["higher_is_better"] else -delta
        tasks[task] = {"metric": m["metric"], "single": s["value"], "multi": m["value"], "delta": delta,
                       "gain": gain, "positive": gain > tolerance}  # fmt: skip
    n_pos = sum(t["positive"] for t in tasks.values())
    return {
        "tasks": tasks,
        "n_tasks": len(tasks),
        "n_positive": n_pos,
        "share_positive": n_pos / len(tasks) if tasks else 0.0,
        "mean_gain": sum(t["gain"] for t in tasks.values()) / len(tasks) if tasks else 0.0,
        "tolerance": tolerance,
        "single_only": sorted(set(single) - set(multi_scores)),
        "multi_only": sorted(set(multi_scores) - set(single)),
    }


def plot_transfer(result: dict, path: str | Path, title: str = "Multi-task minus single-task") -> Path:
    """Draw the per-task gains as a horizontal bar chart (green: positive transfer) into a PNG; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(result["tasks"])
    gains = [result["tasks"][t]["gain"] for t in tasks]
    colors = ["tab:green" if result["tasks"][t]["positive"] else "tab:red" for t in tasks]
    fig, ax = plt.subplots(figsize=(7, 0.35 * max(len(tasks), 3) + 1.2))
    ax.barh(tasks, gains, color=colors)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("gain on the primary metric (positive = multi-task better)")
    share = result["share_positive"] * 100
    ax.set_title(
        f"{title}: positive transfer on {result['n_positive']}/{result['n_tasks']} tasks ({share:.0f}%)"
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
