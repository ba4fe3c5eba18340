"""Reading what an OpenAI-compatible endpoint sends back, whatever it sends: the pieces of the request layer
(avuie.reasoning.chat) that never trust the server.

- `retry_after_seconds`: Retry-After as delta-seconds or an HTTP-date (and retry-after-ms); garbage, infinities
  and NaN are None, so the caller falls back to its own backoff.
- `parse_completion`: a chat-completion body read leniently: the message content may be a string, a list of
  content parts, a dict with a `text`, or null; `usage` fields that are not plain counts are read as 0 and
  reported, never a reason to discard a valid reply. Anything else raises ValueError (a malformed reply).
- `cap_reply_bytes`: an httpx/httpx2 response hook that stops reading a reply past a byte limit.
"""

from __future__ import annotations

import email.utils
import importlib
import json
import math
import time
from datetime import timezone
from functools import cache
from typing import Any

# Sane bounds for a token count: anything else in `usage` is unreadable (0), never an exception.
MAX_COUNT = 10**15


class ReplyTooLarge(Exception):
    """The endpoint sent more bytes than the reply size cap allows (the rest is never read)."""


def _seconds(value: str) -> float | None:
    """Delta-seconds or an HTTP-date (relative to now); None for anything else."""
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # "-0000": RFC 5322 says UTC, Python returns a naive datetime
            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds to wait from a retry-after-ms or Retry-After header (delta-seconds or HTTP-date), or None when
    absent or unreadable (the caller then uses its own backoff)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            seconds = float(str(ms).strip()) / 1000
        except ValueError:
            seconds = math.nan
        if math.isfinite(seconds):
            return max(0.0, seconds)
    value = headers.get("retry-after")
    return _seconds(str(value)) if value else None


def _clean(text: str) -> str:
    """The text with lone surrogates replaced (they cannot be stored as UTF-8)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def reply_text(content: Any) -> str | None:
    """The text of a message `content`: a string, a list of parts (strings or {"text": ...} dicts, joined), a
    dict with a "text", or null (""). None when it is none of these (a number, a boolean)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return _clean(content)
    if isinstance(content, dict):
        content = [content]
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return _clean("".join(texts))
    return None


def _count(value: Any) -> int | None:
    """A token count from an int, a whole float or a digit string in [0, MAX_COUNT); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 16:
        value = int(value.strip())
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        value = int(value)
    if isinstance(value, int) and 0 <= value < MAX_COUNT:
        return value
    return None


def read_usage(raw: Any) -> tuple[dict[str, int], bool]:
    """The prompt and completion token counts of a `usage` object and whether it read cleanly (an absent
    usage is clean; a count that is not a count is 0 and makes it unclean)."""
    usage = {"prompt_tokens": 0, "completion_tokens": 0}
    if raw is None:
        return usage, True
    if not isinstance(raw, dict):
        return usage, False
    clean = True
    for key in usage:
        if raw.get(key) is None:
            continue
        count = _count(raw[key])
        if count is None:
            clean = False
        else:
            usage[key] = count
    return usage, clean


def _int(digits: str) -> int | float:
    """A JSON integer; infinity past 1000 digits (Python refuses to read very long ones; none is a count)."""
    return int(digits) if len(digits) <= 1000 else math.inf


def parse_completion(body: bytes) -> tuple[str, dict[str, int], bool]:
    """(reply text, usage, usage read cleanly) of a chat-completion body; ValueError when it is malformed
    (not JSON, no choices, no message, content of an unreadable type)."""
    try:
        data = json.loads(body, parse_int=_int)
    except RecursionError as exc:
        raise ValueError("the reply nests too deeply") from exc
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("the reply has no choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise ValueError("the reply's first choice has no message")
    text = reply_text(message.get("content"))
    if text is None:
        raise ValueError(f"the message content is a {type(message.get('content')).__name__}")
    usage, clean = read_usage(data.get("usage"))
    return text, usage, clean


@cache
def _capped_stream_class(module_name: str) -> type:
    """A byte stream of the HTTP library `module_name` (httpx, or httpx2 for newer openai releases) that raises
    ReplyTooLarge once more than `limit` bytes came in."""
    base = importlib.import_module(module_name).AsyncByteStream

    class CappedStream(base):  # type: ignore[misc, valid-type]
        def __init__(self, inner: Any, limit: int) -> None:
            self._inner, self._limit = inner, limit

        async def __aiter__(self) -> Any:
            seen = 0
            async for chunk in self._inner:
                seen += len(chunk)
                if seen > self._limit:
                    raise ReplyTooLarge(f"the reply is larger than {self._limit} bytes")
                yield chunk

        async def aclose(self) -> None:
            await self._inner.aclose()

    return CappedStream


def cap_reply_bytes(limit: int) -> Any:
    """A response event hook (for the openai client's httpx/httpx2 client) that refuses a reply whose
    Content-Length is over `limit` and stops reading any body past `limit` bytes on the wire."""

    async def hook(response: Any) -> None:
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await response.aclose()
            raise ReplyTooLarge(f"the reply announces {length} bytes, more than {limit}")
        stream_class = _capped_stream_class(type(response).__module__.split(".")[0])
        response.stream = stream_class(response.stream, limit)

    return hook
