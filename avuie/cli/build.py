"""Build-side commands: build, scan, sources, validate, schema."""

from __future__ import annotations

import json
import os
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


def make_engine(reasoning: str, out: Path, opts: dict[str, Any]):
    """The reasoning engine for a build: the offline template, or an OpenAI-compatible endpoint."""
    from avuie.reasoning.engine import TemplateEngine

    if reasoning == "template":
        return TemplateEngine()
    if reasoning == "openai":
        if not opts.get("model"):
            raise typer.BadParameter("--reasoning openai needs --model")
        from avuie.reasoning.openai_engine import make_openai_engine

        extra = dict(opts.get("extra") or {})
        if opts.get("audio_input"):
            extra["audio_input"] = True
        try:
            return make_openai_engine(
                model=opts["model"],
                base_url=opts.get("base_url"),
                api_key=os.environ.get("OPENAI_API_KEY", "sk-none"),
                cache_path=out / "reasoning_cache.sqlite",
                concurrency=opts.get("concurrency", 8),
                refresh=opts.get("refresh", False),
                max_attempts=opts.get("max_attempts", 3),
                timeout=opts.get("timeout", 60.0),
                **extra,
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    raise typer.BadParameter(f"--reasoning must be template or openai, got {reasoning!r}")


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
) -> dict[str, Any]:
    """Build one source (its bundled sample when `raw` is None) into `out`, with a progress bar."""
    from avuie.build.pipeline import BuildConfig, build
    from avuie.builders import get_builder
    from avuie.samples import ensure_sample

    get_builder(source, **params)  # unknown source: KeyError naming the known ones
    if raw is None:
        raw = ensure_sample(source)
        console.print(f"[dim]{source}: using the bundled sample at {raw}[/dim]")
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
    )
    engine = make_engine(reasoning, out, reasoning_opts)
    try:
        with _progress() as bar:
            task = bar.add_task(f"build {source}", total=None)

            progress_text = getattr(engine, "progress_text", None)

            def progress(done: int, total: int) -> None:
                desc = f"build {source}" + (f" · {progress_text()}" if progress_text else "")
                bar.update(task, completed=done, total=total, description=desc)

            return build(config, engine=engine, progress=progress)
    finally:
        engine.close()


def _endpoint_error() -> type[Exception]:
    """The reasoning engine's 'endpoint refuses every request' error (imported only when needed)."""
    from avuie.reasoning.openai_engine import EndpointError

    return EndpointError


def _print_stats(source: str, stats: dict[str, Any]) -> None:
    table = Table(title=f"{source}: in = written + rejected")
    for col in ("split", "in", "written", "rejected", "reasons"):
        table.add_column(col)
    for split, s in sorted(stats["splits"].items()):
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(s["reasons"].items()))
        table.add_row(split, str(s["in"]), str(s["written"]), str(s["rejected"]), reasons)
    console.print(table)


def _load_layout(path: Path | None, known: set[str]) -> dict[str, str]:
    """Read a layout file (YAML or JSON: source name -> raw path); BadParameter on any problem."""
    if path is None:
        return {}
    if not path.is_file():
        raise typer.BadParameter(f"layout file {path} does not exist", param_hint="--layout")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - yaml and json raise different types
        raise typer.BadParameter(f"{path} is not valid YAML/JSON: {exc}", param_hint="--layout") from exc
    if not isinstance(data, dict):
        raise typer.BadParameter(
            f"{path}: a layout file maps source names to raw paths", param_hint="--layout"
        )
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise typer.BadParameter(f"{path}: unknown source(s) {', '.join(unknown)}", param_hint="--layout")
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


def register(app: typer.Typer) -> None:
    """Add build, scan, sources, validate and schema."""

    @app.command("build")
    def build_cmd(
        source: str = typer.Option(None, "--source", "-s", help="Source name (see `avuie sources`)."),
        all_sources: bool = typer.Option(
            False, "--all", help="Build every source (bundled samples, or --raw-root)."
        ),
        raw: Path = typer.Option(
            None, "--raw", help="Raw root of the source in its release layout (default: the bundled sample)."
        ),
        raw_root: Path = typer.Option(
            None, "--raw-root", help="With --all: folder holding one raw tree per source."
        ),
        layout: Path = typer.Option(
            None, "--layout", help="With --all: YAML/JSON file mapping source -> raw path."
        ),
        out: Path = typer.Option(
            None, "--out", "-o", help="Build directory (default avuie-out/<source>, or avuie-out with --all)."
        ),
        split: list[str] = typer.Option(None, "--split", help="Only these splits (repeatable)."),
        limit: int = typer.Option(None, "--limit", help="At most N records per split."),
        workers: int = typer.Option(2, "--workers", "-j", help="Parallel media workers."),
        shard_size: int = typer.Option(256, "--shard-size", help="Records per shard."),
        shard_bytes: int = typer.Option(
            1 << 30, "--shard-bytes", help="A shard rolls over to a new part past this size."
        ),
        param: list[str] = typer.Option(
            None,
            "--param",
            "-p",
            help="Builder parameter key=value (repeatable; with --all: SOURCE.KEY=VALUE).",
        ),
        reasoning: str = typer.Option(
            "template", "--reasoning", help="template (offline, default) or openai."
        ),
        model: str = typer.Option(None, "--model", help="Model name for --reasoning openai."),
        base_url: str = typer.Option(
            None, "--base-url", help="OpenAI-compatible endpoint (key from OPENAI_API_KEY)."
        ),
        concurrency: int = typer.Option(
            8, "--concurrency", help="Requests in flight for --reasoning openai."
        ),
        refresh: bool = typer.Option(False, "--refresh", help="Ignore the reasoning cache."),
        max_attempts: int = typer.Option(
            3, "--max-attempts", help="Model attempts per sample before the template fallback."
        ),
        timeout: float = typer.Option(60.0, "--timeout", help="Per-request timeout in seconds."),
        audio_input: bool = typer.Option(
            False, "--audio-input", help="Send the audio as input_audio (endpoints that accept audio)."
        ),
        reasoning_opt: list[str] = typer.Option(
            None,
            "--reasoning-opt",
            help="Further reasoning setting key=value (image_size, max_frames, temperature, max_tokens, "
            "min_chars, max_chars, seed...).",
        ),
    ) -> None:
        """Build validated WebDataset shards from a source's original release layout."""
        from avuie.builders import BuilderError, load_all

        opts = {
            "model": model,
            "base_url": base_url,
            "concurrency": concurrency,
            "refresh": refresh,
            "max_attempts": max_attempts,
            "timeout": timeout,
            "audio_input": audio_input,
            "extra": parse_params(reasoning_opt),
        }
        kw = dict(
            splits=split or None,
            limit=limit,
            workers=workers,
            shard_size=shard_size,
            shard_bytes=shard_bytes,
            params=parse_params(param),
            reasoning=reasoning,
            reasoning_opts=opts,
        )
        if all_sources == bool(source):
            raise typer.BadParameter("give exactly one of --source NAME or --all")
        if source:
            target = out or Path("avuie-out") / source
            try:
                stats = build_one(source, raw, target, **kw)
            except (BuilderError, KeyError, FileNotFoundError, ValueError, _endpoint_error()) as exc:
                console.print(f"[red]error:[/red] {exc.args[0] if exc.args else exc}")
                raise typer.Exit(2) from exc
            _print_stats(source, stats)
            console.print(f"shards and manifest in {target}")
            return
        root = out or Path("avuie-out")
        if layout is not None and raw_root is None:
            raise typer.BadParameter("--layout needs --raw-root", param_hint="--layout")
        if raw_root is not None and not raw_root.is_dir():
            raise typer.BadParameter(f"{raw_root} is not a folder", param_hint="--raw-root")
        layout_map = _load_layout(layout, set(load_all()))
        skipped: dict[str, str] = {}
        all_params = kw.pop("params")
        plain = sorted(k for k in all_params if "." not in k)
        if plain:
            raise typer.BadParameter(
                f"with --all, give parameters as SOURCE.KEY=VALUE (got {', '.join(plain)})"
            )
        for name in load_all():
            kw["params"] = {
                k.split(".", 1)[1]: v for k, v in all_params.items() if k.split(".", 1)[0] == name
            }
            src_raw = None
            if raw_root is not None:
                src_raw, why = find_raw(name, raw_root, layout_map)
                if src_raw is None:
                    skipped[name] = why
                    continue
            try:
                stats = build_one(name, src_raw, root / name, **kw)
            except (BuilderError, KeyError, FileNotFoundError, ValueError) as exc:
                skipped[name] = str(exc.args[0] if exc.args else exc)
                continue
            _print_stats(name, stats)
        for name, why in skipped.items():
            console.print(f"[yellow]skipped {name}:[/yellow] {why}")
        built = len(load_all()) - len(skipped)
        console.print(f"built {built} sources into {root}; skipped {len(skipped)}")
        if built == 0:
            console.print("[red]error:[/red] no source was built")
            raise typer.Exit(1)

    @app.command("scan")
    def scan_cmd(
        source: str = typer.Option(..., "--source", "-s", help="Source name."),
        raw: Path = typer.Option(None, "--raw", help="Raw root (default: the bundled sample)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        param: list[str] = typer.Option(None, "--param", "-p", help="Builder parameter key=value."),
    ) -> None:
        """Parse a source's annotations only (no media work): records, missing media and rejects per split."""
        from avuie.build.scan import scan
        from avuie.builders import BuilderError

        try:
            report = scan(source, raw, parse_params(param))
        except (BuilderError, KeyError, ValueError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
        if as_json:
            sys.stdout.write(json.dumps(report, indent=1) + "\n")
            return
        table = Table(title=f"scan {source} ({report['raw']})")
        for col in ("split", "records", "samples", "media_missing", "rejected"):
            table.add_column(col)
        for split, s in sorted(report["splits"].items()):
            table.add_row(split, *(str(s[c]) for c in ("records", "samples", "media_missing", "rejected")))
        Console().print(table)
        for reason, n in sorted(report["reject_reasons"].items()):
            Console().print(f"rejected {n}: {reason}")

    @app.command("sources")
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

    @app.command("validate")
    def validate_cmd(
        out: Path = typer.Argument(..., help="A build directory (or a folder of builds)."),
    ) -> None:
        """Re-validate every sample of every shard; exit non-zero listing the failing ids."""
        from avuie.build.validate import validate_build

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

    @app.command("demo")
    def demo_cmd(
        out: Path = typer.Option(Path("avuie-out"), "--out", "-o", help="Where the builds and the run go."),
        steps: int = typer.Option(3, "--steps", help="I-LoRA training steps on the streamed data."),
        stream_samples: int = typer.Option(64, "--stream-samples", help="Samples to stream over HTTP."),
    ) -> None:
        """Build every bundled sample, validate, serve over HTTP, stream, and take a few I-LoRA steps."""
        from avuie.demo import run_demo

        summary = run_demo(out, steps=steps, stream_samples=stream_samples)
        console.print(
            f"[green]demo done:[/green] {summary['sources']} sources, {summary['samples']} samples validated, "
            f"{sum(summary['streamed'].values())} streamed, losses {summary['losses']}"
        )

    @app.command("schema")
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
