"""Build-side commands: build, scan, sources, validate, schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """`key=value` builder parameters; values are read as JSON when they parse, else kept as text."""
    params: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise typer.BadParameter(f"--param expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    return params


def _progress():
    from avuie.cli.progress import progress_bar

    return progress_bar(console)


def _bad_request(exc: Exception) -> typer.BadParameter:
    """A BuildRequestError as typer's usage error (exit 2, naming the option)."""
    return typer.BadParameter(str(exc), param_hint=getattr(exc, "param_hint", None))


def build_with_bar(source: str, raw: Path | None, out: Path, **options: Any) -> dict[str, Any]:
    """`avuie.build.sources.build_one` with a rich progress bar; options as build_one takes them."""
    from avuie.build.sources import build_one

    with _progress() as bar:
        task = bar.add_task(f"build {source}", total=None)

        def progress(desc: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=desc)

        def notify(text: str) -> None:
            console.print(f"[dim]{text}[/dim]")

        return build_one(source, raw, out, progress=progress, notify=notify, **options)


def _print_stats(source: str, stats: dict[str, Any]) -> None:
    from avuie.cli.build_run import print_stats

    print_stats(source, stats)


_BUILD_OPTIONS = dict(
    source=typer.Option(None, "--source", "-s", help="Source name (see `avuie sources`)."),
    all_sources=typer.Option(False, "--all", help="Build every source (bundled samples, or --raw-root)."),
    raw=typer.Option(
        None,
        "--raw",
        help="Raw root of the source in its release layout: a folder or a URL such as s3://bucket/AVE_Dataset "
        "(default: the bundled sample).",
    ),
    raw_root=typer.Option(None, "--raw-root", help="With --all: folder holding one raw tree per source."),
    layout=typer.Option(None, "--layout", help="With --all: YAML/JSON file mapping source -> raw path."),
    out=typer.Option(
        None,
        "--out",
        "-o",
        help="Build directory or URL such as s3://bucket/avuie (default avuie-out/<source>, or avuie-out with --all).",
    ),
    split=typer.Option(None, "--split", help="Only these splits (repeatable)."),
    limit=typer.Option(None, "--limit", help="At most N records per split."),
    workers=typer.Option(2, "--workers", "-j", help="Parallel media workers."),
    shard_size=typer.Option(256, "--shard-size", help="Records per shard."),
    shard_bytes=typer.Option(
        1 << 30, "--shard-bytes", help="A shard rolls over to a new part past this size."
    ),
    param=typer.Option(
        None, "--param", "-p", help="Builder parameter key=value (repeatable; with --all: SOURCE.KEY=VALUE)."
    ),
    media_root=typer.Option(
        None, "--media-root", help="Folder holding the media, when they are stored away from --raw."
    ),
    progress=typer.Option(
        None, "--progress", help="json, bar or none (default: bar on a terminal, JSON lines otherwise)."
    ),
    config=typer.Option(
        None, "--config", help="A YAML build file (sources, raw roots, settings, reasoning, executor)."
    ),
    executor=typer.Option(
        "local", "--executor", help="local (this machine) or ray (a Ray cluster; pip install 'avuie[ray]')."
    ),
    address=typer.Option(
        None,
        "--address",
        help="With --executor ray: the cluster (auto, HOST:PORT, ray://HOST:10001); default a local Ray with --workers CPUs.",
    ),
)
_REASONING_OPTIONS = dict(
    reasoning=typer.Option("template", "--reasoning", help="template (offline, default) or openai."),
    model=typer.Option(None, "--model", help="Model name for --reasoning openai."),
    base_url=typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (key from OPENAI_API_KEY)."),
    concurrency=typer.Option(8, "--concurrency", help="Requests in flight for --reasoning openai."),
    refresh=typer.Option(False, "--refresh", help="Ignore the reasoning cache."),
    max_attempts=typer.Option(
        3, "--max-attempts", help="Model attempts per sample before the template fallback."
    ),
    timeout=typer.Option(60.0, "--timeout", help="Total seconds per request: connect and the whole reply."),
    audio_input=typer.Option(
        False, "--audio-input", help="Send the audio as input_audio (endpoints that accept audio)."
    ),
    reasoning_opt=typer.Option(
        None,
        "--reasoning-opt",
        help="Further reasoning setting key=value (image_size, max_frames, temperature, max_tokens, "
        "min_chars, max_chars, seed...).",
    ),
)
_B, _R = _BUILD_OPTIONS, _REASONING_OPTIONS


def build_cmd(
    source: str = _B["source"],
    all_sources: bool = _B["all_sources"],
    raw: str = _B["raw"],
    raw_root: Path = _B["raw_root"],
    layout: Path = _B["layout"],
    out: str = _B["out"],
    split: list[str] = _B["split"],
    limit: int = _B["limit"],
    workers: int = _B["workers"],
    shard_size: int = _B["shard_size"],
    shard_bytes: int = _B["shard_bytes"],
    param: list[str] = _B["param"],
    media_root: Path = _B["media_root"],
    progress: str = _B["progress"],
    config: Path = _B["config"],
    executor: str = _B["executor"],
    address: str = _B["address"],
    reasoning: str = _R["reasoning"],
    model: str = _R["model"],
    base_url: str = _R["base_url"],
    concurrency: int = _R["concurrency"],
    refresh: bool = _R["refresh"],
    max_attempts: int = _R["max_attempts"],
    timeout: float = _R["timeout"],
    audio_input: bool = _R["audio_input"],
    reasoning_opt: list[str] = _R["reasoning_opt"],
) -> None:
    """Build validated WebDataset shards from a source's original release layout."""
    from avuie.cli import build_run

    if config is not None:
        if source or all_sources:
            raise typer.BadParameter("--config names its sources: give no --source or --all")
        build_run.run_config(config, progress)
        return
    if all_sources == bool(source):
        raise typer.BadParameter("give exactly one of --source NAME, --all or --config FILE")
    if executor not in ("local", "ray"):
        raise typer.BadParameter(f"takes local or ray, not {executor!r}", param_hint="--executor")
    opts = dict(model=model, base_url=base_url, concurrency=concurrency, refresh=refresh)
    opts |= dict(max_attempts=max_attempts, timeout=timeout, audio_input=audio_input)
    kw = dict(
        splits=split or None, limit=limit, workers=workers, shard_size=shard_size, shard_bytes=shard_bytes,
        params=parse_params(param), reasoning=reasoning, media_root=media_root,
        reasoning_opts=opts | {"extra": parse_params(reasoning_opt)}, executor=executor, address=address,
    )  # fmt: skip
    if source:
        where = location(out) if out else Path("avuie-out") / source
        build_run.run_single(source, location(raw) if raw else None, where, kw, progress or "auto")
    else:
        build_run.run_every(
            location(out) if out else Path("avuie-out"), raw_root, layout, kw, progress or "auto"
        )


def readable(text: str) -> Path:
    """A folder to read a build from: a local path, or the local copy of a remote build (fetched first: only what
    changed since the last copy); exits 2 when the URL cannot be read."""
    from avuie.shards.sync import is_url, local_copy

    if not is_url(text):
        return Path(text)
    try:
        return local_copy(text, notify=lambda line: console.print(f"[dim]{line}[/dim]"))
    except (OSError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc


def location(text: str) -> Path | str:
    """A command-line folder argument: a URL (s3://...) stays text, anything else is a Path."""
    from avuie.shards.sync import is_url

    return text if is_url(text) else Path(text)


def scan_cmd(
    source: str = typer.Option(..., "--source", "-s", help="Source name."),
    raw: Path = typer.Option(None, "--raw", help="Raw root (default: the bundled sample)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    param: list[str] = typer.Option(None, "--param", "-p", help="Builder parameter key=value."),
    media_root: Path = _B["media_root"],
) -> None:
    """Parse a source's annotations only (no media work): records, buildable samples, missing media (with
    examples), rejects per split, and the splits without any entry."""
    from avuie.build.scan import scan
    from avuie.builders import BuilderError
    from avuie.cli.build_run import print_scan

    try:
        report = scan(source, raw, parse_params(param), media_root=media_root)
    except (BuilderError, KeyError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        sys.stdout.write(json.dumps(report, indent=1) + "\n")
        return
    print_scan(source, report)


def sources_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the builders with their task family, splits and expected raw layout."""
    from avuie.builders import load_all
    from avuie.samples import available

    bundled = set(available())
    rows = [
        {
            "source": n,
            "family": b.family.value,
            "splits": list(b.splits),
            "layout": b.layout,
            "description": b.description,
            "license": b.license,
            "bundled_sample": n in bundled,
        }
        for n, b in load_all().items()
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    table = Table(title=f"{len(rows)} sources")
    for col in ("source", "family", "splits", "expected raw layout"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["source"], r["family"], ",".join(r["splits"]), r["layout"])
    Console(width=160).print(table)


def validate_cmd(
    where: str = typer.Argument(
        ..., metavar="OUT", help="A build directory (or a folder of builds), or its URL (s3://bucket/avuie)."
    ),
) -> None:
    """Re-validate every sample of every shard; exit non-zero listing the failing ids."""
    from avuie.build.validate import validate_build

    out = readable(where)
    if not out.is_dir():
        console.print(f"[red]error:[/red] {out} is not a folder")
        raise typer.Exit(2)
    report = validate_build(out)
    for fail in report["failures"][:50]:
        console.print(f"[red]FAIL[/red] {fail['id']}: {fail['error']}")
    console.print(
        f"{report['samples']} samples in {report['shards']} shards; {len(report['failures'])} failed"
    )
    if report["failures"] or report["samples"] == 0:
        raise typer.Exit(1)


def repair_cmd(out: Path = typer.Argument(..., help="A build directory.")) -> None:
    """Finish an interrupted update of a build and recompute its manifest, rejects and stats from the shard
    markers; exit 1 listing what only a rebuild can fix."""
    from avuie.cli.build_run import run_repair

    run_repair(out)


def demo_cmd(
    out: Path = typer.Option(Path("avuie-out"), "--out", "-o", help="Where the builds and the run go."),
    steps: int = typer.Option(3, "--steps", help="I-LoRA training steps on the streamed data."),
    stream_samples: int = typer.Option(64, "--stream-samples", help="Samples to stream over HTTP."),
) -> None:
    """Build every bundled sample, validate, serve over HTTP, stream, and take a few I-LoRA steps."""
    from avuie.demo import run_demo

    summary = run_demo(out, steps=steps, stream_samples=stream_samples, run_one=build_with_bar)
    console.print(
        f"[green]demo done:[/green] {summary['sources']} sources, {summary['samples']} samples validated, "
        f"{sum(summary['streamed'].values())} streamed, losses {summary['losses']}"
    )


def schema_cmd(
    out: Path = typer.Option(None, "--out", "-o", help="Write to this file (default stdout)."),
) -> None:
    """Write the JSON Schema of a sample."""
    from avuie.schemas import json_schema

    text = json.dumps(json_schema(), indent=1)
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        out.write_text(text + "\n")
        console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add build, scan, sources, validate, repair and schema."""
    app.command("build")(build_cmd)
    app.command("scan")(scan_cmd)
    app.command("sources")(sources_cmd)
    app.command("validate")(validate_cmd)
    app.command("repair")(repair_cmd)
    app.command("demo")(demo_cmd)
    app.command("schema")(schema_cmd)
