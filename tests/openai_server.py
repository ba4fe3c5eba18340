"""A small OpenAI-compatible chat-completions server for tests and benchmarks (real HTTP on 127.0.0.1).

It answers deterministically from the request: it finds the last "Ground-truth answer: ..." line that the
label-conditioned prompt (or a corrective message) contains and writes a short chain that ends in it. It counts
requests and the maximum number in flight, and on command injects faults:

    server = FakeOpenAIServer(latency=0.0).start()
    server.inject("429", retry_after=0.2)            # next request gets 429 with Retry-After
    server.inject("wrong_tag", match="ave/test/3")   # next request for that sample gets a wrong answer tag
    client = openai.OpenAI(base_url=server.base_url, api_key="x")

Fault kinds: "429" (Retry-After is `retry_after`: seconds, or any text such as "soon" or an HTTP-date), "500",
"timeout" (sleeps `delay` seconds before answering), "malformed" (HTTP 200 with broken JSON), "wrong_tag" (a reply
whose tag holds `text`, default "<answer>wrong</answer>"), "no_tag" (a reply without a tagged answer), "reply"
(the reply is `text`, verbatim), "content" (the message content is `value`, any JSON: a list of parts, a dict,
null, a number), "usage" (a good reply whose `usage` is `value`), "drip" (a good reply, with content `value` when
given, sent `chunk` bytes every `delay` seconds, each read well inside any per-read timeout; with Content-Length,
or chunked when `length` is False), "raw" (HTTP `status` with the body `text`
verbatim). `match` restricts a fault to requests whose X-Avuie-Sample header or text contains it.

As a served model (for `avuie predict --base-url`): `server.answers[sample_id] = text` makes every request whose
X-Avuie-Sample is that id answered with `text`, verbatim.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web

GROUND_TRUTH = re.compile(r"^Ground-truth answer[^:\n]*:[ \t]*(.+)$", re.MULTILINE)
FAULT_KINDS = (
    "429",
    "500",
    "timeout",
    "malformed",
    "wrong_tag",
    "no_tag",
    "reply",
    "content",
    "usage",
    "drip",
    "raw",
)


@dataclass
class Fault:
    """One injected fault: applied to the next `times` matching requests."""

    kind: str
    times: int = 1
    match: str | None = None
    retry_after: float | str = 0.1
    delay: float = 5.0
    text: str = "<answer>wrong</answer>"
    value: Any = None
    chunk: int = 1
    status: int = 200
    length: bool = True


def _user_text(body: dict[str, Any]) -> str:
    """All text of the user messages of a chat request, in order."""
    parts: list[str] = []
    for message in body.get("messages", []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if p.get("type") == "text")
    return "\n".join(parts)


def chain_for(answer: str) -> str:
    """The deterministic reply the server writes for a ground-truth answer."""
    return (
        "The frames show the scene while the audio carries the matching sound; the two agree in time. "
        f"So the answer is {answer}"
    )


class FakeOpenAIServer:
    """An aiohttp chat-completions server in a background thread; `start()` binds port 0 on 127.0.0.1."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.received: Counter[str] = Counter()  # sample -> requests received
        self.answered: Counter[str] = Counter()  # sample -> good replies sent (HTTP 200, valid JSON)
        self.faults_sent: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.body_samples: list[str] = []  # the X-Avuie-Sample of each recorded body
        self.answers: dict[str, str] = {}  # sample id -> the reply of the served model
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The base URL to give the openai client (ends in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def inject(self, kind: str, times: int = 1, match: str | None = None, **options: Any) -> None:
        """Queue a fault for the next `times` requests (that contain `match`, when given)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        with self.lock:
            self.faults.append(Fault(kind, times, match, **options))

    def reset_counts(self) -> None:
        """Zero the counters and forget recorded bodies (faults stay queued)."""
        with self.lock:
            self.requests = self.max_in_flight = 0
            self.received.clear()
            self.answered.clear()
            self.faults_sent.clear()
            self.bodies.clear()
            self.body_samples.clear()

    def _take_fault(self, sample: str, text: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.match is None or fault.match in sample or fault.match in text:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    self.faults_sent[fault.kind] += 1
                    return fault
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        sample = unquote(request.headers.get("X-Avuie-Sample", ""))
        text = _user_text(body)
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.received[sample] += 1
            self.bodies.append(body)
            self.body_samples.append(sample)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            return await self._reply(request, body, sample, text, self._take_fault(sample, text))
        finally:
            with self.lock:
                self.in_flight -= 1

    async def _reply(
        self, request: web.Request, body: dict, sample: str, text: str, fault: Fault | None
    ) -> web.StreamResponse:
        kind = fault.kind if fault else None
        if kind == "429":
            after = fault.retry_after
            headers = {"Retry-After": after if isinstance(after, str) else f"{after:g}"}
            return web.json_response({"error": {"message": "rate limited"}}, status=429, headers=headers)
        if kind == "500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if kind == "timeout":
            await asyncio.sleep(fault.delay)
        if kind == "malformed":
            return web.Response(text='{"id": "chatcmpl-x", "choices": [', content_type="application/json")
        if kind == "raw":
            return web.Response(text=fault.text, status=fault.status, content_type="application/json")
        content: Any = self._content(sample, text, fault)
        with self.lock:
            self.answered[sample] += 1
        prompt_tokens = max(1, len(text) // 4)
        completion_tokens = max(1, len(str(content)) // 4)
        usage: Any = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if kind == "usage":
            usage = fault.value
        payload = {
            "id": f"chatcmpl-{self.requests}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "fake"),
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
            ],
            "usage": usage,
        }
        if kind == "drip":
            return await self._drip(request, json.dumps(payload).encode(), fault)
        return web.json_response(payload)

    def _content(self, sample: str, text: str, fault: Fault | None) -> Any:
        """The message content: the served model's answer, a fault's, or a chain ending in the ground truth."""
        kind = fault.kind if fault else None
        if kind == "content" or (kind == "drip" and fault.value is not None):
            return fault.value
        if kind == "reply":
            return fault.text
        if kind == "wrong_tag":
            return chain_for(fault.text)
        if kind == "no_tag":
            return "The frames and the audio agree, but I will not say what the answer is."
        if sample in self.answers:
            return self.answers[sample]
        found = GROUND_TRUTH.findall(text)
        return chain_for(found[-1].strip() if found else "<answer>unknown</answer>")

    @staticmethod
    async def _drip(request: web.Request, data: bytes, fault: Fault) -> web.StreamResponse:
        """Send `data` (Content-Length set) `fault.chunk` bytes at a time, `fault.delay` seconds apart."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if fault.length:
            response.content_length = len(data)
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for i in range(0, len(data), fault.chunk):
                await response.write(data[i : i + fault.chunk])
                await asyncio.sleep(fault.delay)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client gave up: that is the point
        return response

    def start(self) -> FakeOpenAIServer:
        """Start serving in a daemon thread; returns self once the port is bound."""
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application(client_max_size=256 * 1024**2)
            app.router.add_post("/v1/chat/completions", self._chat)
            self._runner = web.AppRunner(
                app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True
            )
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.port = self._runner.addresses[0][1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-openai", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start")
        return self

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:  # pragma: no cover - manual use: python tests/openai_server.py [latency]
    """Serve until interrupted, printing the base URL."""
    import sys
    import time

    server = FakeOpenAIServer(latency=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0).start()
    print(json.dumps({"base_url": server.base_url}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
