"""Bundled arig sample: the same AVSBench-semantic tree as s4 (arig grounds the v1s clips); see samples/s4.py."""

from __future__ import annotations

from .s4 import RAW_SUBDIR, VERSION, generate

__all__ = ["RAW_SUBDIR", "VERSION", "generate"]
