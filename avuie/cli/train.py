"""`avuie train` and `avuie predict`: the bundled I-LoRA trainer (avuie.trainer). torch is imported lazily."""

from __future__ import annotations

from pathlib import Path

import typer

TOKEN_HELP = (
    "Bearer token of the shard server (its --token); default: $AVUIE_SERVE_TOKEN. Never saved in RUN."
)


def fail(error: Exception) -> typer.Exit:
    """Print `error: ...` for a data or config problem (a 401 explains --token) and return Exit(2) to raise."""
    from avuie.trainer.data import is_unauthorized

    message = str(error)
    if is_unauthorized(error):
        message = (
            "the shard server refused the request (401 unauthorized): pass --token TOKEN, or set "
            f"AVUIE_SERVE_TOKEN, with the token the server was started with ({error})"
        )
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add the `train`, `predict` and `adapter export` commands to the app."""
    app.command("train")(train)
    app.command("predict")(predict)
    app.add_typer(adapter_app, name="adapter")


def train(
    config: str = typer.Option(
        ..., "--config", help="A shipped config name (crab_plus_omni7b, modular, tiny) or a YAML path."
    ),
    data: str = typer.Option(
        ..., "--data", help="Build folder, root of builds, tar list or shard server URL (http://...)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Run folder: config, log.jsonl, checkpoints. Rerunning resumes from it."
    ),
    max_steps: int | None = typer.Option(
        None, "--max-steps", help="Override train.max_steps (schedule length)."
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a config key, e.g. --set model.path=/models/omni."
    ),
    token: str | None = typer.Option(None, "--token", envvar="AVUIE_SERVE_TOKEN", help=TOKEN_HELP),
) -> None:
    """Train Crab+ (or the modular model) with I-LoRA on avuie shards.

    One process: `avuie train ...`. Several GPUs or nodes: `torchrun --nproc_per_node N -m avuie train ...`
    (DDP, or FSDP with --set train.distributed=fsdp). bf16 autocast on GPU, fp32 on CPU. A checkpoint is written
    every train.save_every steps; running the same command again resumes exactly from the latest one (with
    another --max-steps, the learning rate follows the new schedule from the resumed step on). --data is
    checked before anything is written to --out.
    """
    from avuie.trainer.config import load_config

    try:
        cfg = load_config(config, list(overrides) + ([f"train.max_steps={max_steps}"] if max_steps else []))
    except (FileNotFoundError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="--config/--set") from error
    if token:
        cfg.data.token = token
    from avuie.trainer.recipe import train as run_recipe

    try:
        lines = run_recipe(cfg, data, out)
    except (FileNotFoundError, ValueError) as error:
        raise fail(error) from error
    if lines:
        last = lines[-1]
        typer.echo(
            f"step {last['step']}: loss {last['loss']:.4f}; log {out / 'log.jsonl'}; checkpoints {out / 'checkpoints'}"
        )


TEST_SPLITS = ("test", "test_s", "test_u", "test_n")


def predict(
    run: Path = typer.Option(
        None, "--run", help="A run folder written by `avuie train` (or --base-url and --model)."
    ),
    data: str = typer.Option(..., "--data", help="Build folder, root of builds or shard server URL."),
    split: list[str] = typer.Option(
        None,
        "--split",
        help="Split(s) to predict (repeatable). Default: every test split (test, test_s, test_u, test_n).",
    ),
    to: Path = typer.Option(..., "--to", help="Output JSONL: one {id, response} line per sample."),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Prompts per generate call (default: predict.batch_size)."
    ),
    max_new_tokens: int | None = typer.Option(
        None, "--max-new-tokens", help="Default: predict.max_new_tokens."
    ),
    limit: int | None = typer.Option(None, "--limit", help="Stop after this many samples."),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="A checkpoint folder (default: the run's latest)."
    ),
    max_length: int | None = typer.Option(
        None, "--max-length", help="Longest prompt in tokens (default: the run's data.max_length)."
    ),
    token: str | None = typer.Option(None, "--token", envvar="AVUIE_SERVE_TOKEN", help=TOKEN_HELP),
    base_url: str | None = typer.Option(
        None, "--base-url", help="A served model instead of --run: its OpenAI-compatible endpoint (vLLM...)."
    ),
    model: str | None = typer.Option(None, "--model", help="The served model's name (with --base-url)."),
    concurrency: int = typer.Option(8, "--concurrency", help="Served model: requests in flight."),
    served_opt: list[str] = typer.Option(
        None,
        "--served-opt",
        help="Served model setting key=value (timeout, refresh, temperature, max_frames...).",
    ),
) -> None:
    """Generate a response for every sample of a split with a trained run (batched, left padding, greedy, KV
    cache, bf16 on a GPU; prints the count and tokens/s), or with a model served behind an OpenAI-compatible
    endpoint (--base-url URL --model NAME; no torch needed)."""
    split = list(split) if split else list(TEST_SPLITS)
    if base_url is not None or model is not None:  # served model: dispatched before anything imports torch
        from avuie.cli.predict_served import predict_served_cmd

        return predict_served_cmd(dict(locals()))  # the options above, by name
    if run is None:
        raise typer.BadParameter("give --run RUN, or --base-url URL and --model NAME for a served model")
    from avuie.trainer.predict import predict as run_predict

    try:
        done = run_predict(
            run, data, split, to, batch_size, max_new_tokens, limit, checkpoint, max_length, token
        )
    except (FileNotFoundError, ValueError) as error:
        raise fail(error) from error
    typer.echo(
        f"wrote {done['written']} predictions to {to} ({done['new_tokens']} new tokens in "
        f"{done['seconds']:.1f} s, {done['tokens_per_s']:.1f} tokens/s)"
    )


adapter_app = typer.Typer(help="Adapters of trained runs.", no_args_is_help=True)


@adapter_app.command("export")
def adapter_export(
    run: Path = typer.Argument(..., help="A run folder written by `avuie train`."),
    to: Path = typer.Option(..., "--to", help="Output folder."),
    fmt: str = typer.Option(
        "peft", "--format", help="peft (a peft LoRA) or ilora (our format + LOADING.md)."
    ),
    head: int | None = typer.Option(None, "--head", help="H>1 as peft: export head K's B alone."),
    average: bool = typer.Option(False, "--average", help="H>1 as peft: export the mean of the heads' B."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Default: the run's latest."),
) -> None:
    """Export a run's adapter: as a peft LoRA that `PeftModel.from_pretrained` loads (exact for one head), or in
    our format with a loader snippet. A several-head adapter is no peft LoRA (its router mixes the heads per
    token): it is written in our format unless --head or --average picks an approximation."""
    from avuie.trainer.export import NotALoRA, export_ilora, export_peft

    if fmt not in ("peft", "ilora"):
        raise typer.BadParameter("must be peft or ilora", param_hint="--format")
    try:
        if fmt == "peft":
            try:
                done = export_peft(run, to, checkpoint, head, average)
            except NotALoRA as why:
                typer.echo(f"not a peft LoRA: {why}; writing the I-LoRA format instead", err=True)
                done = export_ilora(run, to, checkpoint)
        else:
            done = export_ilora(run, to, checkpoint)
    except (FileNotFoundError, ValueError) as error:
        raise fail(error) from error
    what = "exact" if done["exact"] else f"approximate: {done['b']}"
    typer.echo(f"wrote a {done['format']} adapter ({done['heads']} head(s), {what}) to {to}")
