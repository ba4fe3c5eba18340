"""Reasoning chains from any OpenAI-compatible chat endpoint (OpenAI, vLLM, a local omni-model server).

`OpenAIEngine.generate(drafts)` runs the drafts of a batch concurrently through the request layer
(avuie.reasoning.chat: a total deadline per request, a reply size cap, bounded concurrency, retries honouring
Retry-After, lenient reply reading). Every reply is checked (avuie.reasoning.check) in a worker thread, never on
the event loop, after a length gate that refuses replies far longer than any passing one; a failed check gets a
corrective message, up to `max_attempts` replies per sample, then the template chain marked `fallback` with its
reason. One sample never stops the batch: whatever goes wrong with it ends in a fallback that says why; only an
endpoint that refuses everything (EndpointError) stops the run. Finished samples are committed to the SQLite
cache at once, so a rerun (or a killed run resumed) only asks for what is missing.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from avuie.reasoning.cache import ChainCache, cache_key, draft_hash
from avuie.reasoning.chat import (
    ChatClient,
    EndpointError,
    EndpointSettings,
    TransportError,
    gather_all,
    retry_after_seconds,
    short,
)
from avuie.reasoning.check import CheckResult, CheckSettings, check_reply, corrective_message
from avuie.reasoning.engine import Draft, ReasoningResult
from avuie.reasoning.prompts import MediaSettings, build_messages, draft_style, load_prompt

__all__ = ["EndpointError", "OpenAIEngine", "OpenAISettings", "TransportError", "make_openai_engine"]
__all__ += ["retry_after_seconds", "safe_check"]


@dataclass
class OpenAISettings(EndpointSettings):
    """Everything that shapes the requests, the retries and the checks (see make_openai_engine)."""

    cache_path: str | Path | None = None
    refresh: bool = False
    max_attempts: int = 3  # model replies per sample: the first + corrective retries
    temperature: float = 0.2
    top_p: float | None = None
    max_tokens: int = 600
    seed: int | None = None
    image_size: int = 224
    max_frames: int = 10
    audio_input: bool = False
    min_chars: int = 40
    max_chars: int = 2000

    def validate(self) -> None:
        """Raise ValueError with a clear message for impossible settings."""
        if not self.model:
            raise ValueError("--model is required for --reasoning openai")
        super().validate()
        for name in ("max_attempts", "image_size", "max_frames", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.min_chars > self.max_chars:
            raise ValueError("min_chars must be <= max_chars")

    def request_settings(self) -> dict[str, Any]:
        """The settings that change a reply (part of the cache key)."""
        keys = ("temperature", "top_p", "max_tokens", "seed", "image_size", "max_frames", "audio_input")
        return {k: getattr(self, k) for k in keys}

    def request_params(self) -> dict[str, Any]:
        """The sampling fields of each chat request."""
        params: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        params.update({k: getattr(self, k) for k in ("top_p", "seed") if getattr(self, k) is not None})
        return params


def make_openai_engine(
    model: str,
    base_url: str | None = None,
    api_key: str | None = None,
    cache_path: str | Path | None = None,
    **settings: Any,
) -> OpenAIEngine:
    """Build the OpenAI-compatible engine; `settings` are further OpenAISettings fields (concurrency, refresh,
    max_attempts, timeout, max_reply_bytes, audio_input, image_size, ...). Returns the engine; ValueError for
    unknown settings."""
    known = {f.name for f in fields(OpenAISettings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown reasoning setting(s) {unknown}; known: {sorted(known)}")
    return OpenAIEngine(
        OpenAISettings(model=model, base_url=base_url, api_key=api_key, cache_path=cache_path, **settings)
    )


def reply_limit(sample: dict[str, Any], checks: CheckSettings) -> int:
    """The longest reply worth checking: twice the longest reasoning allowed, four times the answer and 2,000
    characters of slack. Any passing reply is far shorter; a longer one fails as too long without parsing."""
    return 2 * checks.max_chars + 4 * len(str(sample.get("answer", ""))) + 2000


def safe_check(reply: str, sample: dict[str, Any], checks: CheckSettings) -> CheckResult:
    """check_reply behind the length gate; a reply the checker cannot digest (an exception in a parser) is a
    failed check `check_error`, never a crash. Returns the CheckResult."""
    limit = reply_limit(sample, checks)
    if len(reply) > limit:
        return CheckResult(False, "", "too_long", f"the reply has {len(reply)} characters, more than {limit}")
    try:
        return check_reply(reply, sample, checks)
    except Exception as exc:  # noqa: BLE001 - a hostile reply must not stop the batch
        return CheckResult(False, "", "check_error", short(f"the reply could not be checked: {exc!r}"))


class OpenAIEngine:
    """The ReasoningEngine of an OpenAI-compatible endpoint (see the module docstring)."""

    def __init__(self, settings: OpenAISettings) -> None:
        settings.validate()
        self.settings = settings
        self.chat = ChatClient(settings)
        self.media = MediaSettings(settings.image_size, settings.max_frames, settings.audio_input)
        self.checks = CheckSettings(settings.min_chars, settings.max_chars)
        self.cache = ChainCache(settings.cache_path) if settings.cache_path else None
        self.counts: Counter[str] = Counter()
        self.fallbacks: Counter[str] = Counter()
        self.check_failures: Counter[str] = Counter()
        self.prompt_versions: set[str] = set()

    def generate(self, drafts: list[Draft]) -> list[ReasoningResult]:
        """One ReasoningResult per draft, in order; raises EndpointError only when the endpoint refuses all."""
        return self.chat.run(lambda: gather_all([self._guarded(d) for d in drafts]))

    async def _guarded(self, draft: Draft) -> ReasoningResult:
        """_one, with anything unexpected turned into a fallback marked `error` (EndpointError still stops)."""
        try:
            return await self._one(draft)
        except EndpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - one sample never stops the batch
            return self._done(self._fallback(draft, "error", 0, {}, short(f"{type(exc).__name__}: {exc}")))

    # ---- one sample -----------------------------------------------------------------------------------------
    async def _one(self, draft: Draft) -> ReasoningResult:
        s = self.settings
        self.counts["samples"] += 1
        try:
            prompt = load_prompt(str(draft.sample["family"]), draft_style(draft))  # examples in its style
        except (KeyError, ValueError) as exc:
            return self._done(self._fallback(draft, "bad_request", 0, {}, str(exc)))
        self.prompt_versions.add(prompt.prompt_version)
        version = f"{prompt.prompt_version}+{prompt.sha}"
        key = cache_key(draft_hash(draft), version, s.model, s.request_settings())
        cached = None if (self.cache is None or s.refresh) else await self._from_cache(key, draft)
        if cached is not None:
            self.counts["cache_hits"] += 1
            return self._done(cached)
        try:
            _, messages = build_messages(draft, self.media)
        except Exception as exc:  # noqa: BLE001 - a draft we cannot turn into a request, e.g. unreadable media
            return self._done(self._fallback(draft, "bad_request", 0, {}, str(exc), prompt.prompt_version))
        return self._done(await self._converse(draft, key, messages, prompt.prompt_version))

    async def _converse(
        self, draft: Draft, key: str, messages: list[dict[str, Any]], version: str
    ) -> ReasoningResult:
        """Ask, check, correct: a checked model chain, or the template fallback with the reason."""
        s = self.settings
        sample_id = str(draft.sample.get("id", ""))
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        reply, result = "", CheckResult(False, reason="check_failed")
        for attempt in range(1, s.max_attempts + 1):
            try:
                got = await self.chat.complete(messages, sample_id, **s.request_params())
            except TransportError as exc:
                # not cached: the endpoint never judged this sample, a rerun asks again
                return self._fallback(draft, f"api_error:{exc.kind}", attempt - 1, usage, exc.detail, version)
            for k in usage:
                usage[k] += got.usage[k]
            reply = got.text
            result = await asyncio.to_thread(safe_check, reply, draft.sample, self.checks)
            if result.ok:
                info = self._info("model", version, attempt, usage)
                info.update(
                    check_outcome="passed" if attempt == 1 else "passed_after_retry", flagged=result.flagged
                )
                self._put(key, sample_id, reply, info)
                return ReasoningResult(result.reasoning, info)
            self.check_failures[result.reason or "unknown"] += 1
            shown = reply[: reply_limit(draft.sample, self.checks)]  # the history never carries a flood
            messages = [
                *messages,
                {"role": "assistant", "content": shown},
                {"role": "user", "content": corrective_message(result, draft.sample["answer"], self.checks)},
            ]
        reason = result.reason or "check_failed"
        fallback = self._fallback(draft, reason, s.max_attempts, usage, result.detail, version)
        self._put(key, sample_id, reply[: reply_limit(draft.sample, self.checks)], fallback.info)
        return fallback

    def _info(
        self, kind: str, prompt_version: str | None, attempts: int, usage: dict[str, int]
    ) -> dict[str, Any]:
        return {
            "kind": kind,
            "model": self.settings.model,
            "prompt_version": prompt_version,
            "checked": True,
            "attempts": attempts,
            "check_outcome": None,
            "fallback_reason": None,
            "flagged": False,
            "usage": dict(usage),
        }

    def _fallback(
        self, draft: Draft, reason: str, attempts: int, usage: dict, detail: str, version: str | None = None
    ) -> ReasoningResult:
        from avuie.reasoning.template import template_reasoning

        info = self._info("fallback", version, attempts, usage)
        info.update(
            check_outcome=f"failed:{reason}", fallback_reason=f"{reason}: {detail}" if detail else reason
        )
        return ReasoningResult(template_reasoning(draft.sample, draft.context), info)

    async def _from_cache(self, key: str, draft: Draft) -> ReasoningResult | None:
        assert self.cache is not None
        hit = self.cache.get(key)
        if hit is None:
            return None
        reply, info = hit
        if info.get("kind") == "fallback":
            if info.get("attempts", 0) < self.settings.max_attempts:
                return None  # more attempts are allowed now: ask again
            from avuie.reasoning.template import template_reasoning

            return ReasoningResult(template_reasoning(draft.sample, draft.context), info)
        result = await asyncio.to_thread(safe_check, reply or "", draft.sample, self.checks)
        if not result.ok:
            return None  # the checks changed since: ask again
        return ReasoningResult(result.reasoning, {**info, "flagged": result.flagged})

    def _put(self, key: str, sample_id: str, reply: str, info: dict[str, Any]) -> None:
        if self.cache is not None:
            self.cache.put(key, sample_id, reply, info)

    def _done(self, result: ReasoningResult) -> ReasoningResult:
        self.counts[f"chains_{result.info['kind']}"] += 1
        if result.info["kind"] == "fallback":
            self.fallbacks[(result.info.get("fallback_reason") or "").split(": ")[0]] += 1
        if result.info.get("flagged"):
            self.counts["flagged"] += 1
        return result

    # ---- totals ---------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Totals so far: requests, retries by kind, tokens, chains by kind, fallbacks and check failures by reason."""
        c = self.counts
        return {
            "engine": "openai",
            "model": self.settings.model,
            "base_url": self.settings.base_url,
            "prompt_versions": sorted(self.prompt_versions),
            "samples": c["samples"],
            "cache_hits": c["cache_hits"],
            **self.chat.stats(),
            "chains": {k: c[f"chains_{k}"] for k in ("model", "fallback")},
            "flagged": c["flagged"],
            "fallbacks": dict(self.fallbacks),
            "check_failures": dict(self.check_failures),
            "settings": {k: v for k, v in asdict(self.settings).items() if k not in ("api_key", "headers")},
        }

    def progress_text(self) -> str:
        """A one-line summary for a progress bar: requests, tokens, fallbacks by reason."""
        c, chat = self.counts, self.chat.counts
        falls = ", ".join(f"{k} {v}" for k, v in self.fallbacks.most_common(3))
        tokens = chat["prompt_tokens"] + chat["completion_tokens"]
        return (
            f"req {chat['requests']} · tok {tokens} · cached {c['cache_hits']} · "
            f"fallback {sum(self.fallbacks.values())}" + (f" ({falls})" if falls else "")
        )

    def close(self) -> None:
        """Close the HTTP client, stop the loop thread and close the cache."""
        self.chat.close()
        if self.cache is not None:
            self.cache.close()
            self.cache = None
