"""The on-disk JSON of a sample (schema_version "2"): one Arrow-stable shape for every source and family.

`Sample` (schemas/sample.py) is the contract; this is its serialisation in a shard's `<key>.json` member. Arrow (and
so Hugging Face `datasets`, DuckDB, Polars) infers a JSON member's column types from the values it sees, shard by
shard; a shape that changed with the family, or a value that was null, empty or of another type in one shard, gave
each shard another schema and mixing them failed. So the on-disk JSON follows five rules (docs/DESIGN.md):

1. every object has the same keys in every sample: the target is one record holding the fields of every target
   kind, its `kind` says which of them apply;
2. no null: a value that is absent (or a field of another target kind) is written as its type's *absent value*:
   `""` for text, `-1` for integers, `-1.0` for reals, `false` for flags;
3. no empty list: a list that would be empty holds one element made of absent values (`[""]`, `[-1.0]`,
   `[{"label": "", ...}]`), and a fixed-size tuple (size, box) that is absent holds absent values;
4. one type per field: reals are always written as reals (`10.0`), `annotation_row` always as text (with
   `annotation_row_type` saying whether it was an integer, text or none);
5. no maps with data as keys: `raw_checksums`, `usage` and the AVVP `audio` / `visual` events become lists of
   records (`{"path", "sha256"}`, `{"name", "count"}`, `{"label", "segments"}`).

The absent values never collide with real ones: the contract keeps measured numbers non-negative, labels and names
non-empty, and lists that are present non-empty. `to_disk(sample_dict)` writes this shape from a sample's
`model_dump(mode="json")`; `from_disk(json_dict)` gives that dict back exactly (a schema_version "1" JSON, the
previous shape, is returned as it is; `is_disk_shape` tells them apart).
"""

from __future__ import annotations

from typing import Any

DISK_VERSION = "2"

_ABSENT_SCALAR: dict[type, Any] = {str: "", int: -1, float: -1.0, bool: False}

# Specs: a type is a scalar, [spec] a list, (spec, ...) a fixed-size tuple, {name: spec} a record.
MEDIA: dict[str, Any] = {
    "kind": str,
    "role": str,
    "files": [str],
    "source_path": str,
    "duration": float,
    "start": float,
    "fps": float,
    "frame_times": [float],
    "frame_count": int,
    "size": (int, int),
    "original_size": (int, int),
    "sample_rate": int,
    "channels": int,
    "original_sample_rate": int,
    "original_channels": int,
    "source_duration": float,
    "num_samples": int,
    "segments": [(float, float)],
}
_MEDIA_REQUIRED = {"kind", "role", "files", "source_path"}

_GROUP = {"label": str, "box": (int, int, int, int), "points": [(int, int)], "mask": str}
_SEGMENTS = {"label": str, "segments": [(int, int)]}
TARGET: dict[str, Any] = {
    "kind": str,
    "label": str,
    "original_label": str,
    "start": int,
    "end": int,
    "duration": float,
    "events": [{"label": str, "start": float, "end": float}],
    "audio": [_SEGMENTS],
    "visual": [_SEGMENTS],
    "weak": bool,
    "question": str,
    "answer": str,
    "question_type": str,
    "options": [str],
    "answer_index": int,
    "groups": [_GROUP],
    "expression": str,
    "present": bool,
    "box": (int, int, int, int),
    "frame_size": (int, int),
    "caption": str,
    "direction": str,
    "query_label": str,
    "candidate_labels": (str, str),
}
# Target fields that are {label: segments} maps in the contract, lists of {"label", "segments"} on disk.
_TARGET_MAPS = {"audio": ("label", "segments"), "visual": ("label", "segments")}

REASONING_INFO: dict[str, Any] = {
    "kind": str,
    "model": str,
    "prompt_version": str,
    "checked": bool,
    "attempts": int,
    "check_outcome": str,
    "fallback_reason": str,
    "flagged": bool,
    "usage": [{"name": str, "count": int}],
}
_INFO_OPTIONAL = {"model", "prompt_version", "check_outcome", "fallback_reason"}

PROVENANCE: dict[str, Any] = {
    "annotation_file": str,
    "annotation_row": str,
    "annotation_row_type": str,
    "builder": str,
    "builder_version": str,
    "raw_checksums": [{"path": str, "sha256": str}],
}

TEXT_FIELDS = (
    "schema_version",
    "id",
    "key",
    "source",
    "family",
    "split",
    "native_id",
    "instruction",
    "answer",
    "reasoning",
    "response",
    "license",
    "content_hash",
)
SAMPLE: dict[str, Any] = {
    **{name: str for name in TEXT_FIELDS},
    "media": [MEDIA],
    "target": TARGET,
    "reasoning_info": REASONING_INFO,
    "provenance": PROVENANCE,
}


def absent(spec: Any) -> Any:
    """The absent value of a spec: "" / -1 / -1.0 / false, one absent element for a list, absent fields."""
    if isinstance(spec, type):
        return _ABSENT_SCALAR[spec]
    if isinstance(spec, list):
        return [absent(spec[0])]
    if isinstance(spec, tuple):
        return [absent(s) for s in spec]
    return {name: absent(s) for name, s in spec.items()}


def typed(spec: Any, value: Any, where: str) -> Any:
    """`value` written in the spec's types (reals as floats, tuples as lists); raises ValueError on a mismatch."""
    if isinstance(spec, type):
        if spec is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if type(value) is not spec:
            raise ValueError(f"{where}: expected {spec.__name__}, got {value!r}")
        return value
    if isinstance(spec, list | tuple):
        if not isinstance(value, list | tuple) or (isinstance(spec, tuple) and len(value) != len(spec)):
            raise ValueError(f"{where}: expected a list of {len(spec)}, got {value!r}")
        specs = [spec[0]] * len(value) if isinstance(spec, list) else list(spec)
        return [typed(s, v, f"{where}[{i}]") for i, (s, v) in enumerate(zip(specs, value, strict=True))]
    if not isinstance(value, dict) or set(value) != set(spec):
        raise ValueError(f"{where}: expected the fields {sorted(spec)}, got {value!r}")
    return {name: typed(s, value[name], f"{where}.{name}") for name, s in spec.items()}


def _check_keys(d: dict[str, Any], spec: dict[str, Any], where: str) -> None:
    unknown = set(d) - set(spec)
    if unknown:
        raise ValueError(f"{where}: no on-disk field for {sorted(unknown)} (extend schemas/ondisk.py)")


def _optional_out(spec: Any, value: Any, where: str) -> Any:
    """An optional value on disk: absent when None or an empty list, else typed."""
    if value is None or value == []:
        return absent(spec)
    return typed(spec, value, where)


def _map_out(spec: Any, mapping: dict[str, Any], names: tuple[str, str], where: str) -> list[dict[str, Any]]:
    """A {key: value} map on disk: a list of {names[0]: key, names[1]: value} records (absent when empty)."""
    return _optional_out(spec, [{names[0]: k, names[1]: v} for k, v in mapping.items()], where)


def _map_in(records: list[dict[str, Any]], spec: Any, names: tuple[str, str]) -> dict[str, Any]:
    if records == absent(spec):
        return {}
    return {r[names[0]]: r[names[1]] for r in records}


def media_to_disk(item: dict[str, Any]) -> dict[str, Any]:
    """One media item (model_dump form) on disk: every field present, absent values for None."""
    _check_keys(item, MEDIA, "media item")
    return {
        name: typed(spec, item[name], name)
        if name in _MEDIA_REQUIRED
        else _optional_out(spec, item.get(name), name)
        for name, spec in MEDIA.items()
    }


def media_from_disk(item: dict[str, Any]) -> dict[str, Any]:
    """A media item back in its model_dump form (absent values are None again)."""
    return {
        name: item[name] if name in _MEDIA_REQUIRED or item[name] != absent(spec) else None
        for name, spec in MEDIA.items()
    }


def target_to_disk(target: dict[str, Any]) -> dict[str, Any]:
    """A target (model_dump form, any kind) as the one target record: its own fields, absent values elsewhere."""
    _check_keys(target, TARGET, f"{target.get('kind')} target")
    out: dict[str, Any] = {}
    for name, spec in TARGET.items():
        value = target.get(name)
        if value is None:
            out[name] = absent(spec)
        elif name in _TARGET_MAPS:
            out[name] = _map_out(spec, value, _TARGET_MAPS[name], f"target.{name}")
        else:
            out[name] = _optional_out(spec, value, f"target.{name}") if isinstance(spec, list) else value
            out[name] = typed(spec, out[name], f"target.{name}")
    return out


def target_from_disk(record: dict[str, Any]) -> dict[str, Any]:
    """The target of the record's `kind`, in its model_dump form (only that kind's fields)."""
    from .targets import TARGET_TYPES

    kind = record["kind"]
    if kind not in TARGET_TYPES:
        raise ValueError(f"unknown target kind {kind!r}")
    out: dict[str, Any] = {}
    for name in TARGET_TYPES[kind].model_fields:
        value, spec = record[name], TARGET[name]
        if name in _TARGET_MAPS:
            out[name] = _map_in(value, spec, _TARGET_MAPS[name])
        elif isinstance(spec, list) and value == absent(spec):
            out[name] = []
        else:
            out[name] = value
    return out


def _info_to_disk(info: dict[str, Any]) -> dict[str, Any]:
    _check_keys(info, REASONING_INFO, "reasoning_info")
    out = {}
    for name, spec in REASONING_INFO.items():
        if name == "usage":
            out[name] = _map_out(spec, info.get("usage") or {}, ("name", "count"), "reasoning_info.usage")
        elif name in _INFO_OPTIONAL:
            out[name] = _optional_out(spec, info.get(name), f"reasoning_info.{name}")
        else:
            out[name] = typed(spec, info[name], f"reasoning_info.{name}")
    return out


def _info_from_disk(info: dict[str, Any]) -> dict[str, Any]:
    out = {name: info[name] for name in REASONING_INFO}
    out["usage"] = _map_in(info["usage"], REASONING_INFO["usage"], ("name", "count"))
    for name in _INFO_OPTIONAL:
        out[name] = out[name] or None
    return out


def _provenance_to_disk(prov: dict[str, Any]) -> dict[str, Any]:
    _check_keys(prov, {**PROVENANCE, "annotation_row": str}, "provenance")
    row = prov.get("annotation_row")
    kind = "none" if row is None else "int" if isinstance(row, int) and not isinstance(row, bool) else "str"
    out = {name: typed(str, prov[name], f"provenance.{name}") for name in ("annotation_file", "builder")}
    out |= {"annotation_row": "" if row is None else str(row), "annotation_row_type": kind}
    out["builder_version"] = typed(str, prov["builder_version"], "provenance.builder_version")
    checksums = prov.get("raw_checksums") or {}
    out["raw_checksums"] = _map_out(
        PROVENANCE["raw_checksums"], checksums, ("path", "sha256"), "raw_checksums"
    )
    return {name: out[name] for name in PROVENANCE}


def _provenance_from_disk(prov: dict[str, Any]) -> dict[str, Any]:
    text, kind = prov["annotation_row"], prov["annotation_row_type"]
    row: int | str | None = None if kind == "none" else int(text) if kind == "int" else text
    return {
        "annotation_file": prov["annotation_file"],
        "annotation_row": row,
        "builder": prov["builder"],
        "builder_version": prov["builder_version"],
        "raw_checksums": _map_in(prov["raw_checksums"], PROVENANCE["raw_checksums"], ("path", "sha256")),
    }


def to_disk(sample: dict[str, Any]) -> dict[str, Any]:
    """The on-disk JSON (schema_version "2") of a sample given as `Sample.model_dump(mode="json")`.

    Raises ValueError when the sample is not schema_version "2" or holds a field this shape does not know.
    """
    if sample.get("schema_version") != DISK_VERSION:
        raise ValueError(
            f"to_disk writes schema_version {DISK_VERSION!r}, got {sample.get('schema_version')!r}"
        )
    _check_keys(sample, SAMPLE, "sample")
    out: dict[str, Any] = {name: typed(str, sample.get(name, ""), name) for name in TEXT_FIELDS}
    out["media"] = [media_to_disk(m) for m in sample["media"]]
    out["target"] = target_to_disk(sample["target"])
    out["reasoning_info"] = _info_to_disk(sample["reasoning_info"])
    out["provenance"] = _provenance_to_disk(sample["provenance"])
    return {name: out[name] for name in SAMPLE}


def is_disk_shape(data: dict[str, Any]) -> bool:
    """Whether a sample JSON is in this on-disk shape (else it is already a model_dump form: schema_version "1",
    or a "2" sample written by a tool that stored the model_dump form itself)."""
    provenance = data.get("provenance")
    return (
        data.get("schema_version") == DISK_VERSION
        and isinstance(provenance, dict)
        and ("annotation_row_type" in provenance)
    )


def from_disk(data: dict[str, Any]) -> dict[str, Any]:
    """A sample's model_dump(mode="json") form from its on-disk JSON (a model_dump form passes unchanged)."""
    if not is_disk_shape(data):
        return data
    out: dict[str, Any] = {name: data[name] for name in TEXT_FIELDS}
    out["media"] = [media_from_disk(m) for m in data["media"]]
    out["target"] = target_from_disk(data["target"])
    out["reasoning_info"] = _info_from_disk(data["reasoning_info"])
    out["provenance"] = _provenance_from_disk(data["provenance"])
    return out
