"""The three media containers of a schema_version "2" sample, each a standard format that keeps the files' bytes:

- JPEG frames -> one multi-picture JPEG (MPO, CIPA DC-007): the frames' JPEG streams one after another, the first
  carrying an APP2 "MPF" index of where each starts. Any JPEG reader shows the first frame; Pillow opens all of
  them (`n_frames`, `seek(i)`). One frame is stored as it is.
- WAV audio -> one WAV: one audio is stored as it is; several (same format, canonical 44-byte headers) become one
  WAV whose data is theirs one after another (the sample's media say how many samples each holds).
- PNG masks -> one uncompressed ustar of the files under their names (an empty tar when there is none).

Every `*_plan` function says, from a container's first bytes, where each file's bytes lie: a list per file of
(prefix bytes, [(offset, size), ...] pieces), so a reader can fetch one file by byte range. `split_*` return the
files' original bytes exactly; `join_*` refuse input they could not give back exactly (ValueError).
"""

from __future__ import annotations

import io
import struct
import tarfile

Plan = list[tuple[bytes, list[tuple[int, int]]]]

_SOI, _APP2, _SOS = b"\xff\xd8", 0xE2, 0xDA
_MPF = b"MPF\x00"
# MP Index IFD: 3 entries (version, number of images, entries) + next-IFD offset, after an 8-byte TIFF header
_IFD_BYTES = 2 + 3 * 12 + 4
_MPO_HEAD_READ = 1 << 17  # the APP2 index lies in the first frame's header segments (each < 64 KiB)


def _segments(jpeg: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each header segment from SOI up to SOS; raises ValueError if not a JPEG."""
    if jpeg[:2] != _SOI:
        raise ValueError("not a JPEG stream (no SOI marker)")
    out, at = [], 2
    while at + 4 <= len(jpeg):
        if jpeg[at] != 0xFF:
            raise ValueError(f"JPEG marker expected at byte {at}")
        marker = jpeg[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        (length,) = struct.unpack(">H", jpeg[at + 2 : at + 4])
        out.append((marker, at, at + 2 + length))
        if marker == _SOS:
            break
        at += 2 + length
    return out


def _mpf_segment(jpeg: bytes) -> tuple[int, int] | None:
    """(start, end) of the APP2 "MPF" segment among a JPEG's header segments, or None."""
    for marker, start, end in _segments(jpeg):
        if marker == _APP2 and jpeg[start + 4 : start + 8] == _MPF:
            return start, end
    return None


def join_jpegs(frames: list[bytes]) -> bytes:
    """One MPO of the JPEG frames (one frame: the frame itself). Raises ValueError on a non-JPEG or an MPO input."""
    if not frames:
        raise ValueError("join_jpegs needs at least one frame")
    for number, frame in enumerate(frames):
        if _mpf_segment(frame) is not None:
            raise ValueError(f"frame {number} is already a multi-picture JPEG")
    if len(frames) == 1:
        return frames[0]
    first = frames[0]
    insert = max([end for marker, _, end in _segments(first) if marker in (0xE0, 0xE1)], default=2)
    length = 2 + len(_MPF) + 8 + _IFD_BYTES + 16 * len(frames)
    app2_size = 2 + length
    base = insert + 4 + len(_MPF)  # where the TIFF header starts: offsets count from here
    sizes = [len(first) + app2_size] + [len(f) for f in frames[1:]]
    starts = [sum(sizes[:number]) for number in range(len(sizes))]  # frame 0 (with the index) starts at 0
    entries = b"".join(
        struct.pack(
            "<LLLHH", 0x20030000 if number == 0 else 0, size, starts[number] - base if number else 0, 0, 0
        )
        for number, size in enumerate(sizes)
    )  # attribute: representative baseline MP primary image, then undefined; offsets from the TIFF header
    ifd = struct.pack("<H", 3)
    ifd += struct.pack("<HHL4s", 0xB000, 7, 4, b"0100")
    ifd += struct.pack("<HHLL", 0xB001, 4, 1, len(frames))
    ifd += struct.pack("<HHLL", 0xB002, 7, 16 * len(frames), 8 + _IFD_BYTES)
    ifd += struct.pack("<L", 0)
    app2 = b"\xff\xe2" + struct.pack(">H", length) + _MPF + b"II*\x00" + struct.pack("<L", 8) + ifd + entries
    assert len(app2) == app2_size
    return first[:insert] + app2 + first[insert:] + b"".join(frames[1:])


def jpeg_plan(head: bytes, total: int) -> Plan:
    """Where each frame of a frames container lies, from its first bytes (`head`) and its size `total`."""
    found = _mpf_segment(head)
    if found is None:
        return [(b"", [(0, total)])]
    start, end = found
    base = start + 4 + len(_MPF)
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(head[base : base + 4])
    if order is None:
        raise ValueError("MPF index has no TIFF header")
    (ifd,) = struct.unpack(order + "L", head[base + 4 : base + 8])
    (count,) = struct.unpack(order + "H", head[base + ifd : base + ifd + 2])
    tags = {}
    for i in range(count):
        at = base + ifd + 2 + 12 * i
        tag, _, n, value = struct.unpack(order + "HHLL", head[at : at + 12])
        tags[tag] = (n, value)
    if 0xB001 not in tags or 0xB002 not in tags:
        raise ValueError("MPF index without its image count or entries")
    frames = tags[0xB001][1]
    plan: Plan = []
    for number in range(frames):
        at = base + tags[0xB002][1] + 16 * number
        _, size, offset, _, _ = struct.unpack(order + "LLLHH", head[at : at + 16])
        if number == 0:
            plan.append((b"", [(0, start), (end, size - end)]))
        else:
            plan.append((b"", [(base + offset, size)]))
    if sum(s for _, pieces in plan for _, s in pieces) + (end - start) != total:
        raise ValueError("MPF index does not cover the container exactly")
    return plan


def _take(blob: bytes, plan: Plan) -> list[bytes]:
    out = []
    for prefix, pieces in plan:
        if any(o < 0 or s < 0 or o + s > len(blob) for o, s in pieces):
            raise ValueError("a file lies outside its container")
        out.append(prefix + b"".join(blob[o : o + s] for o, s in pieces))
    return out


def split_jpegs(blob: bytes) -> list[bytes]:
    """The original JPEG frames of a frames container."""
    frames = _take(blob, jpeg_plan(blob[:_MPO_HEAD_READ], len(blob)))
    if any(f[:2] != _SOI for f in frames):
        raise ValueError("a frame of the container is not a JPEG stream")
    return frames


_WAV_HEADER = 44


def _wav_fields(wav: bytes, total: int | None = None) -> tuple[int, int, int, int]:
    """(format tag, channels, rate, bits) of a canonical 44-byte-header WAV (`wav` may be its first bytes when
    `total` is its size); raises ValueError otherwise."""
    total = len(wav) if total is None else total
    if (
        total < _WAV_HEADER
        or len(wav) < _WAV_HEADER
        or wav[:4] != b"RIFF"
        or wav[8:16] != b"WAVEfmt "
        or wav[36:40] != b"data"
    ):
        raise ValueError("not a canonical WAV (RIFF, WAVE, a 16-byte fmt chunk, then data)")
    fmt, channels, rate, _, _, bits = struct.unpack("<HHLLHH", wav[20:36])
    (size,) = struct.unpack("<L", wav[16:20])
    (data,) = struct.unpack("<L", wav[40:44])
    if size != 16 or data != total - _WAV_HEADER or struct.unpack("<L", wav[4:8])[0] != total - 8:
        raise ValueError("not a canonical WAV (chunk sizes differ from the file)")
    return fmt, channels, rate, bits


def _wav_header(fields: tuple[int, int, int, int], data: int) -> bytes:
    fmt, channels, rate, bits = fields
    block = channels * bits // 8
    return (
        b"RIFF" + struct.pack("<L", 36 + data) + b"WAVEfmt "
        + struct.pack("<LHHLLHH", 16, fmt, channels, rate, rate * block, block, bits)
        + b"data" + struct.pack("<L", data)
    )  # fmt: skip


def join_wavs(wavs: list[bytes]) -> bytes:
    """One WAV of the audio files (one file: itself). Several must be canonical WAVs of one format."""
    if not wavs:
        raise ValueError("join_wavs needs at least one WAV")
    if len(wavs) == 1:
        return wavs[0]
    fields = {_wav_fields(w) for w in wavs}
    if len(fields) != 1:
        raise ValueError("the audio files differ in format")
    one = fields.pop()
    if any((len(w) - _WAV_HEADER) % (one[1] * one[3] // 8) for w in wavs):
        raise ValueError("an audio file ends inside a sample frame")
    return _wav_header(one, sum(len(w) - _WAV_HEADER for w in wavs)) + b"".join(w[_WAV_HEADER:] for w in wavs)


def wav_plan(head: bytes, total: int, counts: list[int | None]) -> Plan:
    """Where each audio of an audio container lies: `counts` are their sample frames (media `num_samples`)."""
    if len(counts) == 1:
        return [(b"", [(0, total)])]
    if None in counts:
        raise ValueError("several audios in one WAV need each one's num_samples")
    fields = _wav_fields(head[:_WAV_HEADER], total)
    block = fields[1] * fields[3] // 8
    plan: Plan = []
    at = _WAV_HEADER
    for count in counts:
        size = int(count) * block  # type: ignore[arg-type]
        plan.append((_wav_header(fields, size), [(at, size)]))
        at += size
    if at != total:
        raise ValueError(f"the audio counts cover {at} of {total} bytes")
    return plan


def split_wavs(blob: bytes, counts: list[int | None]) -> list[bytes]:
    """The original WAV files of an audio container."""
    return _take(blob, wav_plan(blob[:_WAV_HEADER], len(blob), counts))


def tar_files(files: dict[str, bytes]) -> bytes:
    """An uncompressed ustar of the files (mtime 0, no owner), ended by two zero blocks and no record padding."""
    out = io.BytesIO()
    for name, data in files.items():
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        out.write(info.tobuf(format=tarfile.USTAR_FORMAT))
        out.write(data + b"\0" * (-len(data) % tarfile.BLOCKSIZE))
    out.write(b"\0" * 2 * tarfile.BLOCKSIZE)
    return out.getvalue()


def tar_plan(blob: bytes) -> dict[str, tuple[int, int]]:
    """{name: (offset, size)} of the files of a tar container."""
    found: dict[str, tuple[int, int]] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:") as tar:
            for info in tar:
                if info.isfile():
                    found[info.name] = (info.offset_data, info.size)
    except tarfile.TarError as error:
        raise ValueError(f"not a tar of files: {error}") from error
    return found


def untar_files(blob: bytes) -> dict[str, bytes]:
    """The files of a tar container, by name."""
    return {name: blob[o : o + s] for name, (o, s) in tar_plan(blob).items()}
