"""Bundled ms3 sample: the same AVSBench-semantic tree as s4 (its v1m clips are the MS3 ones); see samples/s4.py."""

from __future__ import annotations

from .s4 import RAW_SUBDIR, VERSION, generate

__all__ = ["RAW_SUBDIR", "VERSION", "generate"]
