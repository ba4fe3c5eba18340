"""Score any served model: predictions from an OpenAI-compatible endpoint (vLLM serving Qwen2.5-Omni, a hosted
API), written as the predictions JSONL that `avuie eval` scores.

    avuie predict --base-url http://localhost:8000/v1 --model Qwen/Qwen2.5-Omni-7B --data out --to preds.jsonl

Each sample of the chosen splits (every test split by default) is read from the shards (a build folder, a root
of builds, a tar list or a shard server URL; no torch) and sent as one chat request (avuie.eval.served_request:
frames as image_url parts, audio as input_audio, the instruction's text between them; never the answer).
Requests go through the reasoning engine's request layer (avuie.reasoning.chat): at most `concurrency` in
flight, a total deadline per request, a reply size cap, retries honouring Retry-After. Replies are cached in a
SQLite file (default: beside the output), so a rerun, or a run resumed after Ctrl-C, asks only for what is
missing. The output is written whole or not at all: one {"id", "response"} line per answered sample, in the
data's order; a sample whose requests failed for good is left out and counted with its reason.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from avuie.eval.served_request import OMNI_SYSTEM, RequestShape, request_messages
from avuie.reasoning.cache import ChainCache, cache_key, draft_hash
from avuie.reasoning.chat import ChatClient, EndpointSettings, TransportError, gather_all, short
from avuie.reasoning.engine import Draft

FAILED_SHOWN = 20  # ids of failed samples kept in the summary


@dataclass
class ServedSettings(EndpointSettings):
    """The endpoint (see EndpointSettings), the sampling fields, how samples become requests, and the cache."""

    cache_path: str | Path | None = None
    refresh: bool = False
    temperature: float = 0.0
    top_p: float | None = None
    max_tokens: int = 512
    seed: int | None = None
    system_prompt: str = OMNI_SYSTEM
    max_frames: int = 0  # frames per video sent (0: all the shard holds)
    audio: bool = True  # send audio as input_audio (False for endpoints without audio input)

    def validate(self) -> None:
        """Raise ValueError with a clear message for impossible settings."""
        super().validate()
        if self.max_tokens < 1 or self.max_frames < 0:
            raise ValueError("max_tokens must be at least 1 and max_frames at least 0")

    def shape(self) -> RequestShape:
        """How a sample becomes a request."""
        return RequestShape(self.system_prompt, self.max_frames, self.audio)

    def request_params(self) -> dict[str, Any]:
        """The sampling fields of each chat request."""
        params: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        params.update({k: getattr(self, k) for k in ("top_p", "seed") if getattr(self, k) is not None})
        return params


def make_served_settings(model: str, base_url: str | None, **settings: Any) -> ServedSettings:
    """ServedSettings from keyword settings; ValueError naming unknown or impossible ones."""
    known = {f.name for f in fields(ServedSettings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(known - {'model', 'base_url'})}")
    result = ServedSettings(model=model, base_url=base_url, **settings)
    result.validate()
    return result


@dataclass
class PredictSummary:
    """What a run did: lines written, samples left out by reason (and the first ids), endpoint totals."""

    written: int
    total: int
    failed: dict[str, int] = field(default_factory=dict)
    failed_ids: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def select_samples(
    data: str, splits: list[str], token: str | None = None
) -> tuple[list[tuple[Any, Any]], Any]:
    """(shard, table entry) of every sample of `splits` under `data`, in the data's order, and the reader.
    ValueError when there is none (naming the splits the data has)."""
    from avuie.shards.remote import ShardReader, resolve_shards

    reader = ShardReader(token=token)
    shards = resolve_shards(data, reader)
    chosen = [(shard, entry) for shard in shards for entry in shard.scan.samples if entry.split in splits]
    if not chosen:
        have = sorted({entry.split for shard in shards for entry in shard.scan.samples})
        raise ValueError(f"no samples of split(s) {', '.join(splits)} in {data} (it holds {', '.join(have)})")
    return chosen, reader


def read_sample(reader: Any, shard: Any, entry: Any) -> tuple[dict[str, Any], dict[str, bytes]] | None:
    """(sample JSON, media files) of one table entry; None when its bytes are not a readable sample."""
    from avuie.shards.index import split_members

    try:
        members = split_members(reader.read(shard, entry.start, entry.end))
        sample = json.loads(members.pop("json"))
    except (KeyError, ValueError, OSError):
        return None
    return (sample, members) if isinstance(sample, dict) and isinstance(sample.get("id"), str) else None


class ServedPredictor:
    """Asks the endpoint for one response per sample, through the cache (see the module docstring)."""

    def __init__(self, settings: ServedSettings) -> None:
        settings.validate()
        self.settings = settings
        self.shape = settings.shape()
        self.chat = ChatClient(settings)
        self.cache = ChainCache(settings.cache_path) if settings.cache_path else None
        self.cache_hits = 0

    def predict(self, items: list[tuple[dict, dict[str, bytes]]]) -> list[tuple[str | None, str]]:
        """(response, "") or (None, why) per (sample, files), in order; EndpointError when the endpoint
        refuses everything."""
        return self.chat.run(lambda: gather_all([self._one(sample, files) for sample, files in items]))

    async def _one(self, sample: dict, files: dict[str, bytes]) -> tuple[str | None, str]:
        s, sample_id = self.settings, str(sample["id"])
        key = cache_key(draft_hash(Draft(sample, files)), self.shape.version(), s.model, s.request_params())
        hit = None if self.cache is None or s.refresh else self.cache.get(key)
        if hit is not None and hit[0] is not None:
            self.cache_hits += 1
            return hit[0], ""
        try:
            messages = request_messages(sample, files, self.shape)
        except ValueError as exc:
            return None, f"bad_sample: {short(exc)}"
        try:
            reply = await self.chat.complete(messages, sample_id, **s.request_params())
        except TransportError as exc:  # not cached: a rerun asks again
            return None, f"api_error:{exc.kind}: {exc.detail}"
        if self.cache is not None:
            info = {"kind": "prediction", "model": s.model, "prompt_version": self.shape.version()}
            self.cache.put(key, sample_id, reply.text, {**info, "usage": reply.usage})
        return reply.text, ""

    def stats(self) -> dict[str, Any]:
        """The request layer's totals and the cache hits."""
        return {"model": self.settings.model, "cache_hits": self.cache_hits, **self.chat.stats()}

    def close(self) -> None:
        """Stop the client and close the cache."""
        self.chat.close()
        if self.cache is not None:
            self.cache.close()
            self.cache = None


def predict_served(
    data: str,
    splits: list[str],
    to: str | Path,
    settings: ServedSettings,
    token: str | None = None,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PredictSummary:
    """Write the predictions of the served model for every sample of `splits` in `data` to `to` (JSONL, whole
    or not at all); `token` is the shard server's, `limit` caps the samples, `progress(done, total)` reports.
    Returns the PredictSummary; raises ValueError for missing data and EndpointError for a refusing endpoint."""
    chosen, reader = select_samples(data, splits, token)
    chosen = chosen[:limit] if limit else chosen
    to = Path(to)
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.parent / f".{to.name}.avuie-tmp"
    summary = PredictSummary(0, len(chosen))
    failed: Counter[str] = Counter()
    predictor = ServedPredictor(settings)
    step = 4 * settings.concurrency
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for start in range(0, len(chosen), step):
                read = [
                    (entry.key, read_sample(reader, shard, entry))
                    for shard, entry in chosen[start : start + step]
                ]
                items = [item for _, item in read if item is not None]
                for key, item in read:
                    if item is None:
                        failed["unreadable_sample"] += 1
                        summary.failed_ids.append(key)
                for (sample, _), (text, why) in zip(items, predictor.predict(items), strict=True):
                    if text is None:
                        failed[why.split(": ")[0]] += 1
                        summary.failed_ids.append(sample["id"])
                        continue
                    fh.write(json.dumps({"id": sample["id"], "response": text}, ensure_ascii=False) + "\n")
                    summary.written += 1
                if progress:
                    progress(min(start + step, len(chosen)), len(chosen))
        os.replace(tmp, to)
    finally:
        tmp.unlink(missing_ok=True)
        summary.stats = predictor.stats()
        predictor.close()
    summary.failed, summary.failed_ids = dict(failed), summary.failed_ids[:FAILED_SHOWN]
    return summary
