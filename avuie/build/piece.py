"""Build one work unit into a staged piece: prepare its records on a worker pool, ask the reasoning engine for
their chains, write the samples into one tar and, last, the piece's marker (which makes the piece count as done).

A piece lives in the source's stage folder (`OUT/.avuie-tmp/stage-<source>/pieces/`), never among the shards:
`build/pack.py` turns pieces into full shards at commit time. The piece's name is a digest of its records, so a
rerun recognises the pieces of a killed run and skips their records.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from avuie.build import counters
from avuie.build.assemble import (
    Prepared,
    finish_sample,
    manifest_row,
    record_reject,
    reject_row,
    sample_members,
)
from avuie.build.config import BuildConfig, Tick
from avuie.build.fetch import cut_records
from avuie.build.plan import WorkUnit
from avuie.builders import Builder
from avuie.builders.base import error_text
from avuie.reasoning.engine import ReasoningEngine
from avuie.shards.index import scan_stream
from avuie.shards.layout import done_name, part_name, staged
from avuie.shards.txn import json_bytes, write_synced
from avuie.shards.writer import TarShardWriter


def tar_info(path: Path) -> dict[str, Any]:
    """What readers need about a finished tar without reading it: size, sha256 and each sample's byte range."""
    with open(path, "rb") as fh:  # one pass gives the table, the size and the hash
        scan = scan_stream(fh, with_sha256=True)
    return {"bytes": scan.num_bytes, "sha256": scan.sha256, "table": scan.to_table()}


def piece_name(digests: list[str]) -> str:
    """The name of the piece made of the records with these digests."""
    return "piece-" + hashlib.sha256("\n".join(digests).encode()).hexdigest()[:24]


class _Writer:
    """The piece's tar, opened at its first sample."""

    def __init__(self, path: Path) -> None:
        self.path, self.writer = path, None

    def write(self, key: str, members: dict[str, bytes]) -> int:
        """Add one sample; return the bytes it added."""
        if self.writer is None:
            self.writer = TarShardWriter(self.path)
        return self.writer.write(key, members)

    def close(self) -> bool:
        """Finish the tar; return whether one was written (a piece of rejects only has none)."""
        if self.writer is not None:
            self.writer.close()
        return self.writer is not None

    def abort(self) -> None:
        """Drop the half-written tar."""
        if self.writer is not None:
            self.writer.abort()


def _write(
    builder: Builder, prepared: list, results: dict[int, Any], digests: list[str], out: _Writer
) -> dict:
    """Finish and write every prepared record in order; return the marker's records, manifest and rejects."""
    records, manifest, rejects = [], [], []
    for p, digest in zip(prepared, digests, strict=True):
        reject = p.reject
        if reject is None:
            res = results[id(p)]
            try:
                sample = finish_sample(p.draft, res.reasoning, res.info, p.masks)
            except ValidationError as exc:
                reject = record_reject(p.record, "invalid_sample", error_text(exc))
        if reject is not None:
            rejects.append(reject_row(builder.name, reject))
            records.append([digest, ""])
            continue
        nbytes = out.write(sample.key, sample_members(sample, p.files))
        manifest.append(manifest_row(sample, "", nbytes))
        records.append([digest, sample.key])
    return {"records": records, "manifest": manifest, "rejects": rejects}


def build_piece(
    builder: Builder,
    unit: WorkUnit,
    config: BuildConfig,
    engine: ReasoningEngine,
    pool: ThreadPoolExecutor,
    folder: Path,
    tick: Tick | None = None,
) -> dict[str, Any]:
    """Build the records of `unit` still to do into a staged piece in `folder`; return the piece's marker."""
    records = [unit.records[j] for j in unit.todo]
    return write_piece(
        builder, unit, config, engine, cut_records(builder, records, config, pool.map), folder, tick
    )


def write_piece(
    builder: Builder,
    unit: WorkUnit,
    config: BuildConfig,
    engine: ReasoningEngine,
    prepared: list[Prepared],
    folder: Path,
    tick: Tick | None = None,
) -> dict[str, Any]:
    """Write the prepared records of `unit` (its `todo` records, cut in order, here or on other machines) into a
    staged piece in `folder`: ask the engine for their chains, write the tar, then the marker; return the marker."""
    digests = [unit.digests[j] for j in unit.todo]
    before = engine.stats()
    ready = [p for p in prepared if p.draft is not None]
    results = engine.generate([p.draft for p in ready]) if ready else []
    by_id = {id(p): res for p, res in zip(ready, results, strict=False)}
    name = piece_name(digests)
    tar = part_name(name, 0)
    writer = _Writer(staged(folder, tar))
    try:
        body = _write(builder, prepared, by_id, digests, writer)
        wrote = writer.close()
    except BaseException:
        writer.abort()
        raise
    tars = [tar] if wrote else []
    marker = {
        "piece": name,
        "split": unit.split,
        "source": builder.name,
        "content_fingerprint": config.content_fingerprint(),
        "tars": tars,
        "tars_info": {t: tar_info(staged(folder, t)) for t in tars},
        "in": len(prepared),
        "reasoning": counters.delta(before, engine.stats()),
        **body,
    }
    write_synced(staged(folder, done_name(name)), json_bytes(marker))
    if tick:
        tick(len(prepared))
    return marker
