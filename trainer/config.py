"""Training configs: YAML files with sections model / ilora / data / train / predict.

`load_config("tiny")` reads the shipped trainer/configs/tiny.yaml; a path reads that file. `overrides` are
dotted `key=value` strings (`train.max_steps=100`, `model.path=/models/Qwen2.5-Omni-7B`), values parsed as YAML.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).parent / "configs"
SECTIONS = ("model", "ilora", "data", "train", "predict")


def shipped_configs() -> list[str]:
    """Names of the configs that ship with the trainer."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A YAML path as given, or trainer/configs/<name>.yaml for a shipped name; raises FileNotFoundError."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"config file {path} does not exist")
        return path
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if not shipped.exists():
        raise FileNotFoundError(f"no config {name_or_path!r}: give a YAML path or one of {shipped_configs()}")
    return shipped


def apply_overrides(cfg: dict, overrides: list[str] | None) -> dict:
    """Return a copy of cfg with dotted `a.b=value` overrides applied (values parsed as YAML)."""
    cfg = copy.deepcopy(cfg)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form section.key=value")
        node = cfg
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part} is not a section")
        node[leaf] = yaml.safe_load(raw)
    return cfg


def load_config(name_or_path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Read a config (name or path), apply overrides, check the sections; returns a plain dict."""
    path = resolve_config_path(name_or_path)
    cfg = yaml.safe_load(path.read_text()) or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: a config must be a mapping with sections {SECTIONS}")
    unknown = set(cfg) - set(SECTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown sections {sorted(unknown)} (expected {SECTIONS})")
    cfg = apply_overrides(cfg, overrides)
    for section in SECTIONS:
        cfg.setdefault(section, {})
    return cfg
