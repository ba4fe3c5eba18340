"""Reasoning counters across runs: what one piece of work added (`delta`), and totals over pieces (`total`).

An engine's `stats()` is a nested dict of counters (ints) and descriptions (engine, model, settings...). A piece
records the counters its work added, so that the totals of a build survive a kill and a resumed run.
"""

from __future__ import annotations

from typing import Any


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


DESCRIPTIONS = ("settings",)  # nested dicts that describe, never count


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The counters of `after` minus those of `before` (nested dicts alike); descriptions are taken from `after`."""
    out: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if key in DESCRIPTIONS:
            out[key] = value
        elif _is_count(value):
            out[key] = value - (old if _is_count(old) else 0)
        elif isinstance(value, dict):
            out[key] = delta(old if isinstance(old, dict) else {}, value)
        else:
            out[key] = value
    return out


def total(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Counters added up over `parts` (nested dicts alike); for descriptions the last part's value wins."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key in DESCRIPTIONS:
                out[key] = value
            elif _is_count(value):
                old = out.get(key)
                out[key] = (old if _is_count(old) else 0) + value
            elif isinstance(value, dict):
                old = out.get(key)
                out[key] = total([old if isinstance(old, dict) else {}, value])
            else:
                out[key] = value
    return out


def describe(stats: dict[str, Any]) -> dict[str, Any]:
    """`stats` without its counters (engine, model, settings ...): what a total takes from the current engine."""
    out: dict[str, Any] = {}
    for key, value in stats.items():
        if key in DESCRIPTIONS or not (_is_count(value) or isinstance(value, dict)):
            out[key] = value
        elif isinstance(value, dict):
            out[key] = describe(value)
    return out
