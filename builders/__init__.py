"""avuie.builders: one module per `--source`, each registering a Builder (see builders/base.py).

Modules are discovered, so adding a source is one new file here.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import REGISTRY, Builder, BuilderError, Cut, Notice, Record, Reject

_NOT_SOURCES = {"base", "instructions"}


def load_all() -> dict[str, type[Builder]]:
    """Import every builder module and return the registry (source name -> Builder class)."""
    for mod in pkgutil.iter_modules(__path__):
        if mod.name not in _NOT_SOURCES and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    return dict(sorted(REGISTRY.items()))


def get_builder(name: str, **params: object) -> Builder:
    """An instance of the builder registered as `name` (KeyError listing the known names)."""
    registry = load_all()
    if name not in registry:
        raise KeyError(f"unknown source {name!r}; known: {', '.join(registry)}")
    return registry[name](**params)


__all__ = [
    "Builder",
    "BuilderError",
    "Cut",
    "Notice",
    "Record",
    "Reject",
    "REGISTRY",
    "get_builder",
    "load_all",
]
