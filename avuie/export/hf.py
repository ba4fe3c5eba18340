"""`avuie export --format hf`: a Hugging Face `datasets.DatasetDict`, one split per build split.

`datasets.load_from_disk(DEST)` gives back, per row:

| column | feature | holds |
|---|---|---|
| id, key, source, family, split, native_id, license | string | the sample's identity |
| instruction, reasoning, answer, response, reasoning_kind | string | the text (markers `<video>`... kept) |
| target | string | the typed target as JSON |
| sample | string | the whole Sample JSON (media measurements, provenance...) |
| frames | List(Image()) | every video frame, in media order (JPEG bytes as in the shard) |
| frame_roles | List(string) | the video role of each frame (`video`, or `video_1`/`video_2` for a2v) |
| images | List(Image()) | still images (s4, ms3, ref_avs, arig) |
| audio | List(List(float32)) | each audio medium as a 16 kHz mono waveform in [-1, 1] |
| audio_roles | List(string) | the role of each audio (`audio`, `audio_1`...) |
| sampling_rate | int32 | of the audio |
| masks | List(Image()) | ground-truth masks (8-bit PNG, 0/255) |
| mask_files | List(string) | each mask's file name, as the target's groups name it |

Audio is stored as raw arrays so that reading it needs no audio decoder. `datasets` is imported here only.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from avuie.export.common import ExportOptions, decode_wav, iter_samples, split_counts

TEXT_COLUMNS = (
    "id",
    "key",
    "source",
    "family",
    "split",
    "native_id",
    "license",
    "instruction",
    "reasoning",
    "answer",
    "response",
    "reasoning_kind",
    "target",
    "sample",
)


def features() -> Any:
    """The `datasets.Features` of the export."""
    import datasets

    seq = getattr(datasets, "List", None) or datasets.Sequence
    cols: dict[str, Any] = {c: datasets.Value("string") for c in TEXT_COLUMNS}
    cols |= {
        "frames": seq(datasets.Image()),
        "frame_roles": seq(datasets.Value("string")),
        "images": seq(datasets.Image()),
        "audio": seq(seq(datasets.Value("float32"))),
        "audio_roles": seq(datasets.Value("string")),
        "sampling_rate": datasets.Value("int32"),
        "masks": seq(datasets.Image()),
        "mask_files": seq(datasets.Value("string")),
    }
    return datasets.Features(cols)


def hf_row(sample: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
    """One dataset row of a sample (see the module docstring)."""
    row: dict[str, Any] = {
        c: sample.get(c, "")
        for c in TEXT_COLUMNS
        if c not in ("target", "sample", "reasoning_kind", "family")
    }
    row |= {
        "family": str(sample["family"]),
        "reasoning_kind": sample.get("reasoning_info", {}).get("kind", ""),
        "target": json.dumps(sample["target"], ensure_ascii=False),
        "sample": json.dumps(sample, ensure_ascii=False),
        "frames": [],
        "frame_roles": [],
        "images": [],
        "audio": [],
        "audio_roles": [],
        "sampling_rate": 0,
        "masks": [],
        "mask_files": [],
    }
    for m in sample["media"]:
        if m["kind"] == "video_frames":
            row["frames"] += [{"bytes": files[f], "path": None} for f in m["files"]]
            row["frame_roles"] += [m["role"]] * len(m["files"])
        elif m["kind"] == "image":
            row["images"] += [{"bytes": files[f], "path": None} for f in m["files"]]
        elif m["kind"] == "audio":
            pcm, sr = decode_wav(files[m["files"][0]])
            row["audio"].append(pcm)
            row["audio_roles"].append(m["role"])
            row["sampling_rate"] = sr
        elif m["kind"] == "mask":
            row["masks"] += [{"bytes": files[f], "path": None} for f in m["files"]]
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
    """Write a `datasets.DatasetDict` to DEST with `save_to_disk`; return the row count per split."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError("--format hf needs the `datasets` package: pip install 'avuie[export]'") from exc

    datasets.disable_progress_bars()  # the CLI draws its own bar
    feats = features()
    parts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="avuie_hf_") as cache:
        for split in _splits(builds, opts):
            ds = datasets.Dataset.from_generator(
                _rows(builds, split, opts, progress),
                features=feats,
                cache_dir=cache,
                # a fresh fingerprint per export: never reuse a stale cached generator result
                fingerprint=f"avuie-{split}-{Path(cache).name}",
            )
            parts[split] = ds
        dataset = datasets.DatasetDict(parts)
        dataset.save_to_disk(str(dest))
        counts = {k: len(v) for k, v in dataset.items()}
        del dataset, parts
    return {"format": "hf", "dest": str(dest), "splits": counts}
