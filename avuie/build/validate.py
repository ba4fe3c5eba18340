"""`avuie validate`: re-read every shard of a build and re-validate every sample against the contract.

Checks per sample: its stored members unpack (shards/members.py), the JSON validates as a `Sample` (with its
masks as context, so points must lie inside them), every media file named by the sample is in the tar, the content
hash matches the bytes, and each shard's samples match its manifest rows. Per build folder (build/consistency.py): every tar a marker lists exists with the size
and sha256 it records, no tar is unlisted, the manifest equals the markers' rows, no sample is listed twice and no
commit was left unfinished.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import ValidationError

from avuie.build.assemble import content_hash
from avuie.build.consistency import build_folders, check_folder
from avuie.builders import load_all
from avuie.builders.base import error_text
from avuie.schemas import Sample
from avuie.shards.index import read_done
from avuie.shards.layout import build_of_tar, find_shards
from avuie.shards.members import is_packed, unpack
from avuie.shards.writer import iter_tar_samples


def _decode_mask(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L")) > 0


def validate_sample(key: str, stored: dict[str, bytes]) -> tuple[str, str | None]:
    """Validate one tar sample, given its members as stored; return (id or key, error or None)."""
    if "json" not in stored:
        return key, "no .json member"
    try:
        members = unpack(stored)
        raw = json.loads(members["json"])
    except ValueError as exc:  # unreadable JSON, or containers that do not hold the listed files
        return key, str(exc) if is_packed(stored) else f"unreadable JSON: {exc}"
    sid = raw.get("id", key)
    try:
        masks = {n: _decode_mask(members[n]) for n in members if n.startswith("mask") and n.endswith(".png")}
        sample = Sample.model_validate(raw, context={"masks": masks})
    except ValidationError as exc:
        return sid, error_text(exc)
    except OSError as exc:
        return sid, f"unreadable mask: {exc}"
    if sample.key != key:
        return sid, f"tar key {key} differs from the sample key {sample.key}"
    files = {}
    for name in sample.media_files():
        if name not in members:
            return sid, f"media file {name} is missing from the tar"
        files[name] = members[name]
    extra = set(members) - set(files) - {"json"}
    if extra:
        return sid, f"unexpected members {sorted(extra)}"
    if content_hash(raw, files) != sample.content_hash:
        return sid, "content hash does not match the sample's bytes"
    return sid, None


def validate_build(out: Path) -> dict[str, Any]:
    """Validate every tar under `out` (recursively) and every build folder's consistency (tars, markers,
    manifest, pending commits, samples listed twice); return counts and failures."""
    load_all()  # the class lists that builders declare (Builder.classes) are checked too
    out = Path(out)
    failures: list[dict[str, str]] = []
    for folder in build_folders(out):
        failures += check_folder(folder)
    count = 0
    tars = sorted(find_shards(out))
    where: dict[str, Path] = {}
    for tar in tars:
        try:
            seen = _validate_tar(tar, failures)
        except Exception as exc:  # noqa: BLE001 - a broken tar is a failure to report, not a crash
            failures.append({"id": str(tar), "shard": str(tar), "error": f"unreadable tar: {exc}"})
            continue
        count += len(seen)
        for sid in seen:
            if sid in where and where[sid].parent.parent.parent == tar.parent.parent.parent:
                failures.append({"id": sid, "shard": str(tar), "error": f"also in {where[sid].name}"})
            where.setdefault(sid, tar)
    return {"samples": count, "shards": len(tars), "failures": failures}


def _validate_tar(tar: Path, failures: list[dict[str, str]]) -> list[str]:
    """Validate one tar's samples (failures appended); return the ids it holds."""
    marker_ids = None
    done = read_done(tar)
    if done is not None and "manifest" in done:
        rel = str(tar.relative_to(build_of_tar(tar)))
        marker_ids = {r["id"] for r in done["manifest"] if r["shard"] == rel}
    seen = []
    for key, members in iter_tar_samples(tar, unpacked=False):
        sid, err = validate_sample(key, members)
        seen.append(sid)
        if err:
            failures.append({"id": sid, "shard": str(tar), "error": err})
    if marker_ids is not None and marker_ids != set(seen):
        failures.append({"id": str(tar), "shard": str(tar), "error": "samples differ from the manifest rows"})
    return seen
