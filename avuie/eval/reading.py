"""Read what `avuie eval` scores: predictions (JSONL) and the ground-truth samples of a build directory.

Predictions: one JSON object a line, `{"id": "<source>/<split>/<native_id>", "response": "..."}` (what `avuie
predict` writes); any other line is malformed, left out and reported (see `read_predictions`). Ground truth:
the shards under a build root (plain tar reading: each sample's `<key>.json` member, its mask PNGs, and its
image when SAM2 needs it, from their own members or the containers of shards/members.py). Where `manifest.parquet` files exist, only the shards
holding predicted ids are opened, and the manifest counts the samples left unpredicted.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from avuie.shards.layout import find_manifests, find_shards
from avuie.shards.members import read_sample


@dataclass
class GroundTruth:
    """One ground-truth sample: ids, its target (pydantic), decoded masks {file: bool array}, optional image,
    and where it came from (its native id and annotation row, which order and batch the mask metrics)."""

    id: str
    source: str
    family: str
    split: str
    target: Any
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    image: np.ndarray | None = None
    native_id: str = ""
    row: int | str | None = None


MALFORMED_SHOWN = 20  # line numbers of malformed prediction lines kept in the report
MAX_LINE_BYTES = 1 << 20  # a longer prediction line is reported ("line too long") and never loaded whole
MAX_INT_DIGITS = 40  # a JSON integer with more digits is reported ("number too large"), never converted
ID_SHOWN_CHARS = 200  # ids echoed in reports are cut to this length


@dataclass
class Predictions:
    """A predictions file read: {id: response}, how many ids repeated, and the malformed lines left out.

    `malformed` holds (line number, reason, id or None) for every line that is not a JSON object with a string
    "id" and a string "response" (e.g. "not JSON", 'no "response" key', "not UTF-8", "line too long"); those
    lines are not scored, so their samples count as unpredicted, never as unparseable answers.
    """

    responses: dict[str, str]
    duplicates: int = 0
    malformed: list[tuple[int, str, str | None]] = field(default_factory=list)

    def malformed_summary(self) -> dict[str, Any]:
        """{"n_malformed_lines", "malformed_lines" (the first MALFORMED_SHOWN line numbers), "malformed_reasons"
        ({reason: count})}."""
        return {
            "n_malformed_lines": len(self.malformed),
            "malformed_lines": [line for line, _, _ in self.malformed[:MALFORMED_SHOWN]],
            "malformed_reasons": dict(sorted(Counter(reason for _, reason, _ in self.malformed).items())),
        }


def shown_id(sample_id: str) -> str:
    """An id as reports echo it: cut to ID_SHOWN_CHARS characters."""
    return sample_id if len(sample_id) <= ID_SHOWN_CHARS else sample_id[:ID_SHOWN_CHARS] + "..."


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise OverflowError("number too large")
    return int(text)


def _unicode_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a "\\ud800" escape)
        return False
    return True


def _malformed_reason(record: Any) -> str | None:
    """Why a decoded JSON line is not a prediction {"id": str, "response": str}, or None when it is one."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if not isinstance(record.get("id"), str):
        return 'no string "id"'
    if "response" not in record:
        return 'no "response" key'
    if not isinstance(record["response"], str):
        return '"response" is not a string'
    if not (_unicode_ok(record["id"]) and _unicode_ok(record["response"])):
        return "invalid Unicode (a lone surrogate)"
    return None


def decode_line(raw: bytes, first: bool) -> tuple[Any, str | None]:
    """One prediction line's bytes as (decoded JSON value, None) or (None, reason it is malformed).

    Never raises: bytes that are not UTF-8, JSON too deeply nested or with an integer of more than
    MAX_INT_DIGITS digits, and anything else json rejects, come back as a reason. A BOM before the first
    line's JSON is dropped.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8"
    if first and text.startswith("\ufeff"):
        text = text[1:]
    try:
        return json.loads(text, parse_int=_bounded_int), None
    except RecursionError:
        return None, "JSON nested too deeply"
    except OverflowError:
        return None, "number too large"
    except ValueError:  # JSONDecodeError, and any other value json refuses
        return None, "not JSON"


def _raw_lines(fh: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) per line; None for a line over max_line_bytes (its rest is skipped unread)."""
    lineno = 0
    while raw := fh.readline(max_line_bytes + 1):
        lineno += 1
        if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
            while (rest := fh.readline(1 << 16)) and not rest.endswith(b"\n"):
                pass
            yield lineno, None
            continue
        yield lineno, raw


def read_predictions(path: str | Path, max_line_bytes: int = MAX_LINE_BYTES) -> Predictions:
    """Read preds.jsonl: one {"id": str, "response": str} a line (blank lines are skipped).

    Returns a Predictions: {id: response} (for a repeated id the last one wins, and the repeats are counted)
    and the malformed lines with their reasons (not UTF-8, longer than `max_line_bytes`, not JSON, JSON nested
    too deeply or with a huge integer, not an object, no string id, no or a non-string response, a lone
    surrogate), which are left out rather than scored: a bad line never stops the reading. Raises
    FileNotFoundError when `path` is not a regular file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file {path} does not exist (or is not a regular file)")
    out = Predictions({})
    with path.open("rb") as fh:
        for lineno, raw in _raw_lines(fh, max_line_bytes):
            if raw is None:
                out.malformed.append((lineno, "line too long", None))
                continue
            if not raw.strip():
                continue
            record, reason = decode_line(raw, first=lineno == 1)
            reason = reason or _malformed_reason(record)
            if reason is not None:
                sample_id = record.get("id") if isinstance(record, dict) else None
                ok_id = isinstance(sample_id, str) and _unicode_ok(sample_id)
                out.malformed.append((lineno, reason, sample_id if ok_id else None))
                continue
            out.duplicates += record["id"] in out.responses
            out.responses[record["id"]] = record["response"]
    return out


def source_of(sample_id: str) -> str:
    """The source name of a sample id `<source>/<split>/<native_id>`."""
    return sample_id.split("/", 1)[0]


def _manifest_rows(root: Path) -> tuple[list[Path], list[dict[str, Any]]]:
    """The build directories holding a manifest.parquet, and its rows (id, source, split, absolute shard)."""
    import pyarrow.parquet as pq

    dirs, rows = [], []
    for manifest in find_manifests(root):
        dirs.append(manifest.parent.resolve())
        table = pq.read_table(manifest, columns=["id", "source", "split", "shard"])
        for row in table.to_pylist():
            row["shard"] = str((manifest.parent / row["shard"]).resolve())
            rows.append(row)
    return dirs, rows


def _decode_mask(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("L")) > 0


def _decode_image(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _file_reader(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], sample: dict) -> Callable:
    """read(file name) -> the bytes of one of the sample's media files, or None (reads only what is asked)."""
    from avuie.shards.members import container_files, container_of, is_packed

    held: dict[str, dict[str, bytes]] = {}

    def read(name: str) -> bytes | None:
        if not is_packed(members):
            return tar.extractfile(members[name]).read() if name in members else None
        container = container_of(sample, name)
        if container is None or container not in members:
            return None
        if container not in held:
            held[container] = container_files(sample, container, tar.extractfile(members[container]).read())
        return held[container].get(name)

    return read


def _make_ground_truth(sample: dict, read: Callable[[str], bytes | None], tar_name: str,
                       need_image: bool) -> GroundTruth:  # fmt: skip
    from avuie.schemas import TARGET_TYPES

    target_json = sample.get("target") or {}
    kind = target_json.get("kind")
    if kind not in TARGET_TYPES:
        raise ValueError(f"sample {sample.get('id')!r}: unknown target kind {kind!r}")
    gt = GroundTruth(
        id=sample["id"],
        source=sample["source"],
        family=sample.get("family", ""),
        split=sample["split"],
        target=TARGET_TYPES[kind].model_validate(target_json),
        native_id=str(sample.get("native_id") or ""),
        row=(sample.get("provenance") or {}).get("annotation_row"),
    )
    for group in target_json.get("groups") or []:
        data = read(group["mask"])
        if data is None:
            raise ValueError(
                f"sample {gt.id!r}: ground-truth mask {group['mask']!r} is missing from {tar_name}"
            )
        gt.masks[group["mask"]] = _decode_mask(data)
    if need_image:
        for item in sample.get("media", []):
            data = read(item["files"][0]) if item.get("kind") == "image" else None
            if data is not None:
                gt.image = _decode_image(data)
                break
    return gt


def load_ground_truth(
    root: str | Path,
    ids: set[str],
    need_image: Callable[[str], bool] = lambda source: False,
    on_shard: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, GroundTruth], Counter]:
    """Load the ground truth of `ids` from the shards under `root`.

    `need_image(source)` says whether to decode a sample's image (for SAM2); `on_shard(done, total)` reports
    progress. Returns ({id: GroundTruth}, Counter of unpredicted samples per "source/split" among the
    source/split pairs that have predictions). Raises FileNotFoundError when `root` holds no shard.
    """
    root = Path(root)
    tars = sorted(p.resolve() for p in find_shards(root)) if root.is_dir() else []
    if not tars:
        raise FileNotFoundError(f"no shards (*.tar) under {root}: give the build directory of `avuie build`")
    manifests, rows = _manifest_rows(root)
    # A tar inside a build directory with a manifest is opened only when the manifest puts a predicted id in
    # it; tars of builds without a manifest are read in full.
    covered = {t for t in tars if any(m in t.parents for m in manifests)}
    wanted = {row["shard"] for row in rows if row["id"] in ids}
    tars = [t for t in tars if t not in covered or str(t) in wanted]
    seen = [(row["id"], row["source"], row["split"]) for row in rows]
    found: dict[str, GroundTruth] = {}
    for done, path in enumerate(tars, 1):
        with tarfile.open(path) as tar:
            by_key: dict[str, dict[str, tarfile.TarInfo]] = defaultdict(dict)
            for info in tar:
                if info.isfile() and "." in info.name:
                    key, _, suffix = Path(info.name).name.partition(".")
                    by_key[key][suffix] = info
            for members in by_key.values():
                if "json" not in members:
                    continue
                sample = read_sample(tar.extractfile(members["json"]).read())
                if path not in covered:
                    seen.append((sample["id"], sample["source"], sample["split"]))
                if sample["id"] in ids and sample["id"] not in found:
                    found[sample["id"]] = _make_ground_truth(
                        sample,
                        _file_reader(tar, members, sample),
                        str(tar.name),
                        need_image(sample["source"]),
                    )
        if on_shard:
            on_shard(done, len(tars))
    predicted_pairs = {(g.source, g.split) for g in found.values()}
    unpredicted = Counter(
        f"{src}/{split}" for sid, src, split in seen if (src, split) in predicted_pairs and sid not in ids
    )
    return found, unpredicted
