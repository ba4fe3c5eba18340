"""The bundled sample raw trees: one generator module per source writes a small raw tree in the source's
original release layout (annotation rows in the exact original format, media synthesized with ffmpeg).

`ensure_sample(source)` generates it once into the sample cache (`$AVUIE_SAMPLE_DIR`, default
`~/.cache/avuie/samples`) and returns the raw root to hand to the builder. Generators are deterministic.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import shutil
from pathlib import Path
from types import ModuleType


def sample_cache() -> Path:
    """The folder bundled samples are generated into."""
    return Path(os.environ.get("AVUIE_SAMPLE_DIR", Path.home() / ".cache" / "avuie" / "samples"))


def generator(source: str) -> ModuleType:
    """The generator module of a source (KeyError when the source has no bundled sample)."""
    names = {m.name for m in pkgutil.iter_modules(__path__)}
    if source not in names:
        raise KeyError(f"no bundled sample for source {source!r}")
    return importlib.import_module(f"{__name__}.{source}")


def available() -> list[str]:
    """Sources with a bundled sample."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def ensure_sample(source: str, cache: Path | None = None) -> Path:
    """Generate (once) and return the raw root of a source's bundled sample."""
    mod = generator(source)
    base = Path(cache or sample_cache()) / f"{source}-v{getattr(mod, 'VERSION', 1)}"
    marker = base / ".complete"
    if not marker.exists():
        if base.exists():
            shutil.rmtree(base)
        tmp = base.with_name(base.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        mod.generate(tmp)
        tmp.rename(base)
        marker.write_text("ok\n")
    return base / mod.RAW_SUBDIR if getattr(mod, "RAW_SUBDIR", "") else base
