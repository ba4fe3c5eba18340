"""Bundled v2a sample: the same small AVE tree as the a2v sample (the default pair source is AVE)."""

from __future__ import annotations

from pathlib import Path

from avuie.samples import a2v

VERSION = a2v.VERSION
RAW_SUBDIR = a2v.RAW_SUBDIR


def generate(root: Path) -> None:
    """Write the AVE sample tree under root/AVE_Dataset (see avuie.samples.a2v)."""
    a2v.generate(root)
