"""Reasoning commands: `reason` (regenerate chains of a build) and `review export|apply` (human corrections)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from avuie.shards.layout import MANIFEST

console = Console(stderr=True)

CHAIN_KINDS = ("template", "model", "fallback", "human")


def _check_build(out: Path) -> None:
    if not (out / MANIFEST).exists():
        console.print(f"[red]error:[/red] {out} is not a build directory (no manifest.parquet)")
        raise typer.Exit(2)


def _count_selected(out: Path, kinds: set[str], splits: list[str] | None, ids: set[str] | None) -> int:
    """How many samples of the manifest a `reason` run will look at (for the progress bar)."""
    import pyarrow.parquet as pq

    rows = pq.read_table(out / MANIFEST, columns=["id", "split", "reasoning_kind"]).to_pylist()
    return sum(
        r["reasoning_kind"] in kinds
        and (not splits or r["split"] in splits)
        and (ids is None or r["id"] in ids)
        for r in rows
    )


_OUT = typer.Argument(..., help="A build directory.")
_MIN_CHARS = typer.Option(40, "--min-chars", help="Shortest accepted reasoning, in characters.")
_MAX_CHARS = typer.Option(2000, "--max-chars", help="Longest accepted reasoning, in characters.")
_AUDIO_INPUT_HELP = "The endpoint takes input_audio (else the audio is described in words)."


def _engine(reasoning: str, out: Path, opts: dict[str, Any]):
    """The engine `reason` asks (build/engines.py's), with its errors as usage errors."""
    from avuie.build.engines import BuildRequestError, make_engine

    if reasoning not in ("openai", "template"):
        raise typer.BadParameter(f"--reasoning must be openai or template, got {reasoning!r}")
    try:
        return make_engine(reasoning, out, opts)
    except BuildRequestError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _selector(kinds: set[str], splits: list[str] | None, ids: set[str] | None):
    """The samples a `reason` run regenerates: chain kind in `kinds`, in `splits` and `ids` when given."""

    def select(sample: dict) -> bool:
        kind = (sample.get("reasoning_info") or {}).get("kind", "template")
        return (
            kind in kinds
            and (not splits or sample["split"] in splits)
            and (ids is None or sample["id"] in ids)
        )

    return select


def _regenerate(out: Path, engine: Any, kinds: set[str], split: list[str] | None, ids: set[str] | None):
    """Run the rewrite with a progress bar; return (report, engine stats); exit 2 when the endpoint refuses."""
    from avuie.cli.progress import progress_bar
    from avuie.curate.rewrite import regenerate
    from avuie.reasoning.openai_engine import EndpointError

    text = getattr(engine, "progress_text", lambda: "")
    try:
        with progress_bar(console) as bar:
            task = bar.add_task("", total=_count_selected(out, kinds, split, ids))

            def progress(n: int) -> None:
                bar.update(task, advance=n, description=f"reason · {text()}")

            report = regenerate(out, engine, _selector(kinds, split, ids), progress)
    except EndpointError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    finally:
        stats = engine.stats()
        engine.close()
    return report, stats


def _print_reason_report(report: Any, stats: dict[str, Any]) -> None:
    for sample_id, why in list(report.invalid.items())[:20]:
        console.print(f"[yellow]kept the old chain of {sample_id}:[/yellow] {why}")
    fallbacks = ", ".join(f"{k} {v}" for k, v in (stats.get("fallbacks") or {}).items()) or "none"
    console.print(
        f"{len(report.changed)} chains changed in {len(report.shards)} shards; {len(report.kept)} kept their "
        f"old chain; requests {stats.get('requests', 0)}, cache hits {stats.get('cache_hits', 0)}; "
        f"fallbacks: {fallbacks}"
    )


def reason_cmd(
    out: Path = _OUT,
    reasoning: str = typer.Option("openai", "--reasoning", help="openai (default) or template."),
    model: str = typer.Option(None, "--model", help="Model name for --reasoning openai."),
    base_url: str = typer.Option(
        None, "--base-url", help="OpenAI-compatible endpoint (key from OPENAI_API_KEY)."
    ),
    only: list[str] = typer.Option(
        None, "--only", help="Chain kinds to regenerate (repeatable; default template and fallback)."
    ),
    split: list[str] = typer.Option(None, "--split", help="Only these splits (repeatable)."),
    ids: Path = typer.Option(None, "--ids", help="A file of sample ids (one a line) to regenerate."),
    concurrency: int = typer.Option(8, "--concurrency", help="Requests in flight."),
    refresh: bool = typer.Option(False, "--refresh", help="Ignore the reasoning cache."),
    max_attempts: int = typer.Option(
        3, "--max-attempts", help="Model replies per sample before the fallback."
    ),
    timeout: float = typer.Option(
        60.0, "--timeout", help="Total seconds per request: connect and the whole reply."
    ),
    audio_input: bool = typer.Option(False, "--audio-input", help=_AUDIO_INPUT_HELP),
    image_size: int = typer.Option(224, "--image-size", help="Longest side of the frames sent, in pixels."),
    max_frames: int = typer.Option(10, "--max-frames", help="At most this many frames per video."),
    temperature: float = typer.Option(0.2, "--temperature", help="Sampling temperature."),
    max_tokens: int = typer.Option(600, "--max-tokens", help="Longest reply, in tokens."),
    min_chars: int = _MIN_CHARS,
    max_chars: int = _MAX_CHARS,
) -> None:
    """(Re)generate the reasoning chains of an existing build, rewriting only the shards that change.

    Human chains are never replaced. With a warm cache (OUT/reasoning_cache.sqlite) nothing is asked twice.
    """
    from avuie.curate.rewrite import record_rewrite

    _check_build(out)
    kinds = set(only or ("template", "fallback"))
    if not kinds <= set(CHAIN_KINDS) or "human" in kinds:
        raise typer.BadParameter(f"--only takes {', '.join(CHAIN_KINDS[:3])}; human chains are kept")
    wanted_ids = None
    if ids is not None:
        wanted_ids = {line.strip() for line in ids.read_text().splitlines() if line.strip()}
    settings = dict(image_size=image_size, max_frames=max_frames, temperature=temperature, max_tokens=max_tokens,
                    min_chars=min_chars, max_chars=max_chars, audio_input=audio_input)  # fmt: skip
    opts = dict(model=model, base_url=base_url, concurrency=concurrency, refresh=refresh,
                max_attempts=max_attempts, timeout=timeout, extra=settings)  # fmt: skip
    engine = _engine(reasoning, out, opts)
    report, stats = _regenerate(out, engine, kinds, split, wanted_ids)
    record_rewrite(
        out,
        {"command": "reason", "changed": len(report.changed), "shards": report.shards, "engine": stats},
    )
    _print_reason_report(report, stats)


def review_export_cmd(
    out: Path = _OUT,
    to: Path = typer.Option(..., "--to", help="The review file to write: .jsonl or .csv."),
    everything: bool = typer.Option(
        False, "--all", help="Every model and fallback chain, not only those needing review."
    ),
) -> None:
    """Write every fallback, retried or flagged chain, with its frames and audio extracted beside the file."""
    from avuie.curate.review import export_review

    _check_build(out)
    try:
        n = export_review(out, to, everything=everything)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    console.print(f"wrote {n} chains to {to} (media in {to.parent / (to.stem + '_media')})")


def review_apply_cmd(
    out: Path = _OUT,
    file: Path = typer.Argument(..., help="The edited review file (.jsonl or .csv)."),
    min_chars: int = _MIN_CHARS,
    max_chars: int = _MAX_CHARS,
) -> None:
    """Re-check the edited chains and write the ones that pass back as `human`; exit 1 if any was refused."""
    from avuie.curate.review import apply_review
    from avuie.reasoning.check import CheckSettings

    _check_build(out)
    if not file.exists():
        raise typer.BadParameter(f"{file} does not exist")
    try:
        report = apply_review(out, file, CheckSettings(min_chars, max_chars))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    for sample_id, why in report.failed.items():
        console.print(f"[red]refused[/red] {sample_id}: {why}")
    console.print(
        f"{len(report.changed)} chains applied as human in {len(report.shards)} shards; "
        f"{len(report.unchanged)} unchanged; {len(report.failed)} refused"
    )
    if report.failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `reason` and the `review` group."""
    review_app = typer.Typer(
        help="Export chains that need a human look to JSONL/CSV, and apply the edited file back.",
        no_args_is_help=True,
    )
    app.command("reason")(reason_cmd)
    review_app.command("export")(review_export_cmd)
    review_app.command("apply")(review_apply_cmd)
    app.add_typer(review_app, name="review")
