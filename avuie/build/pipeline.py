"""The build pipeline: raw release -> records -> media cut -> reasoning -> validated samples -> shards.

Records of each split are dealt into fixed chunks of `shard_size` records in read order; each chunk becomes one
shard (more parts if it outgrows `shard_bytes`). A finished shard leaves `<name>.done.json`; a rerun skips every
shard whose marker matches the build config, and redoes the others from scratch (their `.tmp` files are
dropped), so an interrupted build resumes without duplicates or truncated tars and ends with the same manifest.
Nothing is lost: every record ends as a written sample or a reject with a reason (in = written + rejected).
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from avuie.build.cutting import Profile, cut_record
from avuie.builders import Builder, Notice, Record, Reject, get_builder
from avuie.builders.base import error_text
from avuie.media import ffmpeg
from avuie.reasoning.engine import Draft, ReasoningEngine, TemplateEngine
from avuie.schemas import Provenance, Sample, make_key, make_sample_id, render_answer
from avuie.shards.writer import (
    TarShardWriter,
    finalize_build,
    remove_stale_temp,
    sha256_file,
    write_json_atomic,
)

AVUIE_VERSION = "0.1.0"


@dataclass
class BuildConfig:
    """Everything that decides what a build writes."""

    source: str
    raw: Path
    out: Path
    splits: list[str] | None = None
    limit: int | None = None  # records per split
    workers: int = 2
    shard_size: int = 256  # records per shard
    shard_bytes: int = 1 << 30  # a shard rolls over to a new part past this size
    profile: Profile = field(default_factory=Profile)
    params: dict[str, Any] = field(default_factory=dict)
    reasoning: str = "template"

    def fingerprint(self) -> str:
        """A hash of the settings that change shard contents (not workers, not paths)."""
        d = {
            "source": self.source,
            "shard_size": self.shard_size,
            "shard_bytes": self.shard_bytes,
            "profile": asdict(self.profile),
            "params": self.params,
            "reasoning": self.reasoning,
        }
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


Progress = Callable[[int], None]


def read_records(
    builder: Builder, config: BuildConfig
) -> tuple[dict[str, list[Record]], list[Reject], list[Notice]]:
    """Read the raw root: records grouped by split (read order, `limit` per split), entry rejects and notices."""
    by_split: dict[str, list[Record]] = {}
    rejects: list[Reject] = []
    notices: list[Notice] = []
    wanted = set(config.splits) if config.splits else None
    for item in builder.read(Path(config.raw)):
        if wanted is not None and item.split not in wanted:
            continue
        if isinstance(item, Notice):
            notices.append(item)
            continue
        if isinstance(item, Reject):
            rejects.append(item)
            continue
        records = by_split.setdefault(item.split, [])
        if config.limit is None or len(records) < config.limit:
            records.append(item)
    return by_split, rejects, notices


def reject_row(source: str, r: Reject) -> dict[str, Any]:
    """A rejects.parquet row."""
    return {
        "id_or_row": make_sample_id(source, r.split, r.native_id) if r.native_id else r.entry,
        "source": source,
        "split": r.split,
        "reason": r.reason,
        "detail": r.detail,
        "annotation_file": r.annotation_file,
        "annotation_row": "" if r.annotation_row is None else str(r.annotation_row),
    }


def _label_summary(target: Any) -> str:
    from avuie.schemas import target_labels

    labels = target_labels(target)
    if labels:
        return "|".join(dict.fromkeys(labels))
    for attr in ("answer", "caption"):
        if hasattr(target, attr):
            return str(getattr(target, attr))[:80]
    return target.kind


def manifest_row(sample: Sample, shard: str, num_bytes: int) -> dict[str, Any]:
    """A manifest.parquet row of a written sample."""
    video = [m for m in sample.media if m.kind == "video_frames"]
    audio = [m for m in sample.media if m.kind == "audio"]
    return {
        "id": sample.id,
        "key": sample.key,
        "source": sample.source,
        "family": sample.family.value,
        "split": sample.split,
        "shard": shard,
        "num_bytes": num_bytes,
        "media_duration": max((m.duration or 0.0 for m in video + audio), default=0.0),
        "num_frames": sum(m.frame_count or 0 for m in video)
        or sum(1 for m in sample.media if m.kind == "image"),
        "audio_seconds": sum(m.duration or 0.0 for m in audio),
        "label": _label_summary(sample.target),
        "answer": sample.answer,
        "reasoning_kind": sample.reasoning_info.kind,
        "reasoning_chars": len(sample.reasoning),
        "content_hash": sample.content_hash,
    }


def content_hash(sample_dict: dict[str, Any], files: dict[str, bytes]) -> str:
    """sha256 over the sample JSON (without content_hash) and every media file in order."""
    h = hashlib.sha256()
    body = {k: v for k, v in sample_dict.items() if k != "content_hash"}
    h.update(json.dumps(body, sort_keys=True, default=str).encode())
    for name in sorted(files):
        h.update(name.encode())
        h.update(hashlib.sha256(files[name]).digest())
    return h.hexdigest()


class _Prepared:
    """A record after media cutting: either a draft ready for reasoning, or a reject."""

    def __init__(
        self,
        record: Record,
        draft: Draft | None = None,
        files: dict[str, bytes] | None = None,
        masks: dict[str, Any] | None = None,
        reject: Reject | None = None,
    ) -> None:
        self.record, self.draft, self.files, self.masks, self.reject = (
            record,
            draft,
            files or {},
            masks or {},
            reject,
        )


def prepare(builder: Builder, record: Record, config: BuildConfig) -> _Prepared:
    """Cut a record's media and make its target and draft; any failure becomes a reject with its reason."""

    def fail(reason: str, detail: str) -> _Prepared:
        rej = Reject(
            record.split,
            record.entry,
            reason,
            detail,
            record.native_id,
            record.annotation_file,
            record.annotation_row,
        )
        return _Prepared(record, reject=rej)

    try:
        cut, checksums = cut_record(record, builder.family, config.profile)
    except ffmpeg.MediaError as exc:
        return fail(exc.reason, exc.detail)
    try:
        target = builder.make_target(record, cut)
    except (ValueError, ValidationError) as exc:
        return fail(getattr(exc, "reason", "invalid_target"), getattr(exc, "detail", None) or error_text(exc))
    sample_id = make_sample_id(builder.name, record.split, record.native_id)
    raw_root = str(Path(config.raw))
    provenance = Provenance(
        annotation_file=record.annotation_file,
        annotation_row=record.annotation_row,
        builder=builder.name,
        builder_version=builder.version,
        raw_checksums={
            str(Path(p).relative_to(raw_root)) if p.startswith(raw_root) else p: c
            for p, c in checksums.items()
        },
    )
    sample = {
        "schema_version": "1",
        "id": sample_id,
        "key": make_key(sample_id),
        "source": builder.name,
        "family": builder.family.value,
        "split": record.split,
        "native_id": record.native_id,
        "media": [m.model_dump(exclude_none=True) for m in cut.media],
        "instruction": record.instruction,
        "target": target.model_dump(mode="json"),
        "answer": render_answer(target, source=builder.name),  # the default (Crab+) answer style
        "provenance": provenance.model_dump(mode="json"),
        "license": builder.license,
    }
    draft = Draft(sample=sample, media_files=cut.files, context=record.context)
    return _Prepared(record, draft=draft, files=cut.files, masks=cut.object_masks)


def finish_sample(draft: Draft, reasoning: str, info: dict[str, Any], masks: dict[str, Any]) -> Sample:
    """Attach the reasoning, compute the content hash and validate (points checked against the masks)."""
    d = dict(draft.sample)
    d["reasoning"] = reasoning
    d["response"] = f"{reasoning} {d['answer']}"
    d["reasoning_info"] = info
    sample = Sample.model_validate(d, context={"masks": masks})
    sample.content_hash = content_hash(sample.model_dump(mode="json"), draft.media_files)
    return sample


def sample_members(sample: Sample, files: dict[str, bytes]) -> dict[str, bytes]:
    """The tar members of a sample: its JSON first, then every media file in media order."""
    members = {"json": json.dumps(sample.model_dump(mode="json"), ensure_ascii=False).encode()}
    for name in sample.media_files():
        members[name] = files[name]
    return members


def tar_info(path: Path) -> dict[str, Any]:
    """What readers need about a finished tar without reading it: size, sha256 and each sample's byte range."""
    from avuie.shards.index import scan_stream

    with open(path, "rb") as fh:  # one pass gives the table, the size and the hash
        scan = scan_stream(fh, with_sha256=True)
    return {"bytes": scan.num_bytes, "sha256": scan.sha256, "table": scan.to_table()}


def build_shard(
    builder: Builder,
    records: list[Record],
    shard_dir: Path,
    name: str,
    config: BuildConfig,
    engine: ReasoningEngine,
    pool: ThreadPoolExecutor,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Build one shard from its records; write its tar(s) and completion marker; return the marker."""
    prepared = list(pool.map(lambda r: prepare(builder, r, config), records))
    ready = [p for p in prepared if p.draft is not None]
    results = engine.generate([p.draft for p in ready]) if ready else []
    by_id = {id(p): res for p, res in zip(ready, results, strict=False)}
    manifest: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    tars: list[str] = []
    part, writer = 0, None
    try:
        for p in prepared:
            if p.reject is not None:
                rejects.append(reject_row(builder.name, p.reject))
                continue
            res = by_id[id(p)]
            try:
                sample = finish_sample(p.draft, res.reasoning, res.info, p.masks)
            except ValidationError as exc:
                rejects.append(
                    reject_row(
                        builder.name,
                        Reject(
                            p.record.split,
                            p.record.entry,
                            "invalid_sample",
                            error_text(exc),
                            p.record.native_id,
                            p.record.annotation_file,
                            p.record.annotation_row,
                        ),
                    )
                )
                continue
            if writer is None or writer.size > config.shard_bytes:
                if writer is not None:
                    writer.close()
                    part += 1
                tar_name = f"{name}.tar" if part == 0 else f"{name}-{part}.tar"
                writer = TarShardWriter(shard_dir / tar_name)
                tars.append(tar_name)
            nbytes = writer.write(sample.key, sample_members(sample, p.files))
            manifest.append(manifest_row(sample, f"shards/{shard_dir.name}/{tars[-1]}", nbytes))
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        if progress:
            progress(len(records))
    marker = {
        "records_digest": chunk_digest(records),
        "tars_info": {t: tar_info(shard_dir / t) for t in tars},
        "shard": name,
        "split": records[0].split if records else "",
        "fingerprint": config.fingerprint(),
        "tars": tars,
        "in": len(records),
        "manifest": manifest,
        "rejects": rejects,
    }
    write_json_atomic(shard_dir / f"{name}.done.json", marker)
    return marker


def build(
    config: BuildConfig,
    engine: ReasoningEngine | None = None,
    progress: Callable[[int, int], None] | None = None,
    builder: Builder | None = None,
) -> dict[str, Any]:
    """Build one source into `config.out`; return stats (also written to stats.json).

    `progress(done, total)` is called as records finish (the CLI draws a rich bar with it).
    """
    builder = builder or get_builder(config.source, **config.params)
    engine = engine or TemplateEngine()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temp(out)
    if config.shard_size < 1 or config.shard_bytes < 1 or (config.limit is not None and config.limit < 1):
        raise ValueError("shard_size, shard_bytes and limit must be at least 1")
    by_split, entry_rejects, notices = read_records(builder, config)
    _check_splits(builder, config, by_split, entry_rejects)
    total = sum(len(v) for v in by_split.values())
    done_count = [0]

    def tick(n: int) -> None:
        done_count[0] += n
        if progress:
            progress(done_count[0], total)

    fingerprint = config.fingerprint()
    skipped = 0
    with ThreadPoolExecutor(max_workers=max(1, config.workers)) as pool:
        for split in sorted(by_split):
            records = by_split[split]
            shard_dir = out / "shards" / split
            shard_dir.mkdir(parents=True, exist_ok=True)
            for i in range(0, len(records), config.shard_size):
                chunk = records[i : i + config.shard_size]
                name = f"{builder.name}-{split}-{i // config.shard_size:05d}"
                marker = shard_dir / f"{name}.done.json"
                if _is_done(marker, fingerprint, chunk_digest(chunk)):
                    skipped += 1
                    tick(len(chunk))
                    continue
                build_shard(builder, chunk, shard_dir, name, config, engine, pool, tick)
        _drop_orphans(out, by_split, config)
    stats = finalize_build(
        out,
        [reject_row(builder.name, r) for r in entry_rejects],
        {
            "source": builder.name,
            "family": builder.family.value,
            "shards_skipped": skipped,
            "reasoning": engine.stats(),
            "notices": _notice_counts(notices),
        },
    )
    write_json_atomic(out / "build.json", _build_info(builder, config, by_split, entry_rejects))
    return stats


def chunk_digest(records: list[Record]) -> str:
    """sha256 over what a shard is made from (ids, entries, targets, raw media paths and cut settings)."""
    h = hashlib.sha256()
    for r in records:
        target = r.target.model_dump_json() if r.target is not None else ""
        media = [
            (type(m).__name__, str(m.path), getattr(m, "start", 0), getattr(m, "duration", None))
            for m in r.media
        ]
        h.update(f"{r.split}/{r.native_id}\t{r.entry}\t{target}\t{media}\t{r.instruction}\n".encode())
    return h.hexdigest()


def _is_done(marker: Path, fingerprint: str, digest: str) -> bool:
    """A shard counts as finished when its marker exists and was made with the same settings and records."""
    if not marker.exists():
        return False
    try:
        done = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return done.get("fingerprint") == fingerprint and done.get("records_digest") == digest


def _check_splits(builder: Builder, config: BuildConfig, by_split: dict, rejects: list[Reject]) -> None:
    if not config.splits:
        return
    seen = set(by_split) | {r.split for r in rejects}
    missing = [s for s in config.splits if s not in seen]
    if missing:
        raise ValueError(
            f"{builder.name}: no entries for split(s) {', '.join(missing)} in {config.raw}; "
            f"this source's splits are {', '.join(builder.splits)}"
        )


def _notice_counts(notices: list[Notice]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for n in notices:
        per = out.setdefault(n.split, {})
        per[n.kind] = per.get(n.kind, 0) + 1
    return out


def _drop_orphans(out: Path, by_split: dict[str, list[Record]], config: BuildConfig) -> None:
    """Remove shards of an earlier build that this build's chunking no longer produces."""
    wanted = {
        f"{config.source}-{split}-{i // config.shard_size:05d}"
        for split, recs in by_split.items()
        for i in range(0, len(recs), config.shard_size)
    }
    for marker in out.glob("shards/*/*.done.json"):
        name = marker.name[: -len(".done.json")]
        if name not in wanted:
            done = json.loads(marker.read_text())
            for tar in done.get("tars", []):
                (marker.parent / tar).unlink(missing_ok=True)
            marker.unlink()


@lru_cache(maxsize=1)
def _ffmpeg_version() -> str:
    try:
        proc = subprocess.run([ffmpeg.ffmpeg_exe(), "-version"], capture_output=True, text=True, timeout=30)
        return proc.stdout.splitlines()[0] if proc.stdout else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def annotation_checksums(raw: Path, names: set[str], max_depth: int = 4) -> dict[str, str]:
    """sha256 of each annotation file a build read, found under the raw root by its recorded name."""
    raw = Path(raw)
    out: dict[str, str] = {}
    for name in sorted(n for n in names if n):
        direct = raw / name
        if direct.is_file():
            out[name] = sha256_file(direct)
            continue
        base = Path(name).name
        for depth in range(max_depth + 1):
            hits = sorted(p for p in raw.glob("/".join(["*"] * depth + [base])) if p.is_file())
            if hits:
                out[name] = sha256_file(hits[0])
                break
    return out


def records_digest(by_split: dict[str, list[Record]]) -> str:
    """sha256 over every record's id and target, in build order: two builds read the same annotations iff equal."""
    h = hashlib.sha256()
    for split in sorted(by_split):
        for r in by_split[split]:
            target = r.target.model_dump_json() if r.target is not None else ""
            h.update(f"{split}/{r.native_id}\t{target}\n".encode())
    return h.hexdigest()


def _build_info(
    builder: Builder, config: BuildConfig, by_split: dict[str, list[Record]], rejects: list[Reject]
) -> dict[str, Any]:
    names = {r.annotation_file for recs in by_split.values() for r in recs} | {
        r.annotation_file for r in rejects
    }
    return {
        "hashes": {
            "annotations": annotation_checksums(Path(config.raw), names),
            "records": records_digest(by_split),
        },
        "avuie_version": AVUIE_VERSION,
        "source": builder.name,
        "family": builder.family.value,
        "builder_version": builder.version,
        "raw": str(config.raw),
        "config": {
            "splits": config.splits,
            "limit": config.limit,
            "workers": config.workers,
            "shard_size": config.shard_size,
            "shard_bytes": config.shard_bytes,
            "profile": asdict(config.profile),
            "params": config.params,
            "reasoning": config.reasoning,
        },
        "fingerprint": config.fingerprint(),
        "versions": {"python": platform.python_version(), "ffmpeg": _ffmpeg_version()},
        "license": builder.license,
    }
