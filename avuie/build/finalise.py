"""What a build records about itself: build.json (what was built, from which annotation files (checksums), with
which settings and tools) and the notice counts, kept in the source's record (shards/derived.py)."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from avuie.build.config import BuildConfig
from avuie.builders import Builder, Notice, Record, Reject
from avuie.media.ffmpeg import ffmpeg_exe
from avuie.shards.index import sha256_file


def avuie_version() -> str:
    """The installed avuie package's version (pyproject's `version`), or "unknown" when it is not installed."""
    try:
        return version("avuie")
    except PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def _ffmpeg_version() -> str:
    try:
        proc = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True, timeout=30)
        return proc.stdout.splitlines()[0] if proc.stdout else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def notice_counts(notices: list[Notice]) -> dict[str, dict[str, int]]:
    """Notices counted per split and kind."""
    out: dict[str, dict[str, int]] = {}
    for n in notices:
        per = out.setdefault(n.split, {})
        per[n.kind] = per.get(n.kind, 0) + 1
    return out


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


def build_info(
    builder: Builder, config: BuildConfig, by_split: dict[str, list[Record]], rejects: list[Reject]
) -> dict[str, Any]:
    """The content of build.json."""
    names = {r.annotation_file for recs in by_split.values() for r in recs} | {
        r.annotation_file for r in rejects
    }
    return {
        "hashes": {
            "annotations": annotation_checksums(Path(config.raw), names),
            "records": records_digest(by_split),
        },
        "avuie_version": avuie_version(),
        "source": builder.name,
        "family": builder.family.value,
        "builder_version": builder.version,
        "raw": config.raw_url or str(config.raw),
        "config": config.settings(),
        "fingerprint": config.fingerprint(),
        "versions": {"python": platform.python_version(), "ffmpeg": _ffmpeg_version()},
        "license": builder.license,
    }
