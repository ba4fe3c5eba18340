"""The request layer: one OpenAI-compatible chat endpoint, shared by the reasoning engine and by served-model
predictions (avuie.eval.served).

`ChatClient` runs an `openai.AsyncOpenAI` client on its own event loop (a daemon thread) and guarantees, for every
request sent with `complete`:

- a total deadline of `timeout` seconds (connect + headers + the whole body): a server that drips bytes is cut off,
  however short each read;
- a reply size cap of `max_reply_bytes` on the wire (a larger Content-Length is refused before the body is read);
- at most `concurrency` requests in flight;
- retries with exponential backoff and jitter for 429 (Retry-After as delta-seconds or HTTP-date, capped at
  `retry_after_max`; a garbage value means the backoff), 5xx, 408/409, timeouts, dropped connections, replies over
  the cap and malformed replies (not JSON, no choices, unreadable content);
- lenient reading of a good reply (see avuie.reasoning.replies): content as text, parts, dict or null; optional
  fields such as `usage` never make a valid reply malformed;
- when a request fails for good: TransportError(kind); EndpointError only when the endpoint refuses (401/403/404)
  or cannot be reached before it has answered anything (a wrong URL, key or model stops the run at once).
Nothing else escapes: a failure is a retry or a TransportError the caller turns into a fallback.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

from avuie.reasoning.replies import ReplyTooLarge, cap_reply_bytes, parse_completion, retry_after_seconds

T = TypeVar("T")
__all__ = [
    "ChatClient",
    "EndpointError",
    "EndpointSettings",
    "Reply",
    "TransportError",
    "retry_after_seconds",
]


class EndpointError(RuntimeError):
    """The endpoint refuses every request (bad key, unknown model, wrong URL): stop instead of falling back."""


class TransportError(Exception):
    """One request failed for good (retries exhausted or a non-retryable status); `kind` says how."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind, self.detail = kind, detail


async def gather_all(coroutines: list[Awaitable[T]]) -> list[T]:
    """Run the coroutines concurrently and return their results in order; when one raises (or the caller is
    cancelled), the others are cancelled and awaited before the exception goes on."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def short(text: object, limit: int = 200) -> str:
    """`text` as a string of at most `limit` characters (server-chosen text never floods a report)."""
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass
class EndpointSettings:
    """Where requests go and how they are bounded and retried (see the module docstring)."""

    model: str
    base_url: str | None = None
    api_key: str | None = None
    concurrency: int = 8
    max_retries: int = 6  # transport retries per request (429, 5xx, timeout, too large, malformed)
    timeout: float = 120.0  # total seconds per request: connect + the whole reply
    max_reply_bytes: int = 4 * 1024 * 1024
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 120.0
    headers: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ValueError with a clear message for impossible settings."""
        if not self.model:
            raise ValueError("a model name (--model) is required")
        if self.concurrency < 1 or self.max_reply_bytes < 1024:
            raise ValueError("concurrency must be at least 1 and max_reply_bytes at least 1024")
        if not self.timeout > 0 or self.max_retries < 0 or self.backoff_base < 0 or self.retry_after_max < 0:
            raise ValueError("timeout must be > 0; max_retries, backoff_base and retry_after_max >= 0")


@dataclass
class Reply:
    """A good reply: its text and its token usage."""

    text: str
    usage: dict[str, int]


class ChatClient:
    """One endpoint's client, loop and counters (see the module docstring)."""

    def __init__(self, settings: EndpointSettings) -> None:
        settings.validate()
        self.settings = settings
        self.counts: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self.retry_wait: Counter[str] = Counter()  # seconds slept before retries, by kind
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
            self._thread = threading.Thread(target=self._loop.run_forever, name="avuie-chat", daemon=True)
            self._thread.start()
            s = self.settings

            async def setup() -> None:
                self._semaphore = asyncio.Semaphore(s.concurrency)
                http = openai.DefaultAsyncHttpxClient(
                    timeout=s.timeout, event_hooks={"response": [cap_reply_bytes(s.max_reply_bytes)]}
                )
                self._client = openai.AsyncOpenAI(
                    base_url=s.base_url,
                    api_key=s.api_key or "EMPTY",
                    timeout=s.timeout,
                    max_retries=0,
                    default_headers={"Accept-Encoding": "identity", **(s.headers or {})},
                    http_client=http,
                )

            asyncio.run_coroutine_threadsafe(setup(), self._loop).result()
        return self._loop

    def run(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run the coroutine `make()` on the client's loop and return its result. An interrupt of the waiting
        thread (Ctrl-C, or SIGTERM turned into one) cancels the coroutine and is raised again."""
        with self._lock:
            loop = self._ensure_loop()
            future = asyncio.run_coroutine_threadsafe(make(), loop)  # type: ignore[arg-type]
            try:
                return future.result()
            except BaseException:
                future.cancel()
                raise

    def close(self) -> None:
        """Cancel what is still running, close the HTTP client and stop the loop thread."""
        with self._lock:
            if self._loop is None:
                return
            loop, self._loop = self._loop, None

            async def shutdown() -> None:
                current = asyncio.current_task()
                tasks = [t for t in asyncio.all_tasks() if t is not current]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                if self._client is not None:
                    await self._client.close()

            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(30)
            loop.close()

    # ---- one request ----------------------------------------------------------------------------------------
    async def complete(self, messages: list[dict[str, Any]], sample_id: str = "", **params: Any) -> Reply:
        """Send one chat request (on the client's loop) with retries; `params` are further request fields
        (temperature, max_tokens, ...). Returns the Reply; raises TransportError or EndpointError."""
        s = self.settings
        assert self._semaphore is not None, "complete() runs on the client's loop (see run)"
        for retry in range(s.max_retries + 1):
            async with self._semaphore:
                outcome = await self._attempt(messages, sample_id, params)
            if isinstance(outcome, Reply):
                return outcome
            kind, wait, detail = outcome
            self.retries[kind] += 1
            if retry == s.max_retries:
                if kind == "connection" and self.counts["replies"] == 0:
                    raise EndpointError(f"cannot reach {s.base_url or 'the OpenAI API'}: {detail or kind}")
                raise TransportError(
                    kind, f"gave up after {retry + 1} tries" + (f" ({detail})" if detail else "")
                )
            if wait is None:
                step = min(s.backoff_max, s.backoff_base * 2 ** min(retry, 30))
                wait = step / 2 + random.uniform(0, step / 2)
            wait = min(wait, s.retry_after_max)
            self.retry_wait[kind] += wait
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def _attempt(
        self, messages: list[dict[str, Any]], sample_id: str, params: dict[str, Any]
    ) -> Reply | tuple[str, float | None, str]:
        """One try: the Reply, or (retry kind, seconds the server asked to wait or None, detail)."""
        import openai

        s = self.settings
        self._in_flight += 1
        self.counts["max_in_flight"] = max(self.counts["max_in_flight"], self._in_flight)
        self.counts["requests"] += 1
        try:
            call = self._client.chat.completions.with_raw_response.create(
                model=s.model,
                messages=messages,
                extra_headers={"X-Avuie-Sample": quote(sample_id[:200], safe="/:@._-~+=")},
                **params,
            )
            raw = await asyncio.wait_for(call, s.timeout)
            body = raw.http_response.content
        except asyncio.TimeoutError:
            return "timeout", None, f"no whole reply within {s.timeout:g} s"
        except ReplyTooLarge as exc:
            return "too_large", None, str(exc)
        except openai.RateLimitError as exc:
            return "429", retry_after_seconds(exc.response.headers), ""
        except openai.APITimeoutError:
            return "timeout", None, ""
        except openai.APIConnectionError as exc:
            if isinstance(exc.__cause__, ReplyTooLarge):
                return "too_large", None, str(exc.__cause__)
            return "connection", None, short(exc.__cause__ or exc)
        except openai.APIStatusError as exc:
            return self._status(exc)
        except Exception as exc:  # noqa: BLE001 - whatever the client chokes on is a malformed reply
            return "malformed", None, short(f"{type(exc).__name__}: {exc}")
        finally:
            self._in_flight -= 1
        return self._read(body)

    def _status(self, exc: Any) -> tuple[str, float | None, str]:
        """Retry kind of an HTTP error status; raises EndpointError or TransportError when not retryable."""
        s, code = self.settings, exc.status_code
        if code in (401, 403, 404) and self.counts["replies"] == 0:
            raise EndpointError(
                f"{s.base_url or 'the OpenAI API'} answered {code} for model {s.model!r}: "
                f"{short(exc.message)} (check --base-url, --model and OPENAI_API_KEY)"
            ) from exc
        if code >= 500:
            return "5xx", None, short(exc.message)
        if code in (408, 409):
            return f"http_{code}", None, short(exc.message)
        raise TransportError(f"http_{code}", short(exc.message)) from exc

    def _read(self, body: bytes) -> Reply | tuple[str, float | None, str]:
        """The Reply of a 2xx body, or ("malformed", None, why)."""
        try:
            text, usage, clean = parse_completion(body)
        except ValueError as exc:
            return "malformed", None, short(exc)
        if not clean:
            self.counts["usage_unreadable"] += 1
        self.counts["replies"] += 1
        self.counts["prompt_tokens"] += usage["prompt_tokens"]
        self.counts["completion_tokens"] += usage["completion_tokens"]
        return Reply(text, usage)

    # ---- totals ---------------------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Totals so far: requests, replies, max in flight, retries and seconds waited by kind, tokens."""
        c = self.counts
        return {
            "requests": c["requests"],
            "replies": c["replies"],
            "max_in_flight": c["max_in_flight"],
            "retries": dict(self.retries),
            "retry_wait_s": {k: round(v, 3) for k, v in self.retry_wait.items()},
            "tokens": {"prompt": c["prompt_tokens"], "completion": c["completion_tokens"]},
            "usage_unreadable": c["usage_unreadable"],
        }
