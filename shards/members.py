"""The tar members of a sample: the same four in every sample of schema_version "2", so that any WebDataset reader
(Hugging Face `datasets` included) sees one set of columns across every source and family.

| member | format | holds |
|---|---|---|
| `<key>.json` | JSON (schemas/ondisk.py) | the sample, in its Arrow-stable on-disk shape |
| `<key>.frames.jpg` | JPEG; a multi-picture JPEG (MPO) when there are several | every video frame and still image, in media order |
| `<key>.audio.wave` | WAV, 16-bit PCM | every audio, in media order (several: their samples one after another) |
| `<key>.masks.tar` | ustar of PNG files | every mask under its file name (`mask_0.png`...); empty tar when none |

Inside avuie a sample's members are always seen *logically*, as schema_version "1" wrote them: `json` (the
`Sample.model_dump(mode="json")` form) and one member per media file named by `MediaItem.files`
(`frame_00.jpg`, `audio.wav`, `mask_0.png`...). `pack` turns the logical members into the stored ones, `unpack`
gives them back byte for byte; `plan` says where each logical file lies inside the stored members, for readers that
fetch one file by byte range. A schema_version "1" sample is stored logically, so both pass it through.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from avuie.schemas.ondisk import DISK_VERSION, from_disk, is_disk_shape, to_disk
from avuie.shards.containers import (
    join_jpegs,
    join_wavs,
    jpeg_plan,
    split_jpegs,
    split_wavs,
    tar_files,
    tar_plan,
    untar_files,
    wav_plan,
)

FRAMES, AUDIO, MASKS = "frames.jpg", "audio.wave", "masks.tar"
PACKED = ("json", FRAMES, AUDIO, MASKS)
CONTAINER = {"video_frames": FRAMES, "image": FRAMES, "audio": AUDIO, "mask": MASKS}


def _names(sample: dict[str, Any]) -> dict[str, list[str]]:
    """The logical file names of each container, in media order."""
    names: dict[str, list[str]] = {FRAMES: [], AUDIO: [], MASKS: []}
    for item in sample["media"]:
        names[CONTAINER[item["kind"]]].extend(item["files"])
    return names


def _audio_counts(sample: dict[str, Any]) -> list[int | None]:
    return [item.get("num_samples") for item in sample["media"] if item["kind"] == "audio"]


def dump_json(sample: dict[str, Any]) -> bytes:
    """The JSON bytes of a sample dict (UTF-8, as the builder writes them)."""
    return json.dumps(sample, ensure_ascii=False).encode()


def pack_sample(sample: dict[str, Any], files: dict[str, bytes]) -> dict[str, bytes]:
    """The stored members of a sample given as `Sample.model_dump(mode="json")` and its {file name: bytes}.

    A schema_version "1" sample keeps one member per file. Raises ValueError when a file the media list is
    missing, a file is not listed, or a container cannot hold a file exactly.
    """
    if sample.get("schema_version") != DISK_VERSION:
        return {"json": dump_json(sample), **{name: files[name] for name in _listed(sample, files)}}
    names = _names(sample)
    _listed(sample, files)
    stored = {
        "json": dump_json(to_disk(sample)),
        FRAMES: join_jpegs([files[n] for n in names[FRAMES]]),
        AUDIO: join_wavs([files[n] for n in names[AUDIO]]),
        MASKS: tar_files({n: files[n] for n in names[MASKS]}),
    }
    for container in (
        FRAMES,
        AUDIO,
        MASKS,
    ):  # what is written must read back exactly (e.g. num_samples right)
        if container_files(sample, container, stored[container]) != {n: files[n] for n in names[container]}:
            raise ValueError(f"sample {sample.get('id')}: {container} would not give its files back exactly")
    return stored


def _listed(sample: dict[str, Any], files: dict[str, bytes]) -> list[str]:
    listed = [name for item in sample["media"] for name in item["files"]]
    missing = [n for n in listed if n not in files]
    extra = sorted(set(files) - set(listed))
    if missing or extra:
        raise ValueError(f"sample {sample.get('id')}: files missing {missing}, not in its media {extra}")
    return listed


def pack(members: dict[str, bytes]) -> dict[str, bytes]:
    """The stored members of a sample's logical members ({"json": model_dump JSON, file name: bytes...})."""
    files = {name: data for name, data in members.items() if name != "json"}
    return pack_sample(json.loads(members["json"]), files)


def is_packed(members: dict[str, Any]) -> bool:
    """Whether stored members are the schema_version "2" containers (else one member per file)."""
    return FRAMES in members or AUDIO in members or MASKS in members


def unpack_sample(members: dict[str, bytes]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(sample as model_dump form, {file name: bytes}) of a sample's stored members (either layout).

    Raises ValueError when the JSON is unreadable or a container does not hold the files its media list.
    """
    if "json" not in members:
        raise ValueError("the sample has no json member")
    try:
        stored = json.loads(members["json"])
    except ValueError as error:
        raise ValueError(f"unreadable sample JSON: {error}") from error
    if not is_packed(members):
        return stored, {name: data for name, data in members.items() if name != "json"}
    missing = [m for m in PACKED if m not in members]
    if missing or not is_disk_shape(stored):
        raise ValueError(
            f"a packed sample needs {list(PACKED)} and its schema_version 2 JSON (missing {missing})"
        )
    sample = from_disk(stored)
    files: dict[str, bytes] = {}
    for container in (FRAMES, AUDIO, MASKS):
        files |= container_files(sample, container, members[container])
    return sample, {name: files[name] for item in sample["media"] for name in item["files"]}


def container_of(sample: dict[str, Any], name: str) -> str | None:
    """The stored member that holds logical file `name` of a packed sample (None when no medium lists it)."""
    for item in sample["media"]:
        if name in item["files"]:
            return CONTAINER[item["kind"]]
    return None


def container_files(sample: dict[str, Any], container: str, data: bytes) -> dict[str, bytes]:
    """{file name: bytes} held by one stored container of a packed sample (model_dump form `sample`).

    Raises ValueError when the container does not hold exactly the files the sample's media list.
    """
    names = _names(sample)[container]
    if container == MASKS:
        found = untar_files(data)
        if set(found) != set(names):
            raise ValueError(
                f"sample {sample.get('id')}: {MASKS} holds {sorted(found)}, its media list {names}"
            )
        return found
    got = split_jpegs(data) if container == FRAMES else split_wavs(data, _audio_counts(sample))
    if len(got) != len(names):
        raise ValueError(
            f"sample {sample.get('id')}: {container} holds {len(got)} files, its media list {names}"
        )
    return dict(zip(names, got, strict=True))


def unpack(members: dict[str, bytes]) -> dict[str, bytes]:
    """The logical members ({"json": model_dump JSON bytes, file name: bytes...}) of a sample's stored members."""
    if not is_packed(members):
        return dict(members)
    sample, files = unpack_sample(members)
    return {"json": dump_json(sample), **files}


def read_sample(data: bytes) -> dict[str, Any]:
    """A sample's model_dump form from its stored JSON member (either schema_version)."""
    return from_disk(json.loads(data))


Reader = Callable[[int, int], bytes]  # (offset, size) -> bytes
FilePlan = tuple[bytes, list[tuple[int, int]]]  # a file's bytes: prefix + the pieces (offset, size) in order


def plan(sample: dict[str, Any], stored: dict[str, tuple[int, int]], read: Reader) -> dict[str, FilePlan]:
    """Where each logical file of a sample lies: {file name: (prefix, [(offset, size)...])} with offsets into the
    tar, from the stored members' (offset, size) and `read(offset, size)` for the containers' index bytes.

    `sample` is the model_dump form (`read_sample`). One-member-per-file samples map each file to its member.
    """
    if not is_packed(stored):
        return {name: (b"", [span]) for name, span in stored.items() if name != "json"}
    names = _names(sample)
    out: dict[str, FilePlan] = {}
    for container, file_plan in (
        (FRAMES, lambda o, s: jpeg_plan(read(o, min(s, 1 << 17)), s)),
        (AUDIO, lambda o, s: wav_plan(read(o, min(s, 44)), s, _audio_counts(sample))),
    ):
        offset, size = stored[container]
        found = file_plan(offset, size)
        if len(found) != len(names[container]):
            raise ValueError(f"{container} holds {len(found)} files, the media list {len(names[container])}")
        for name, (prefix, pieces) in zip(names[container], found, strict=True):
            out[name] = (prefix, [(offset + o, s) for o, s in pieces])
    offset, size = stored[MASKS]
    for name, (o, s) in tar_plan(read(offset, size)).items():
        out[name] = (b"", [(offset + o, s)])
    return out
