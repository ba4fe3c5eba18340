"""`avuie build --config build.yaml`: one YAML file holding the sources, their raw roots, the build settings, the
reasoning settings and the executor, checked by a pydantic model (an unknown key is an error naming it).

Relative paths in the file are read relative to the file's folder. docs/BUILD.md documents every key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from avuie.build.engines import BuildRequestError
from avuie.shards.sync import is_url


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reasoning(_Strict):
    """Who writes the reasoning chains: the offline template, or an OpenAI-compatible endpoint."""

    engine: Literal["template", "openai"] = "template"
    model: str | None = None
    base_url: str | None = None
    concurrency: int = Field(8, ge=1)
    refresh: bool = False
    max_attempts: int = Field(3, ge=1)
    timeout: float = Field(60.0, gt=0)
    audio_input: bool = False
    options: dict[str, Any] = Field(default_factory=dict)  # image_size, max_frames, temperature, ...


class Settings(_Strict):
    """Build settings; `defaults` gives them to every source, a source may override each."""

    splits: list[str] | None = None
    limit: int | None = Field(None, ge=1)
    shard_size: int | None = Field(None, ge=1)
    shard_bytes: int | None = Field(None, ge=1)


class Source(Settings):
    """One source to build: its raw root (the bundled sample when omitted), media root, output and parameters."""

    raw: Path | str | None = None  # a folder, or a URL (s3://bucket/AVE_Dataset)
    media_root: Path | None = None
    out: Path | str | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class BuildFile(_Strict):
    """The whole file."""

    out: Path | str = Path("avuie-out")  # a folder, or a URL (s3://bucket/avuie)
    executor: Literal["local", "ray"] = "local"
    address: str | None = None  # the Ray cluster (executor: ray): auto, ray://HOST:10001; none: a local one
    workers: int = Field(2, ge=1)
    progress: Literal["auto", "json", "bar", "none"] = "auto"
    defaults: Settings = Field(default_factory=Settings)
    reasoning: Reasoning = Field(default_factory=Reasoning)
    sources: dict[str, Source] = Field(min_length=1)


def _where(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_build_file(path: Path) -> BuildFile:
    """Read and check a build file; BuildRequestError naming the file, the key and the problem."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BuildRequestError(f"cannot read {path}: {exc.strerror}", param_hint="--config") from exc
    except yaml.YAMLError as exc:
        raise BuildRequestError(f"{path} is not valid YAML: {exc}", param_hint="--config") from exc
    try:
        spec = BuildFile.model_validate(data if data is not None else {})
    except ValidationError as exc:
        problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise BuildRequestError(f"{path}: {problems}", param_hint="--config") from exc
    return _resolved(spec, path.parent)


def _resolved(spec: BuildFile, base: Path) -> BuildFile:
    """Paths relative to the file's folder made absolute."""

    def fix(p: Path | str | None) -> Path | str | None:
        if p is None or is_url(str(p)):
            return None if p is None else str(p)
        return Path(p) if Path(p).is_absolute() else base / p

    spec.out = fix(spec.out)  # type: ignore[assignment]
    for src in spec.sources.values():
        src.raw, src.media_root, src.out = fix(src.raw), fix(src.media_root), fix(src.out)  # type: ignore[assignment]
    return spec


def source_options(spec: BuildFile, name: str) -> tuple[Path | str | None, Path | str, dict[str, Any]]:
    """(raw, out, `build_one` keyword options) of one source of the file."""
    src = spec.sources[name]
    pick = {
        k: getattr(src, k) if getattr(src, k) is not None else getattr(spec.defaults, k)
        for k in Settings.model_fields
    }
    r = spec.reasoning
    options = {
        "splits": pick["splits"],
        "limit": pick["limit"],
        "workers": spec.workers,
        "shard_size": pick["shard_size"] or 256,
        "shard_bytes": pick["shard_bytes"] or (1 << 30),
        "params": dict(src.params),
        "media_root": src.media_root,
        "executor": spec.executor,
        "address": spec.address,
        "reasoning": r.engine,
        "reasoning_opts": {
            "model": r.model,
            "base_url": r.base_url,
            "concurrency": r.concurrency,
            "refresh": r.refresh,
            "max_attempts": r.max_attempts,
            "timeout": r.timeout,
            "audio_input": r.audio_input,
            "extra": dict(r.options),
        },
    }
    return src.raw, src.out or spec.out, options  # type: ignore[return-value]


def check_executor(spec: BuildFile) -> None:
    """Refuse executor settings that cannot run: an address without the Ray executor."""
    if spec.address and spec.executor != "ray":
        raise BuildRequestError(
            "address is the Ray cluster: set executor: ray with it", param_hint="--config"
        )
