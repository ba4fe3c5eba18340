"""Build one source, or every source (`avuie build --all`): find raw trees by name, alias or layout file, use the
bundled sample when no raw tree is given, and report the sources that could not be built with their reason.

The callers (the CLI, the demo) pass in how progress is shown; nothing here prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avuie.build.config import BuildConfig
from avuie.build.engines import BuildRequestError, make_engine

# progress(description, done, total); notify(message)
ShowProgress = Callable[[str, int, int], None]
Notify = Callable[[str], None]


def build_one(
    source: str,
    raw: Path | None,
    out: Path,
    *,
    splits: list[str] | None,
    limit: int | None,
    workers: int,
    shard_size: int,
    shard_bytes: int,
    params: dict[str, Any],
    reasoning: str,
    reasoning_opts: dict[str, Any],
    progress: ShowProgress | None = None,
    notify: Notify | None = None,
    media_root: Path | None = None,
) -> dict[str, Any]:
    """Build one source (its bundled sample when `raw` is None; media under `media_root` when given) into `out`;
    return its stats.

    `progress(description, done, total)` follows the records (its first call counts those already built);
    `notify(text)` gets one-line messages. Raises LockHeld while another build of the source writes `out`.
    """
    from avuie.build.pipeline import build
    from avuie.builders import get_builder
    from avuie.samples import ensure_sample

    get_builder(source, **params)  # unknown source: KeyError naming the known ones
    if raw is None:
        raw = ensure_sample(source)
        if notify:
            notify(f"{source}: using the bundled sample at {raw}")
    config = BuildConfig(
        source=source,
        raw=Path(raw),
        out=out,
        splits=splits,
        limit=limit,
        workers=workers,
        shard_size=shard_size,
        shard_bytes=shard_bytes,
        params=params,
        reasoning=reasoning,
        media_root=None if media_root is None else Path(media_root),
    )
    if media_root is not None and not Path(media_root).is_dir():
        raise BuildRequestError(f"{media_root} is not a folder", param_hint="--media-root")
    engine = make_engine(reasoning, out, reasoning_opts)
    try:
        progress_text = getattr(engine, "progress_text", None)

        def report(done: int, total: int) -> None:
            if progress:
                desc = f"build {source}" + (f" · {progress_text()}" if progress_text else "")
                progress(desc, done, total)

        return build(config, engine=engine, progress=report, notify=notify)
    finally:
        engine.close()


def load_layout(path: Path | None, known: set[str]) -> dict[str, str]:
    """Read a layout file (YAML or JSON: source name -> raw path); BuildRequestError on any problem."""
    if path is None:
        return {}
    if not path.is_file():
        raise BuildRequestError(f"layout file {path} does not exist", param_hint="--layout")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - yaml and json raise different types
        raise BuildRequestError(f"{path} is not valid YAML/JSON: {exc}", param_hint="--layout") from exc
    if not isinstance(data, dict):
        raise BuildRequestError(
            f"{path}: a layout file maps source names to raw paths", param_hint="--layout"
        )
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise BuildRequestError(f"{path}: unknown source(s) {', '.join(unknown)}", param_hint="--layout")
    return {str(k): str(v) for k, v in data.items()}


def find_raw(source: str, raw_root: Path, layout: dict[str, str]) -> tuple[Path | None, str]:
    """Where a source's raw tree is under raw_root (layout file first, then `raw_root/<source>`)."""
    from avuie.builders import get_builder

    builder = get_builder(source)
    if source in layout:  # an explicit entry is the only place looked at
        p = Path(layout[source])
        candidates = [p if p.is_absolute() else raw_root / p]
    else:
        candidates = [raw_root / name for name in (source, *builder.raw_aliases)]
    for cand in candidates:
        if cand.exists() and builder.detect(cand):
            return cand, ""
    tried = ", ".join(str(c) for c in candidates)
    return None, f"no {source} release layout found (tried {tried}; expected {builder.layout})"


def split_params(params: dict[str, Any], names: list[str]) -> dict[str, dict[str, Any]]:
    """`SOURCE.KEY=VALUE` parameters of `--all` as {source: {key: value}}; BuildRequestError on a plain KEY."""
    plain = sorted(k for k in params if "." not in k)
    if plain:
        raise BuildRequestError(f"with --all, give parameters as SOURCE.KEY=VALUE (got {', '.join(plain)})")
    return {
        name: {k.split(".", 1)[1]: v for k, v in params.items() if k.split(".", 1)[0] == name}
        for name in names
    }


def build_all(
    root: Path,
    raw_root: Path | None,
    layout: Path | None,
    options: dict[str, Any],
    run_one: Callable[..., dict[str, Any]] = build_one,
    on_built: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, str]:
    """Build every registered source into `root/<source>` (bundled samples, or raw trees under `raw_root`).

    `options` are `build_one`'s keyword options, with `params` as SOURCE.KEY=VALUE; `run_one` builds one source
    (default `build_one`) and `on_built(name, stats)` is called after each. Returns {skipped source: reason}.
    A bad request (layout without raw root, bad layout file, plain parameters) raises BuildRequestError first.
    """
    from avuie.builders import BuilderError, load_all

    if layout is not None and raw_root is None:
        raise BuildRequestError("--layout needs --raw-root", param_hint="--layout")
    if raw_root is not None and not raw_root.is_dir():
        raise BuildRequestError(f"{raw_root} is not a folder", param_hint="--raw-root")
    names = list(load_all())
    layout_map = load_layout(layout, set(names))
    options = dict(options)
    params = split_params(options.pop("params"), names)
    skipped: dict[str, str] = {}
    for name in names:
        src_raw = None
        if raw_root is not None:
            src_raw, why = find_raw(name, raw_root, layout_map)
            if src_raw is None:
                skipped[name] = why
                continue
        try:
            stats = run_one(name, src_raw, root / name, params=params[name], **options)
        except BuildRequestError:
            raise
        except (BuilderError, KeyError, FileNotFoundError, ValueError) as exc:
            skipped[name] = str(exc.args[0] if exc.args else exc)
            continue
        if on_built:
            on_built(name, stats)
    return skipped
