"""Hugging Face `datasets` reads a build's shards as they are: `load_dataset("webdataset", data_files=...)` over
every bundled source mixed (all 19), in any shard order, one schema, no torchcodec, nothing downloaded."""

from __future__ import annotations

import glob
import io
import tarfile
import wave
from pathlib import Path

import pytest
from avuie.schemas import Sample
from avuie.schemas.ondisk import from_disk
from avuie.shards.writer import iter_tar_samples
from PIL import Image

datasets = pytest.importorskip("datasets")

SOURCES = 19


@pytest.fixture(scope="module")
def build(bundled_build) -> Path:
    assert len(list(bundled_build.glob("*/stats.json"))) == SOURCES
    return bundled_build


def load(tars: list[str], cache: Path):
    datasets.disable_progress_bars()
    return datasets.load_dataset(
        "webdataset", data_files={"train": tars}, split="train", cache_dir=str(cache)
    )


def logical_samples(build: Path) -> dict[str, tuple[dict, dict[str, bytes]]]:
    found = {}
    for tar in sorted(glob.glob(str(build / "*" / "shards" / "*" / "*.tar"))):
        for key, members in iter_tar_samples(tar):
            sample = Sample.model_validate_json(members.pop("json"))
            found[key] = (sample, members)
    return found


def test_every_source_mixed_loads_with_one_schema_in_any_order(build, tmp_path, offline):
    tars = sorted(glob.glob(str(build / "*" / "shards" / "*" / "*.tar")))
    assert len({Path(t).name.split("-")[0] for t in tars}) == SOURCES
    first = load(tars, tmp_path / "a")
    # the shard that comes first decides what datasets infers: a segmentation shard, then a captioning one
    for lead in ("ms3-", "avcap-"):
        order = sorted(tars, key=lambda t: not Path(t).name.startswith(lead))
        other = load(order, tmp_path / lead)
        assert other.features == first.features and other.num_rows == first.num_rows
    assert set(first.features) == {"json", "frames.jpg", "audio.wave", "masks.tar", "__key__", "__url__"}
    assert isinstance(first.features["frames.jpg"], datasets.Image)
    assert first.features["audio.wave"] == datasets.Value("binary")  # no torchcodec needed to load
    expected = logical_samples(build)
    assert first.num_rows == len(expected)
    assert {row["source"] for row in first["json"]} == {s.source for s, _ in expected.values()}


def test_each_row_reads_back_as_the_same_sample_and_files(build, tmp_path, offline):
    tars = sorted(glob.glob(str(build / "*" / "shards" / "*" / "*.tar")))
    ds = load(tars, tmp_path / "c")
    expected = logical_samples(build)
    for row in ds:
        sample, files = expected[row["__key__"].rsplit("/", 1)[-1]]
        assert Sample.model_validate(from_disk(row["json"])) == sample
        visual = [f for m in sample.media if m.kind in ("video_frames", "image") for f in m.files]
        frames = row["frames.jpg"]
        assert getattr(frames, "n_frames", 1) == len(visual)
        for number in (0, len(visual) - 1):
            frames.seek(number)
            with Image.open(io.BytesIO(files[visual[number]])) as alone:
                assert frames.convert("RGB").tobytes() == alone.convert("RGB").tobytes()
        with wave.open(io.BytesIO(row["audio.wave"])) as audio:
            assert audio.getnframes() == sum(m.num_samples for m in sample.media if m.kind == "audio")
        with tarfile.open(fileobj=io.BytesIO(row["masks.tar"])) as masks:
            names = [f for m in sample.media if m.kind == "mask" for f in m.files]
            assert masks.getnames() == names
            assert all(masks.extractfile(n).read() == files[n] for n in names)


def test_audio_casts_to_the_audio_feature(build, tmp_path, offline):
    tars = sorted(glob.glob(str(build / "v2a" / "shards" / "*" / "*.tar")))
    ds = load(tars, tmp_path / "d")
    raw = ds.cast_column("audio.wave", datasets.Audio(decode=False))
    assert raw[0]["audio.wave"]["bytes"] == ds[0]["audio.wave"]  # decode=False: the WAV bytes, no torchcodec
    try:
        import torchcodec  # noqa: F401
    except (ImportError, OSError, RuntimeError):
        pytest.skip("torchcodec (with FFmpeg's libraries) is not installed: Audio() decoding is not tried")
    decoded = ds.cast_column("audio.wave", datasets.Audio())[0]["audio.wave"]
    sample = from_disk(ds[0]["json"])
    counts = [m["num_samples"] for m in sample["media"] if m["kind"] == "audio"]
    samples = decoded.get_all_samples()
    assert samples.sample_rate == 16000 and samples.data.shape[-1] == sum(counts)  # v2a: both candidates
