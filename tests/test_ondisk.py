"""The on-disk sample (schema_version 2): an Arrow-stable JSON that reads back as the same Sample, and media
containers (MPO frames, one WAV, a tar of masks) that give back every file byte for byte."""

from __future__ import annotations

import io
import json
import wave

import pyarrow as pa
import pytest
from avuie.schemas import TARGET_TYPES, MediaItem, Provenance, ReasoningInfo, Sample
from avuie.schemas.ondisk import (
    MEDIA,
    PROVENANCE,
    REASONING_INFO,
    SAMPLE,
    TARGET,
    absent,
    from_disk,
    media_from_disk,
    media_to_disk,
    target_from_disk,
    target_to_disk,
    to_disk,
)
from avuie.shards.containers import join_jpegs, join_wavs, split_jpegs, split_wavs, tar_files, untar_files
from avuie.shards.members import AUDIO, FRAMES, MASKS, pack, pack_sample, unpack, unpack_sample
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pydantic import ValidationError

from tests.reasoning_kit import jpeg, wav
from tests.targetkit import any_target


def arrow_type(value) -> pa.DataType:
    """The type Arrow infers for one JSON value (as `datasets`' webdataset loader does, one file at a time)."""
    return pa.Table.from_pylist([{"v": json.loads(json.dumps(value))}]).schema.field("v").type


def test_every_field_of_the_contract_has_an_on_disk_spec():
    for kind, model in TARGET_TYPES.items():
        assert set(model.model_fields) <= set(TARGET), kind
    assert set(MediaItem.model_fields) == set(MEDIA)
    assert set(ReasoningInfo.model_fields) == set(REASONING_INFO)
    assert set(Provenance.model_fields) | {"annotation_row_type"} == set(PROVENANCE)
    assert set(Sample.model_fields) == set(SAMPLE)


@settings(max_examples=200, deadline=None)
@given(any_target)
def test_any_target_round_trips_and_infers_one_arrow_type(target):
    dumped = target.model_dump(mode="json")
    disk = target_to_disk(dumped)
    assert target_from_disk(json.loads(json.dumps(disk))) == dumped
    assert type(target).model_validate(target_from_disk(disk)) == target
    # every kind, whatever its lists hold (even none), infers the type an all-absent record infers
    assert arrow_type(disk) == arrow_type(target_to_disk({"kind": "caption", "caption": "x"}))
    assert set(disk) == set(TARGET)


measured = st.one_of(st.none(), st.floats(0, 1e4, allow_nan=False))
counts = st.one_of(st.none(), st.integers(0, 10**7))


@settings(max_examples=200, deadline=None)
@given(
    duration=measured,
    fps=measured,
    frames=st.one_of(st.none(), st.lists(st.floats(0, 100), max_size=4)),
    rate=st.one_of(st.none(), st.integers(1, 96000)),
    num=counts,
    size=st.one_of(st.none(), st.tuples(st.integers(0, 4096), st.integers(0, 4096))),
    segments=st.one_of(st.none(), st.lists(st.tuples(st.floats(0, 10), st.floats(0, 10)), max_size=3)),
)
def test_any_media_item_round_trips_and_infers_one_arrow_type(
    duration, fps, frames, rate, num, size, segments
):
    item = MediaItem(
        kind="audio", role="audio", files=["audio.wav"], duration=duration, fps=fps, frame_times=frames,
        sample_rate=rate, num_samples=num, size=size, segments=segments,
    )  # fmt: skip
    dumped = item.model_dump(mode="json")
    disk = media_to_disk(dumped)
    assert media_from_disk(json.loads(json.dumps(disk))) == dumped
    assert MediaItem.model_validate(media_from_disk(disk)) == item
    bare = media_to_disk(MediaItem(kind="image", role="image", files=["image.jpg"]).model_dump(mode="json"))
    assert arrow_type(disk) == arrow_type(bare)
    assert None not in disk.values() and [] not in disk.values()


def test_absent_values_cannot_be_real_values():
    with pytest.raises(ValidationError, match="must not be negative"):
        MediaItem(kind="audio", role="audio", files=["a.wav"], start=-1.0)
    with pytest.raises(ValidationError, match="must not be negative"):
        MediaItem(kind="image", role="image", files=["i.jpg"], size=(-1, -1))
    assert MediaItem(kind="audio", role="audio", files=["a.wav"], segments=[]).segments is None
    assert ReasoningInfo(model="").model is None
    with pytest.raises(ValidationError, match="need a name"):
        ReasoningInfo(usage={"": 3})
    assert absent([{"label": str, "segments": [(int, int)]}]) == [{"label": "", "segments": [[-1, -1]]}]


def test_annotation_rows_keep_their_type(sample_dict):
    for row in (7, "7", "0Rfx3Oyp7aU", None):
        sample = dict(sample_dict, provenance=dict(sample_dict["provenance"], annotation_row=row))
        disk = to_disk(sample)
        assert isinstance(disk["provenance"]["annotation_row"], str)
        assert from_disk(disk)["provenance"]["annotation_row"] == row


def test_to_disk_refuses_unknown_fields_and_other_versions(sample_dict):
    with pytest.raises(ValueError, match="no on-disk field"):
        to_disk(dict(sample_dict, novel=1))
    with pytest.raises(ValueError, match="schema_version"):
        to_disk(dict(sample_dict, schema_version="1"))
    v1 = dict(sample_dict, schema_version="1")
    assert from_disk(v1) is v1  # the previous shape is already the model_dump form


@pytest.fixture
def sample_dict() -> dict:
    from tests.reasoning_kit import ave_draft

    draft = ave_draft(3, frames=3)
    sample = dict(draft.sample, schema_version="2", reasoning="It is heard and seen.")
    sample |= {
        "response": f"It is heard and seen. {sample['answer']}",
        "reasoning_info": {"kind": "template"},
    }
    return Sample.model_validate(sample).model_dump(mode="json")


# ---------------------------------------------------------------- containers


def test_frames_container_is_a_multi_picture_jpeg_that_keeps_every_frame():
    frames = [jpeg(v) for v in (10, 120, 240)]
    mpo = join_jpegs(frames)
    assert split_jpegs(mpo) == frames
    with Image.open(io.BytesIO(mpo)) as image:
        assert (image.format, image.n_frames) == ("MPO", 3)
        for number, frame in enumerate(frames):
            image.seek(number)
            with Image.open(io.BytesIO(frame)) as alone:
                assert image.convert("RGB").tobytes() == alone.convert("RGB").tobytes()
    assert join_jpegs(frames[:1]) == frames[0] and split_jpegs(frames[0]) == frames[:1]
    with pytest.raises(ValueError, match="already a multi-picture"):
        join_jpegs([mpo, frames[0]])
    with pytest.raises(ValueError, match="not a JPEG"):
        join_jpegs([b"PNG...", frames[0]])
    with pytest.raises(ValueError):
        split_jpegs(mpo[:-100])


def test_audio_container_is_one_wav_that_keeps_every_audio():
    one, two = wav(1.0, freq=300), wav(0.5, freq=900)
    assert join_wavs([one]) == one and split_wavs(one, [None]) == [one]
    joined = join_wavs([one, two])
    with wave.open(io.BytesIO(joined)) as reader:
        assert (reader.getframerate(), reader.getnframes()) == (16000, 24000)
    assert split_wavs(joined, [16000, 8000]) == [one, two]
    with pytest.raises(ValueError, match="cover"):
        split_wavs(joined, [16000, 7000])
    with pytest.raises(ValueError, match="num_samples"):
        split_wavs(joined, [16000, None])
    with pytest.raises(ValueError, match="differ in format"):
        join_wavs([one, wav(0.5, rate=8000)])


def test_masks_container_is_a_tar_even_when_empty():
    files = {"mask_0.png": b"\x89PNG one", "mask_1.png": b"\x89PNG two!"}
    assert untar_files(tar_files(files)) == files
    assert untar_files(tar_files({})) == {} and len(tar_files({})) == 1024


def test_pack_unpack_round_trip_both_layouts(sample_dict):
    files = {name: jpeg(i) for i, name in enumerate(sample_dict["media"][0]["files"])} | {
        "audio.wav": wav(0.2)
    }
    stored = pack_sample(sample_dict, files)
    assert list(stored) == ["json", FRAMES, AUDIO, MASKS]
    assert json.loads(stored["json"]) == to_disk(sample_dict)
    assert unpack_sample(stored) == (sample_dict, files)
    logical = unpack(stored)
    assert json.loads(logical["json"]) == sample_dict and pack(logical) == stored
    v1 = dict(sample_dict, schema_version="1")
    old = pack_sample(v1, files)
    assert set(old) == {"json", *files} and unpack(old) == old
    two = dict(
        sample_dict,
        media=[*sample_dict["media"], dict(sample_dict["media"][1], role="audio_2", files=["a2.wav"])],
    )
    two["media"][1] = dict(two["media"][1], num_samples=3200)
    two["media"][2] = dict(two["media"][2], num_samples=999)  # wrong: the WAV holds 3200
    with pytest.raises(ValueError, match="cover|exactly"):
        pack_sample(two, files | {"a2.wav": wav(0.2)})
    with pytest.raises(ValueError, match="not in its media"):
        pack_sample(sample_dict, files | {"stray.jpg": b"x"})
    with pytest.raises(ValueError, match="holds 2 files"):
        unpack(dict(stored, **{FRAMES: join_jpegs([jpeg(1), jpeg(2)])}))
