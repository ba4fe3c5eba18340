"""Change the reasoning chains of an existing build, rewriting only the shards whose samples change.

`regenerate(out, engine, ...)` (the `avuie reason` command) reads each shard, hands the selected samples to a
reasoning engine and writes back the chains that differ. `apply_chains(out, updates)` (also used by `review
apply`) does the writing: every new sample is validated, each affected tar is rewritten as a staged copy, its
marker's rows and tar facts follow, and the commit makes tars, markers and the manifest visible together
(avuie/curate/curation.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avuie.curate.curation import Curation, build_sources
from avuie.reasoning.cache import OUTPUT_FIELDS
from avuie.reasoning.engine import Draft, ReasoningEngine
from avuie.shards.layout import MANIFEST, list_done, marker_source
from avuie.shards.writer import iter_tar_samples


@dataclass
class RewriteReport:
    """What a rewrite changed: sample ids, shard paths (relative to OUT), ids whose new sample was invalid, and
    ids that kept their old chain because the new one was a fallback (see `_keep_old`)."""

    changed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    shards: list[str] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)


def build_tars(out: Path) -> dict[Path, Path]:
    """Every tar of a build mapped to its shard's completion marker."""
    tars: dict[Path, Path] = {}
    for marker in list_done(out):
        for name in json.loads(marker.read_text()).get("tars", []):
            tars[marker.parent / name] = marker
    if not tars:
        raise ValueError(
            f"{out} holds no finished shards (expected shards/<split>/*.done.json): is it a build?"
        )
    return tars


def iter_samples(
    out: Path, splits: set[str] | None = None
) -> Iterator[tuple[Path, dict[str, Any], dict[str, bytes]]]:
    """Yield (tar path, sample dict, media members) for every sample of a build, shard by shard."""
    for tar in build_tars(Path(out)):
        if splits and tar.parent.name not in splits:
            continue
        for _key, members in iter_tar_samples(tar):
            sample = json.loads(members["json"])
            yield tar, sample, {ext: data for ext, data in members.items() if ext != "json"}


def draft_of(sample: dict[str, Any], files: dict[str, bytes]) -> Draft:
    """The draft of a written sample: its fields without the reasoning outputs, and its media files."""
    return Draft(sample={k: v for k, v in sample.items() if k not in OUTPUT_FIELDS}, media_files=files)


def _with_chain(sample: dict[str, Any], files: dict[str, bytes], reasoning: str, info: dict[str, Any]) -> Any:
    """The validated Sample with a new reasoning chain (response and content hash recomputed, as the build does)."""
    from avuie.build.assemble import finish_sample

    return finish_sample(draft_of(sample, files), reasoning, info, masks={})


def _member_bytes(members: dict[str, bytes]) -> int:
    """Bytes a sample fills in a USTAR tar: one 512-byte header per member plus data padded to 512."""
    return sum(512 + -(-len(data) // 512) * 512 for data in members.values())


def locate(out: Path, ids: set[str]) -> dict[str, Path]:
    """The tar holding each of `ids` (from OUT/manifest.parquet); ids not in the build are left out."""
    import pyarrow.parquet as pq

    out = Path(out)
    table = pq.read_table(out / MANIFEST, columns=["id", "shard"]).to_pylist()
    return {r["id"]: out / r["shard"] for r in table if r["id"] in ids}


def sources_of(out: Path, tars: Iterable[Path]) -> set[str]:
    """The sources whose shards hold these tars."""
    return {marker_source(marker, None) for marker in _markers_of(out, tars).values()} - {""}


def _markers_of(out: Path, tars: Iterable[Path]) -> dict[Path, Path]:
    markers = build_tars(out)
    return {tar: markers[tar] for tar in tars if tar in markers}


def apply_chains(
    out: Path,
    updates: dict[str, tuple[str, dict[str, Any]]],
    where: dict[str, Path] | None = None,
    markers: dict[Path, Path] | None = None,
    log: dict[str, Any] | None = None,
) -> RewriteReport:
    """Write new chains {sample id: (reasoning, info)} into a build in one commit; only the tars holding them
    are rewritten. `where` maps ids to their tar (looked up in the manifest when not given); `markers` is
    `build_tars(out)`; `log`, when given, is appended to the touched sources' `reasoning_rewrites`."""
    out = Path(out)
    report = RewriteReport()
    where = where if where is not None else locate(out, set(updates))
    markers = markers if markers is not None else build_tars(out)
    tars = sorted({where[i] for i in updates if i in where and where[i] in markers})
    sources = {marker_source(markers[t], None) for t in tars if t in markers} or build_sources(out)
    with Curation(out, sources) as cur:
        for tar in tars:
            rewrite_tar(cur, tar, markers[tar], updates, report)
        if log is not None:
            cur.log({**log, "changed": len(report.changed), "shards": report.shards}, sources)
        cur.commit()
    return report


def rewrite_tar(
    cur: Curation,
    tar: Path,
    marker: Path,
    updates: dict[str, tuple[str, dict[str, Any]]],
    report: RewriteReport,
) -> None:
    """Stage one tar rewritten with the updates that concern it, and its marker's new rows and tar facts."""
    from avuie.build.assemble import manifest_row, sample_members
    from avuie.build.piece import tar_info

    shard = cur.rel(tar)
    rows: dict[str, dict[str, Any]] = {}

    def update(key: str, members: dict[str, bytes]) -> dict[str, bytes] | None:
        sample = json.loads(members["json"])
        if sample["id"] not in updates:
            return None
        files = {ext: data for ext, data in members.items() if ext != "json"}
        reasoning, info = updates[sample["id"]]
        try:
            new = _with_chain(sample, files, reasoning, info)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            report.invalid[sample["id"]] = str(exc).splitlines()[-1].strip()
            return None
        members = sample_members(new, files)
        rows[key] = manifest_row(new, shard, _member_bytes(members))
        report.changed.append(sample["id"])
        return members

    if not cur.rewrite(tar, update):
        return
    done = cur.marker(marker)
    done["manifest"] = [rows.get(r["key"], r) for r in done["manifest"]]
    if tar.name in done.get("tars_info", {}):
        done["tars_info"][tar.name] = tar_info(cur.current(tar))
    cur.stage_marker(marker, done)
    report.shards.append(shard)


def record_rewrite(out: Path, entry: dict[str, Any]) -> None:
    """Append a rewrite's summary to the `reasoning_rewrites` of stats.json (the records of the sources whose
    shards it names, or every source of the build), in one commit."""
    out = Path(out)
    tars = [out / rel for rel in entry.get("shards", [])]
    sources = sources_of(out, tars) or build_sources(out)
    with Curation(out, sources) as cur:
        cur.log(entry, sources)
        cur.commit()


def _keep_old(sample: dict[str, Any], info: dict[str, Any]) -> bool:
    """Keep the old chain when the new one is a fallback that says nothing new: the endpoint never answered
    (api_error), or the old chain is a model or human chain (never downgraded to the template)."""
    if info.get("kind") != "fallback":
        return False
    old = (sample.get("reasoning_info") or {}).get("kind", "template")
    return str(info.get("fallback_reason", "")).startswith("api_error") or old in ("model", "human")


def _same_chain(sample: dict[str, Any], reasoning: str, info: dict[str, Any]) -> bool:
    old = sample.get("reasoning_info") or {}
    return sample.get("reasoning") == reasoning and all(old.get(k) == v for k, v in info.items())


def regenerate(
    out: Path,
    engine: ReasoningEngine,
    select: Callable[[dict[str, Any]], bool],
    progress: Callable[[int], None] | None = None,
    commit_every: int = 16,
) -> RewriteReport:
    """Regenerate the chains of the samples `select` accepts, shard by shard; return what changed. Changes are
    committed every `commit_every` rewritten shards and at the end (each commit is all-or-nothing)."""
    out = Path(out)
    total = RewriteReport()
    markers = build_tars(out)
    with Curation(out, build_sources(out)) as cur:
        for tar in markers:
            updates = _new_chains(tar, engine, select, total, progress)
            if updates:
                rewrite_tar(cur, tar, markers[tar], updates, total)
            if len(cur.txn.moves) >= 2 * commit_every:
                cur.commit()
        cur.commit()
    return total


def _new_chains(
    tar: Path,
    engine: ReasoningEngine,
    select: Callable[[dict[str, Any]], bool],
    total: RewriteReport,
    progress: Callable[[int], None] | None,
) -> dict[str, tuple[str, dict[str, Any]]]:
    """The new chains of one tar's selected samples that differ from theirs (kept old chains noted in `total`)."""
    drafts, current = [], {}
    for _key, members in iter_tar_samples(tar):
        sample = json.loads(members["json"])
        if select(sample):
            files = {ext: data for ext, data in members.items() if ext != "json"}
            drafts.append(draft_of(sample, files))
            current[sample["id"]] = sample
    if not drafts:
        return {}
    updates = {}
    for draft, result in zip(drafts, engine.generate(drafts), strict=True):
        sample = current[draft.sample["id"]]
        if _keep_old(sample, result.info):
            total.kept.append(sample["id"])
        elif not _same_chain(sample, result.reasoning, result.info):
            updates[sample["id"]] = (result.reasoning, result.info)
    if progress:
        progress(len(drafts))
    return updates
