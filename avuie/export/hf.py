"""`avuie export --format hf`: a Hugging Face `datasets.DatasetDict` (one split per build split) and its dataset card.

`datasets.load_from_disk(DEST)` gives back, per row:

| column | feature | holds |
|---|---|---|
| id, key, source, family, split, native_id, license, schema_version, content_hash | string | the sample's identity |
| instruction, reasoning, answer, response | string | the text (markers `<video>`... kept) |
| target | struct | the typed target: `kind` and every kind's fields (null where another kind's), maps as lists |
| media | list of struct | each medium: kind, role, files, measurements (null where not measured) |
| reasoning_info, provenance | struct | how the chain was made; where the sample came from |
| frames | List(Image()) | every video frame and still image, in media order (the shard's JPEG bytes) |
| audio | List(Audio()) | each audio medium (the shard's 16 kHz WAV bytes), in media order |
| masks | List(Image()) | the ground-truth masks (8-bit PNG, 0/255) |
| mask_files | List(string) | each mask's file name, as the target's groups name it |

Images and audio are decoded on access. Decoding `Audio` needs torchcodec (and FFmpeg's libraries); without it,
`ds.cast_column("audio", datasets.List(datasets.Audio(decode=False)))` gives each audio's WAV bytes instead.
`DEST/README.md` is the dataset card (export/card.py) that `avuie push` publishes. `datasets` is imported here
only.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from avuie.export.card import write_card
from avuie.export.common import ExportOptions, iter_samples, split_counts
from avuie.schemas.ondisk import MEDIA, PROVENANCE, REASONING_INFO, TARGET, TEXT_FIELDS

_SCALARS = {str: "string", int: "int64", float: "float64", bool: "bool"}
_PROVENANCE = {name: spec for name, spec in PROVENANCE.items() if name != "annotation_row_type"}


def _feature(spec: Any) -> Any:
    """The `datasets` feature of an on-disk spec (schemas/ondisk.py): scalars, lists, fixed tuples, records."""
    import datasets

    if isinstance(spec, type):
        return datasets.Value(_SCALARS[spec])
    if isinstance(spec, list):
        return datasets.List(_feature(spec[0]))
    if isinstance(spec, tuple):
        return datasets.List(_feature(spec[0]), length=len(spec))
    return {name: _feature(s) for name, s in spec.items()}


def features(audio_storage: bool = False) -> Any:
    """The `datasets.Features` of the export (`audio_storage`: audio as its {bytes, path} storage struct)."""
    import datasets

    cols: dict[str, Any] = {name: datasets.Value("string") for name in TEXT_FIELDS}
    cols |= {
        "target": _feature(TARGET),
        "media": datasets.List(_feature(MEDIA)),
        "reasoning_info": _feature(REASONING_INFO),
        "provenance": _feature(_PROVENANCE),
        "frames": datasets.List(datasets.Image()),
        "audio": datasets.List(
            {"bytes": datasets.Value("binary"), "path": datasets.Value("string")}
            if audio_storage
            else datasets.Audio()
        ),
        "masks": datasets.List(datasets.Image()),
        "mask_files": datasets.List(datasets.Value("string")),
    }
    return datasets.Features(cols)


def _records(mapping: dict[str, Any] | None, names: tuple[str, str]) -> list[dict[str, Any]]:
    return [{names[0]: k, names[1]: v} for k, v in (mapping or {}).items()]


def _target(target: dict[str, Any]) -> dict[str, Any]:
    """A target as the export's one target struct: its kind's fields, null for the others, maps as lists."""
    row: dict[str, Any] = dict.fromkeys(TARGET)
    for name, value in target.items():
        row[name] = _records(value, ("label", "segments")) if name in ("audio", "visual") else value
    return row


def hf_row(sample: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
    """One dataset row of a sample (model_dump form) and its files (see the module docstring)."""
    row: dict[str, Any] = {name: sample.get(name, "") for name in TEXT_FIELDS}
    info = dict(sample.get("reasoning_info") or {})
    prov = dict(sample["provenance"])
    row |= {
        "family": str(sample["family"]),
        "target": _target(sample["target"]),
        "media": [{name: m.get(name) for name in MEDIA} for m in sample["media"]],
        "reasoning_info": {name: info.get(name) for name in REASONING_INFO}
        | {"usage": _records(info.get("usage"), ("name", "count"))},
        "provenance": {name: prov.get(name) for name in _PROVENANCE}
        | {
            "annotation_row": None if prov.get("annotation_row") is None else str(prov["annotation_row"]),
            "raw_checksums": _records(prov.get("raw_checksums"), ("path", "sha256")),
        },
        "frames": [],
        "audio": [],
        "masks": [],
        "mask_files": [],
    }
    for m in sample["media"]:
        blobs = [{"bytes": files[f], "path": f} for f in m["files"]]
        if m["kind"] in ("video_frames", "image"):
            row["frames"] += blobs
        elif m["kind"] == "audio":
            row["audio"] += blobs
        elif m["kind"] == "mask":
            row["masks"] += blobs
            row["mask_files"] += list(m["files"])
    return row


def _rows(builds: list[Path], split: str, opts: ExportOptions, progress: Callable[[int], None] | None):
    def gen() -> Iterator[dict[str, Any]]:
        for sample, files in iter_samples(builds, [split], opts.sources):
            yield hf_row(sample, files)
            if progress:
                progress(1)

    return gen


def _splits(builds: list[Path], opts: ExportOptions) -> list[str]:
    """The splits with at least one sample to export (an empty split cannot become a Dataset)."""
    from avuie.catalog.db import open_catalog

    return sorted(n for n, c in split_counts(open_catalog(builds), opts.splits, opts.sources).items() if c)


def export_hf(
    builds: list[Path], dest: Path, opts: ExportOptions, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Write a `datasets.DatasetDict` to DEST with `save_to_disk`, and its card DEST/README.md; return the row
    count per split and per source."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("--format hf needs the `datasets` package: pip install 'avuie[export]'") from exc

    datasets.disable_progress_bars()  # the CLI draws its own bar
    stored, final = features(audio_storage=True), features()
    with tempfile.TemporaryDirectory(prefix="avuie_hf_") as cache:
        parts: dict[str, Any] = {}
        for split in _splits(builds, opts):
            ds = datasets.Dataset.from_generator(
                _rows(builds, split, opts, progress),
                features=stored,
                cache_dir=cache,
                # a fresh fingerprint per export: never reuse a stale cached generator result
                fingerprint=f"avuie-{split}-{Path(cache).name}",
            )
            parts[split] = ds.cast(final)  # WAV bytes into Audio() without encoding (no torchcodec needed)
        dataset = datasets.DatasetDict(parts)
        dataset.save_to_disk(str(dest))
        counts = {name: len(part) for name, part in dataset.items()}
        by_source = {name: dict(sorted(_count(part["source"]).items())) for name, part in dataset.items()}
        del dataset, parts
    write_card(builds, dest, by_source)
    return {"format": "hf", "dest": str(dest), "splits": counts, "sources": by_source}


def _count(values: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out
