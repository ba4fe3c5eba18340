"""Build one shard: prepare its records on a worker pool, ask the reasoning engine for their chains, write the
samples into the shard's tar part(s) and, last, its completion marker (which makes the shard count as done)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from avuie.build.assemble import (
    Prepared,
    finish_sample,
    manifest_row,
    prepare,
    record_reject,
    reject_row,
    sample_members,
)
from avuie.build.config import BuildConfig, Tick
from avuie.build.plan import ShardJob, chunk_digest
from avuie.builders import Builder
from avuie.builders.base import error_text
from avuie.reasoning.engine import ReasoningEngine
from avuie.shards.index import scan_stream
from avuie.shards.layout import part_name, shard_rel
from avuie.shards.writer import TarShardWriter, write_json_atomic


def tar_info(path: Path) -> dict[str, Any]:
    """What readers need about a finished tar without reading it: size, sha256 and each sample's byte range."""
    with open(path, "rb") as fh:  # one pass gives the table, the size and the hash
        scan = scan_stream(fh, with_sha256=True)
    return {"bytes": scan.num_bytes, "sha256": scan.sha256, "table": scan.to_table()}


class _PartWriter:
    """Writes a shard's samples into `<shard>.tar`, rolling over to `<shard>-1.tar`, ... past `max_bytes`."""

    def __init__(self, job: ShardJob, max_bytes: int) -> None:
        self.job, self.max_bytes = job, max_bytes
        self.tars: list[str] = []
        self.writer: TarShardWriter | None = None

    def write(self, key: str, members: dict[str, bytes]) -> tuple[str, int]:
        """Add one sample; return (its tar's path relative to the build, bytes added)."""
        if self.writer is None or self.writer.size > self.max_bytes:
            if self.writer is not None:
                self.writer.close()
            self.tars.append(part_name(self.job.name, len(self.tars)))
            self.writer = TarShardWriter(self.job.folder / self.tars[-1])
        nbytes = self.writer.write(key, members)
        return shard_rel(self.job.split, self.tars[-1]), nbytes

    def close(self) -> None:
        """Finish the open part."""
        if self.writer is not None:
            self.writer.close()

    def abort(self) -> None:
        """Drop the open part's temporary file."""
        if self.writer is not None:
            self.writer.abort()


def _write_samples(
    builder: Builder, prepared: list[Prepared], results: dict[int, Any], parts: _PartWriter
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Finish and write every prepared record in order; return (manifest rows, reject rows)."""
    manifest: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    for p in prepared:
        if p.reject is not None:
            rejects.append(reject_row(builder.name, p.reject))
            continue
        res = results[id(p)]
        try:
            sample = finish_sample(p.draft, res.reasoning, res.info, p.masks)
        except ValidationError as exc:
            rejects.append(
                reject_row(builder.name, record_reject(p.record, "invalid_sample", error_text(exc)))
            )
            continue
        shard, nbytes = parts.write(sample.key, sample_members(sample, p.files))
        manifest.append(manifest_row(sample, shard, nbytes))
    return manifest, rejects


def build_shard(
    builder: Builder,
    job: ShardJob,
    config: BuildConfig,
    engine: ReasoningEngine,
    pool: ThreadPoolExecutor,
    tick: Tick | None = None,
) -> dict[str, Any]:
    """Build one shard from its records; write its tar(s) and completion marker; return the marker."""
    records = job.records
    prepared = list(pool.map(lambda r: prepare(builder, r, config), records))
    ready = [p for p in prepared if p.draft is not None]
    results = engine.generate([p.draft for p in ready]) if ready else []
    by_id = {id(p): res for p, res in zip(ready, results, strict=False)}
    parts = _PartWriter(job, config.shard_bytes)
    try:
        manifest, rejects = _write_samples(builder, prepared, by_id, parts)
        parts.close()
    except BaseException:
        parts.abort()
        raise
    finally:
        if tick:
            tick(len(records))
    marker = {
        "records_digest": chunk_digest(records),
        "tars_info": {t: tar_info(job.folder / t) for t in parts.tars},
        "shard": job.name,
        "split": records[0].split if records else "",
        "fingerprint": config.fingerprint(),
        "tars": parts.tars,
        "in": len(records),
        "manifest": manifest,
        "rejects": rejects,
    }
    write_json_atomic(job.marker, marker)
    return marker
