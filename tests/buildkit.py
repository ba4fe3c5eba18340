"""Helpers for builder tests: build a source end to end, then read it back without avuie."""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any

from avuie.build.config import BuildConfig
from avuie.build.pipeline import build
from avuie.build.scan import scan
from avuie.build.validate import validate_build
from avuie.samples import ensure_sample


def build_source(source: str, out: Path, raw: Path | None = None, **kw: Any) -> dict[str, Any]:
    """Build a source (its bundled sample by default) into `out`; return the stats."""
    raw = raw or ensure_sample(source)
    return build(BuildConfig(source=source, raw=raw, out=out, **kw))


def read_back(out: Path) -> list[dict[str, Any]]:
    """Every sample of a build read with plain webdataset, its stored media checked with Pillow, wave and tarfile
    (no avuie on that path); returned in the logical form (model_dump JSON, one file each, shards/members.py)."""
    import webdataset as wds
    from avuie.shards.members import unpack

    urls = sorted(glob.glob(str(Path(out) / "shards" / "*" / "*.tar")))
    items = []
    for x in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
        stored = {k: v for k, v in x.items() if not k.startswith("__")}
        check_stored(stored)
        logical = unpack(stored)
        sample = json.loads(logical.pop("json"))
        items.append({"key": x["__key__"], "sample": sample, "files": logical})
    return items


def check_stored(stored: dict[str, bytes]) -> None:
    """A schema_version 2 sample's members read as standard files: frames in one (multi-picture) JPEG, audio
    in one WAV, masks in one tar, as many as its JSON lists."""
    import io
    import tarfile
    import wave

    from PIL import Image

    sample = json.loads(stored["json"])
    assert set(stored) == {"json", "frames.jpg", "audio.wave", "masks.tar"}, sorted(stored)
    media = sample["media"]
    with Image.open(io.BytesIO(stored["frames.jpg"])) as frames:
        visual = [f for m in media if m["kind"] in ("video_frames", "image") for f in m["files"]]
        assert getattr(frames, "n_frames", 1) == len(visual)
    with wave.open(io.BytesIO(stored["audio.wave"])) as audio:
        assert audio.getnframes() == sum(m["num_samples"] for m in media if m["kind"] == "audio")
    with tarfile.open(fileobj=io.BytesIO(stored["masks.tar"])) as masks:
        assert masks.getnames() == [f for m in media if m["kind"] == "mask" for f in m["files"]]


def assert_build_ok(out: Path, stats: dict[str, Any], min_written: int = 1) -> list[dict[str, Any]]:
    """The build kept in = written + rejected per split, validates, and reads back with webdataset."""
    for split, s in stats["splits"].items():
        assert s["in"] == s["written"] + s["rejected"], split
    report = validate_build(out)
    assert report["failures"] == [], report["failures"][:3]
    items = read_back(out)
    assert len(items) == stats["totals"]["written"] >= min_written
    for it in items:
        assert set(it["files"]) == {f for m in it["sample"]["media"] for f in m["files"]}
    return items


def scan_counts(source: str, raw: Path, **params: Any) -> dict[str, dict[str, int]]:
    """{split: {records, rejected, media_missing}} of a scan."""
    report = scan(source, raw, params)
    return {
        s: {k: v[k] for k in ("records", "rejected", "media_missing")} for s, v in report["splits"].items()
    }


def build_state(out: Path) -> dict[str, str]:
    """Check that tars, markers and manifest of a build agree exactly; return {sample id: reasoning chain}.

    Every tar a marker lists exists with the sha256 the marker records and holds the samples its table names;
    no other tar is under shards/; the manifest's (id, shard, content_hash) rows equal the markers' rows and the
    samples in the tars; no sample id appears twice. Independent of `avuie validate`.
    """
    import hashlib

    import pyarrow.parquet as pq
    from avuie.shards.layout import list_done, list_tars
    from avuie.shards.writer import iter_tar_samples

    out = Path(out)
    listed, from_markers, in_tars, chains = set(), [], [], {}
    for marker in list_done(out):
        done = json.loads(marker.read_text())
        from_markers += [(r["id"], r["shard"], r["content_hash"]) for r in done["manifest"]]
        for name in done["tars"]:
            tar = marker.parent / name
            listed.add(tar)
            info = done["tars_info"][name]
            assert hashlib.sha256(tar.read_bytes()).hexdigest() == info["sha256"], f"{tar}: stale sha256"
            keys = []
            for key, members in iter_tar_samples(tar):
                sample = json.loads(members["json"])
                keys.append(key)
                in_tars.append((sample["id"], str(tar.relative_to(out)), sample["content_hash"]))
                chains[sample["id"]] = sample["reasoning"]
            assert keys == [row[0] for row in info["table"]["rows"]], f"{tar}: table differs"
    assert set(list_tars(out)) == listed, "tars no marker lists"
    manifest = pq.read_table(out / "manifest.parquet").to_pylist()
    rows = sorted((r["id"], r["shard"], r["content_hash"]) for r in manifest)
    assert rows == sorted(from_markers) == sorted(in_tars), "manifest, markers and tars differ"
    assert len(chains) == len(in_tars), "a sample id appears twice"
    return chains
