"""Reasoning chains from any OpenAI-compatible chat endpoint (OpenAI, vLLM, a local omni-model server).

`OpenAIEngine.generate(drafts)` runs the drafts of a batch concurrently on its own event loop (a background
thread): at most `concurrency` requests in flight (an asyncio.Semaphore), 429 honours Retry-After, 5xx, timeouts,
connection errors and malformed replies are retried with exponential backoff and jitter. Every reply is checked
(avuie.reasoning.check); a failed check gets a corrective message, up to `max_attempts` replies per sample, then
the template chain marked `fallback`. Finished samples are committed to the SQLite cache at once, so a rerun (or a
killed run resumed) only asks for what is missing.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from avuie.reasoning.cache import ChainCache, cache_key, draft_hash
from avuie.reasoning.check import CheckSettings, check_reply, corrective_message
from avuie.reasoning.engine import Draft, ReasoningResult
from avuie.reasoning.prompts import MediaSettings, build_messages, load_prompt


class EndpointError(RuntimeError):
    """The endpoint refuses every request (bad key, unknown model, wrong URL): stop instead of falling back."""


class TransportError(Exception):
    """One request failed for good (retries exhausted or a non-retryable status); `kind` says how."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass
class OpenAISettings:
    """Everything that shapes the requests, the retries and the checks (see make_openai_engine)."""

    model: str
    base_url: str | None = None
    api_key: str | None = None
    cache_path: str | Path | None = None
    concurrency: int = 8
    refresh: bool = False
    max_attempts: int = 3  # model replies per sample: the first + corrective retries
    max_retries: int = 6  # transport retries per request (429, 5xx, timeout, malformed)
    timeout: float = 120.0
    temperature: float = 0.2
    top_p: float | None = None
    max_tokens: int = 600
    seed: int | None = None
    image_size: int = 224
    max_frames: int = 10
    audio_input: bool = False
    min_chars: int = 40
    max_chars: int = 2000
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    headers: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ValueError with a clear message for impossible settings."""
        if not self.model:
            raise ValueError("--model is required for --reasoning openai")
        for name in ("concurrency", "max_attempts", "image_size", "max_frames", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.timeout <= 0 or self.max_retries < 0 or self.min_chars > self.max_chars:
            raise ValueError("timeout must be > 0, max_retries >= 0 and min_chars <= max_chars")

    def request_settings(self) -> dict[str, Any]:
        """The settings that change a reply (part of the cache key)."""
        keys = ("temperature", "top_p", "max_tokens", "seed", "image_size", "max_frames", "audio_input")
        return {k: getattr(self, k) for k in keys}


def make_openai_engine(
    model: str,
    base_url: str | None = None,
    api_key: str | None = None,
    cache_path: str | Path | None = None,
    **settings: Any,
) -> OpenAIEngine:
    """Build the OpenAI-compatible engine; `settings` are further OpenAISettings fields (concurrency, refresh,
    max_attempts, timeout, audio_input, image_size, ...). Returns the engine; ValueError for unknown settings."""
    known = {f.name for f in fields(OpenAISettings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown reasoning setting(s) {unknown}; known: {sorted(known)}")
    return OpenAIEngine(
        OpenAISettings(model=model, base_url=base_url, api_key=api_key, cache_path=cache_path, **settings)
    )


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds to wait from a Retry-After (seconds or HTTP date) or retry-after-ms header; None if absent."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


class OpenAIEngine:
    """The ReasoningEngine of an OpenAI-compatible endpoint (see the module docstring)."""

    def __init__(self, settings: OpenAISettings) -> None:
        settings.validate()
        self.settings = settings
        self.media = MediaSettings(settings.image_size, settings.max_frames, settings.audio_input)
        self.checks = CheckSettings(settings.min_chars, settings.max_chars)
        self.cache = ChainCache(settings.cache_path) if settings.cache_path else None
        self.counts: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.retry_wait: Counter[str] = Counter()  # seconds slept before retries, by kind
        self.fallbacks: Counter[str] = Counter()
        self.check_failures: Counter[str] = Counter()
        self.prompt_versions: set[str] = set()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._semaphore: asyncio.Semaphore | None = None

    # ---- the loop -------------------------------------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            import openai

            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="avuie-reasoning", daemon=True
            )
            self._thread.start()
            s = self.settings

            async def setup() -> None:
                self._semaphore = asyncio.Semaphore(s.concurrency)
                self._client = openai.AsyncOpenAI(
                    base_url=s.base_url,
                    api_key=s.api_key or "EMPTY",
                    timeout=s.timeout,
                    max_retries=0,
                    default_headers=s.headers or None,
                )

            asyncio.run_coroutine_threadsafe(setup(), self._loop).result()
        return self._loop

    def generate(self, drafts: list[Draft]) -> list[ReasoningResult]:
        """One ReasoningResult per draft, in order; raises EndpointError only when the endpoint refuses all."""
        with self._lock:
            loop = self._ensure_loop()
            return asyncio.run_coroutine_threadsafe(self._generate(drafts), loop).result()

    async def _generate(self, drafts: list[Draft]) -> list[ReasoningResult]:
        tasks = [asyncio.ensure_future(self._one(d)) for d in drafts]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    # ---- one sample -----------------------------------------------------------------------------------------
    async def _one(self, draft: Draft) -> ReasoningResult:
        s = self.settings
        self.counts["samples"] += 1
        try:
            prompt = load_prompt(str(draft.sample["family"]))
        except (KeyError, ValueError) as exc:
            return self._done(self._fallback(draft, "bad_request", 0, {}, str(exc)))
        self.prompt_versions.add(prompt.prompt_version)
        version = f"{prompt.prompt_version}+{prompt.sha}"
        key = cache_key(draft_hash(draft), version, s.model, s.request_settings())
        cached = None if (self.cache is None or s.refresh) else self._from_cache(key, draft)
        if cached is not None:
            self.counts["cache_hits"] += 1
            return self._done(cached)
        try:
            _, messages = build_messages(draft, self.media)
        except Exception as exc:  # a draft we cannot turn into a request, e.g. unreadable media
            return self._done(self._fallback(draft, "bad_request", 0, {}, str(exc), prompt.prompt_version))
        sample_id = str(draft.sample.get("id", ""))
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        reply, result = "", None
        for attempt in range(1, s.max_attempts + 1):
            try:
                reply, used = await self._request(messages, sample_id)
            except TransportError as exc:
                if exc.kind == "connection" and self.counts["replies"] == 0:
                    raise EndpointError(f"cannot reach {s.base_url or 'the OpenAI API'}: {exc}") from exc
                # not cached: the endpoint never judged this sample, a rerun asks again
                failed = self._fallback(
                    draft, f"api_error:{exc.kind}", attempt - 1, usage, "", prompt.prompt_version
                )
                return self._done(failed)
            for k in usage:
                usage[k] += used.get(k, 0)
            result = check_reply(reply, draft.sample, self.checks)
            if result.ok:
                info = self._info("model", prompt.prompt_version, attempt, usage)
                info.update(
                    check_outcome="passed" if attempt == 1 else "passed_after_retry", flagged=result.flagged
                )
                self._put(key, sample_id, reply, info)
                return self._done(ReasoningResult(result.reasoning, info))
            self.check_failures[result.reason or "unknown"] += 1
            messages = [
                *messages,
                {"role": "assistant", "content": reply},
                {"role": "user", "content": corrective_message(result, draft.sample["answer"], self.checks)},
            ]
        assert result is not None
        reason = result.reason or "check_failed"
        fallback = self._fallback(draft, reason, s.max_attempts, usage, result.detail, prompt.prompt_version)
        self._put(key, sample_id, reply, fallback.info)
        return self._done(fallback)

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

    def _from_cache(self, key: str, draft: Draft) -> ReasoningResult | None:
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
        result = check_reply(reply or "", draft.sample, self.checks)
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

    # ---- one request ----------------------------------------------------------------------------------------
    async def _request(self, messages: list[dict[str, Any]], sample_id: str) -> tuple[str, dict[str, int]]:
        """Send one chat request with retries; returns (reply text, usage). Raises TransportError/EndpointError."""
        import openai

        s = self.settings
        extra: dict[str, Any] = {}
        if s.top_p is not None:
            extra["top_p"] = s.top_p
        if s.seed is not None:
            extra["seed"] = s.seed
        assert self._semaphore is not None
        for retry in range(s.max_retries + 1):
            wait: float | None = None
            async with self._semaphore:
                self._in_flight += 1
                self.counts["max_in_flight"] = max(self.counts["max_in_flight"], self._in_flight)
                self.counts["requests"] += 1
                try:
                    response = await self._client.chat.completions.create(
                        model=s.model,
                        messages=messages,
                        temperature=s.temperature,
                        max_tokens=s.max_tokens,
                        extra_headers={"X-Avuie-Sample": sample_id},
                        **extra,
                    )
                    content = response.choices[0].message.content
                    usage = response.usage
                    used = {
                        "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
                        "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
                    }
                    self.counts["prompt_tokens"] += used["prompt_tokens"]
                    self.counts["completion_tokens"] += used["completion_tokens"]
                    self.counts["replies"] += 1
                    return content or "", used
                except openai.RateLimitError as exc:
                    kind, wait = "429", retry_after_seconds(exc.response.headers)
                except openai.APITimeoutError:
                    kind = "timeout"
                except openai.APIConnectionError:
                    kind = "connection"
                except openai.APIStatusError as exc:
                    if exc.status_code in (401, 403, 404):
                        raise EndpointError(
                            f"{s.base_url or 'the OpenAI API'} answered {exc.status_code} for model {s.model!r}: "
                            f"{exc.message} (check --base-url, --model and OPENAI_API_KEY)"
                        ) from exc
                    if exc.status_code < 500 and exc.status_code not in (408, 409):
                        raise TransportError(f"http_{exc.status_code}", exc.message) from exc
                    kind = "5xx" if exc.status_code >= 500 else f"http_{exc.status_code}"
                except (ValueError, TypeError, AttributeError, IndexError, openai.APIResponseValidationError):
                    kind = "malformed"
                finally:
                    self._in_flight -= 1
            self.retries[kind] += 1
            if retry == s.max_retries:
                raise TransportError(kind, f"gave up after {retry + 1} tries")
            if wait is None:
                step = min(s.backoff_max, s.backoff_base * 2**retry)
                wait = step / 2 + random.uniform(0, step / 2)
            wait = min(wait, s.retry_after_max)
            self.retry_wait[kind] += wait
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

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
            "requests": c["requests"],
            "replies": c["replies"],
            "max_in_flight": c["max_in_flight"],
            "retries": dict(self.retries),
            "retry_wait_s": {k: round(v, 3) for k, v in self.retry_wait.items()},
            "tokens": {"prompt": c["prompt_tokens"], "completion": c["completion_tokens"]},
            "chains": {k: c[f"chains_{k}"] for k in ("model", "fallback")},
            "flagged": c["flagged"],
            "fallbacks": dict(self.fallbacks),
            "check_failures": dict(self.check_failures),
            "settings": {k: v for k, v in asdict(self.settings).items() if k not in ("api_key", "headers")},
        }

    def progress_text(self) -> str:
        """A one-line summary for a progress bar: requests, tokens, fallbacks by reason."""
        c = self.counts
        falls = ", ".join(f"{k} {v}" for k, v in self.fallbacks.most_common(3))
        tokens = c["prompt_tokens"] + c["completion_tokens"]
        return (
            f"req {c['requests']} · tok {tokens} · cached {c['cache_hits']} · fallback {sum(self.fallbacks.values())}"
            + (f" ({falls})" if falls else "")
        )

    def close(self) -> None:
        """Close the HTTP client, stop the loop thread and close the cache."""
        with self._lock:
            if self._loop is not None:
                if self._client is not None:
                    asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(30)
                self._loop.call_soon_threadsafe(self._loop.stop)
                if self._thread is not None:
                    self._thread.join(30)
                self._loop.close()
                self._loop = None
            if self.cache is not None:
                self.cache.close()
                self.cache = None
