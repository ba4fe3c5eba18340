"""The reasoning engine of a build: the offline template, or an OpenAI-compatible endpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


class BuildRequestError(ValueError):
    """A build request that cannot run as given (a bad option or option file); `param_hint` names the option."""

    def __init__(self, message: str, param_hint: str | None = None) -> None:
        super().__init__(message)
        self.param_hint = param_hint


def make_engine(reasoning: str, out: Path, opts: dict[str, Any]):
    """Return the reasoning engine for a build into `out` ("template" or "openai" with `opts`).

    Raises BuildRequestError for an unknown kind, a missing model or settings the endpoint engine refuses.
    """
    from avuie.reasoning.engine import TemplateEngine

    if reasoning == "template":
        return TemplateEngine()
    if reasoning == "openai":
        if not opts.get("model"):
            raise BuildRequestError("--reasoning openai needs --model")
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
            raise BuildRequestError(str(exc)) from exc
    raise BuildRequestError(f"--reasoning must be template or openai, got {reasoning!r}")


def endpoint_error() -> type[Exception]:
    """The reasoning engine's 'endpoint refuses every request' error (imported only when needed)."""
    from avuie.reasoning.openai_engine import EndpointError

    return EndpointError
