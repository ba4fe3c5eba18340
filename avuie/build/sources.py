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
from avuie.build.executors import each_source, start
from avuie.shards.sync import is_url

# progress(description, done, total); notify(message)
ShowProgress = Callable[[str, int, int], None]
Notify = Callable[[str], None]


def build_one(
    source: str,
    raw: Path | str | None,
    out: Path | str,
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
    executor: str = "local",
    address: str | None = None,
) -> dict[str, Any]:
    """Build one source (its bundled sample when `raw` is None; media under `media_root` when given) into `out`
    with the `executor` (local, or ray at `address`); return its stats. `raw` and `out` may be fsspec URLs
    (`s3://bucket/AVE_Dataset`): see build/fetch.py and build/remote_out.py.

    `progress(description, done, total)` follows the records (its first call counts those already built);
    `notify(text)` gets one-line messages. Raises LockHeld while another build of the source writes `out`.
    """
    from avuie.builders import get_builder

    get_builder(source, **params)  # unknown source: KeyError naming the known ones
    if media_root is not None and (is_url(media_root) or not Path(media_root).is_dir()):
        raise BuildRequestError(
            f"{media_root} is not a folder (a media root is local)", param_hint="--media-root"
        )
    config = BuildConfig(
        source=source, raw=Path(), out=Path(), splits=splits, limit=limit, workers=workers,
        shard_size=shard_size, shard_bytes=shard_bytes, params=params, reasoning=reasoning,
        media_root=None if media_root is None else Path(media_root), executor=executor, address=address,
    )  # fmt: skip
    config.raw, config.raw_url = _raw_root(source, raw, notify)

    def run(folder: Path) -> dict[str, Any]:
        config.out = folder
        return _run(config, reasoning_opts, progress, notify)

    if is_url(out):
        from avuie.build.remote_out import build_remote

        return build_remote(str(out), source, run, notify)
    return run(Path(out))


def _raw_root(source: str, raw: Path | str | None, notify: Notify | None) -> tuple[Path, str | None]:
    """(local raw root, remote URL or None): the bundled sample, a local folder, or a remote root's mirror."""
    if raw is None:
        from avuie.samples import ensure_sample

        raw = ensure_sample(source)
        if notify:
            notify(f"{source}: using the bundled sample at {raw}")
        return Path(raw), None
    if not is_url(raw):
        return Path(raw), None
    from avuie.build.fetch import mirror_raw

    if notify:
        notify(f"{source}: reading the annotations of {raw} (media are fetched where they are cut)")
    return mirror_raw(str(raw)), str(raw)


def _run(
    config: BuildConfig, reasoning_opts: dict[str, Any], progress: ShowProgress | None, notify: Notify | None
) -> dict[str, Any]:
    """Build `config` (a local output folder) with the reasoning engine its options make."""
    from avuie.build.pipeline import build

    start(config.executor, config.workers, config.address)  # before build() sets its own signal handlers
    engine = make_engine(config.reasoning, Path(config.out), reasoning_opts)
    try:
        progress_text = getattr(engine, "progress_text", None)

        def report(done: int, total: int) -> None:
            if progress:
                desc = f"build {config.source}" + (f" · {progress_text()}" if progress_text else "")
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
    root: Path | str,
    raw_root: Path | None,
    layout: Path | None,
    options: dict[str, Any],
    run_one: Callable[..., dict[str, Any]] = build_one,
    on_built: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, str]:
    """Build every registered source into `root/<source>` (bundled samples, or raw trees under `raw_root`); with
    the Ray executor the sources build concurrently (their records are read and their pieces written by threads of
    this process, their media cut on the cluster).

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
    jobs: dict[str, Path | None] = {}
    for name in names:
        jobs[name], why = find_raw(name, raw_root, layout_map) if raw_root is not None else (None, "")
        if why:
            skipped[name] = why
            del jobs[name]

    def one(name: str) -> tuple[dict[str, Any] | None, str]:
        try:
            return run_one(name, jobs[name], _join(root, name), params=params[name], **options), ""
        except BuildRequestError:
            raise
        except (BuilderError, KeyError, FileNotFoundError, ValueError) as exc:
            return None, str(exc.args[0] if exc.args else exc)

    concurrent = options.get("executor") == "ray"
    if concurrent:
        start("ray", options.get("workers", 2), options.get("address"))
    for name, (stats, why) in each_source(list(jobs), one, concurrent):
        if stats is None:
            skipped[name] = why
        elif on_built:
            on_built(name, stats)
    return skipped


def _join(root: Path | str, name: str) -> Path | str:
    """`root/name` for a local folder or a URL."""
    return f"{str(root).rstrip('/')}/{name}" if is_url(root) else Path(root) / name
