"""Tests for avuie.media (real ffmpeg on media synthesized by avuie.media.synth, and the real sample files)."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avuie.media import ffmpeg, images, info, synth
from avuie.media.ffmpeg import MediaError
from tests.conftest import REAL

AVE_MP4 = REAL / "ave/AVE_Dataset/AVE/-67UNKFmRLk.mp4"
LLP_MP4 = REAL / "llp/data/LLP_dataset/video/6aV6c8mY0lg.mp4"
SEMANTIC = REAL / "avsbench/semantic"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Synthesize every input once per module (small sizes keep it fast)."""
    d = tmp_path_factory.mktemp("media")
    return {
        "counter": synth.make_video(d / "counter.mp4", pattern="counter", fps=10, size=(64, 64)),
        "counter_fast": synth.make_video(
            d / "counter_fast.mp4", pattern="counter", fps=10, size=(64, 64), faststart=True
        ),
        "avi": synth.make_video(d / "clip.avi", duration=3, size=(96, 64)),
        "flv": synth.make_video(d / "clip.flv", duration=3, size=(96, 64)),
        "mkv": synth.make_video(d / "clip.mkv", duration=3, size=(96, 64), fps=30),
        "silent": synth.make_video(d / "silent.mp4", duration=3, size=(96, 64), audio=False),
        "wav": synth.make_audio(d / "tone.wav", duration=5, sample_rate=22050, channels=2),
        "mp3": synth.make_audio(d / "tone.mp3", duration=5),
        "flac": synth.make_audio(d / "tone.flac", duration=5, sample_rate=48000),
    }


def _wav(data: bytes) -> tuple[int, int, int, int]:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnchannels(), w.getframerate(), w.getsampwidth(), w.getnframes()


def _frame_number(jpeg: bytes) -> float:
    """Decode a 'counter' frame: JPEG is full range, the source luma was limited range."""
    luma = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), dtype=float).mean()
    return synth.counter_frame_index(luma * 219 / 255 + 16)


# ---------------------------------------------------------------- extract_clip


def test_clip_frames_are_the_uniformly_spaced_ones(files):
    clip = ffmpeg.extract_clip(files["counter"], start=2.0, duration=5.0, num_frames=10)
    assert len(clip.frames) == 10
    assert all(Image.open(io.BytesIO(f)).size == (224, 224) for f in clip.frames)
    assert all(Image.open(io.BytesIO(f)).format == "JPEG" for f in clip.frames)
    assert clip.frame_times == pytest.approx([2.25 + 0.5 * i for i in range(10)])
    # frame i is the picture on screen at its time (10 fps source: frame floor(t * 10))
    got = [_frame_number(f) for f in clip.frames]
    want = [int(t * 10) for t in clip.frame_times]
    assert np.abs(np.array(got) - np.array(want)).max() < 0.5, (got, want)
    assert (clip.duration, clip.source_duration, clip.fps, clip.original_size) == (5.0, 10.0, 10.0, (64, 64))


def test_clip_audio_is_16k_mono_pcm_of_the_cut(files):
    clip = ffmpeg.extract_clip(files["counter"], start=1.0, duration=3.0)
    channels, rate, width, n = _wav(clip.audio)
    assert (channels, rate, width) == (1, 16000, 2)
    assert n == clip.audio_num_samples == 48000
    assert abs(n / rate - 3.0) < 0.05
    samples = np.frombuffer(clip.audio[44:], dtype="<i2")
    assert np.abs(samples[1000:-1000]).max() > 1000  # the tone is there, not padded silence


def test_late_audio_stays_aligned(tmp_path):
    path = synth.make_video(tmp_path / "late.mp4", duration=4, size=(64, 48), audio_offset=1.0)
    clip = ffmpeg.extract_clip(path, start=0.5, duration=3.0, num_frames=2)
    samples = np.frombuffer(clip.audio[44:], dtype="<i2")
    assert len(samples) == 48000
    assert (
        abs(np.nonzero(np.abs(samples) > 1000)[0][0] / 16000 - 0.5) < 0.05
    )  # silence until the audio starts


def test_clip_bytes_are_deterministic(files):
    a = ffmpeg.extract_clip(files["counter"], start=0.5, duration=4.0, num_frames=4)
    b = ffmpeg.extract_clip(files["counter"], start=0.5, duration=4.0, num_frames=4)
    assert a.frames == b.frames and a.audio == b.audio
    assert b"LIST" not in a.audio[:64]  # no encoder metadata in the WAV header


def test_synth_is_deterministic(tmp_path):
    one = synth.make_video(tmp_path / "a.mp4", duration=1, size=(64, 48)).read_bytes()
    two = synth.make_video(tmp_path / "b.mp4", duration=1, size=(64, 48)).read_bytes()
    assert one == two


def _count_runs(monkeypatch) -> list[list[str]]:
    """Record every process avuie.media.ffmpeg starts (the real runner still runs them)."""
    calls: list[list[str]] = []
    real_runner = ffmpeg.run_ffmpeg

    def counting_runner(args, timeout=None):
        calls.append(args)
        return real_runner(args, timeout)

    monkeypatch.setattr(ffmpeg, "run_ffmpeg", counting_runner)
    return calls


@pytest.mark.parametrize("num_frames", [1, 4, 16])
def test_one_ffmpeg_process_per_clip(files, monkeypatch, tmp_path, num_frames):
    calls = _count_runs(monkeypatch)
    info = ffmpeg.probe(files["counter"])
    calls.clear()
    given = ffmpeg.extract_clip(files["counter"], duration=6.0, num_frames=num_frames, info=info)
    assert len(given.frames) == num_frames and len(calls) == 1
    calls.clear()  # no header given: it comes out of the cut's own run, no separate process
    clip = ffmpeg.extract_clip(files["counter"], duration=6.0, num_frames=num_frames)
    assert len(calls) == 1 and "-i" in calls[0]
    assert (clip.frames, clip.audio, clip.frame_times) == (given.frames, given.audio, given.frame_times)
    assert (clip.source_duration, clip.fps, clip.original_size) == (10.0, 10.0, (64, 64))
    calls.clear()  # to the end: the header is read once per file, then the cut
    fresh = tmp_path / "fresh.mp4"
    fresh.write_bytes(files["counter"].read_bytes())
    whole = ffmpeg.extract_clip(fresh, num_frames=num_frames)
    assert len(calls) == 2 and whole.duration == 10.0
    calls.clear()
    ffmpeg.extract_clip(fresh, num_frames=num_frames)
    assert len(calls) == 1


def test_a_clamped_cut_runs_twice_with_the_header_of_the_first(files, monkeypatch):
    calls = _count_runs(monkeypatch)
    clip = ffmpeg.extract_clip(files["counter"], start=8.0, duration=5.0, num_frames=4)
    assert len(calls) == 2 and clip.clamped
    calls.clear()
    audio = ffmpeg.extract_audio(files["wav"], start=1.0, duration=1.5)
    assert len(calls) == 1 and audio.original_sample_rate == 22050


def test_a_file_a_little_short_keeps_its_single_run(tmp_path, monkeypatch):
    """A 9.96 s file cut as a 10 s window (as real 10 s clips often are) is not cut twice: the frames keep
    their times over the 10 s asked, the audio and the duration are the 9.96 s the file holds."""
    path = synth.make_video(tmp_path / "short.mp4", duration=9.96, size=(64, 48), fps=25)
    calls = _count_runs(monkeypatch)
    clip = ffmpeg.extract_clip(path, duration=10.0, num_frames=10)
    assert len(calls) == 1 and clip.clamped and clip.duration == clip.source_duration == 9.96
    assert clip.frame_times == pytest.approx([0.5 + i for i in range(10)])
    assert clip.audio_num_samples == _wav(clip.audio)[3] == round(9.96 * 16000)
    calls.clear()
    audio = ffmpeg.extract_audio(path, start=9.0, duration=1.0)
    assert len(calls) == 1 and audio.num_samples == _wav(audio.wav)[3] == round(0.96 * 16000)


@pytest.mark.parametrize("with_info", [False, True])
def test_seeking_to_each_frame_keeps_the_same_pictures(files, monkeypatch, with_info):
    """Frames 3.3 s apart are cut by seeking to each (one input per frame), and they are the very pictures
    one pass over the whole cut keeps: the same frame numbers, the same JPEG bytes, the same audio."""
    from avuie.media import graph

    info = ffmpeg.probe(files["counter"]) if with_info else None
    kwargs = {"start": 0.0, "duration": 10.0, "num_frames": 3, "info": info}
    assert graph.use_seek(10.0, 3)
    calls = _count_runs(monkeypatch)
    seeked = ffmpeg.extract_clip(files["counter"], **kwargs)
    assert len(calls) == 1 and calls[0].count("-i") == 4  # three frame inputs and the audio's
    monkeypatch.setattr(graph, "SEEK_MIN_SPACING_S", 1e9)
    calls.clear()
    one_pass = ffmpeg.extract_clip(files["counter"], **kwargs)
    assert calls[0].count("-i") == 1
    assert [round(_frame_number(f)) for f in seeked.frames] == [16, 50, 83]
    assert seeked.frames == one_pass.frames and seeked.audio == one_pass.audio
    assert seeked.frame_times == one_pass.frame_times == pytest.approx([5 / 3, 5.0, 25 / 3])


def test_clip_past_the_end_is_clamped(files):
    clip = ffmpeg.extract_clip(files["counter"], start=8.0, duration=5.0, num_frames=4)
    assert clip.clamped and clip.duration == pytest.approx(2.0)
    assert len(clip.frames) == 4 and clip.audio_num_samples == 32000
    assert clip.frame_times == pytest.approx([8.25, 8.75, 9.25, 9.75])


@pytest.mark.parametrize("key", ["avi", "flv", "mkv"])
def test_clip_from_other_containers(files, key):
    clip = ffmpeg.extract_clip(files[key], num_frames=4)
    assert len(clip.frames) == 4 and clip.original_size == (96, 64)
    assert _wav(clip.audio)[:2] == (1, 16000)


def test_silent_video_without_required_audio(files):
    clip = ffmpeg.extract_clip(files["silent"], num_frames=3, require_audio=False)
    assert clip.audio is None and len(clip.frames) == 3 and clip.audio_num_samples == 0


# ---------------------------------------------------------------- bad inputs


def _bad_input(kind: str, files, tmp_path: Path) -> Path:
    if kind == "missing":
        return tmp_path / "nope.mp4"
    if kind == "empty":
        (tmp_path / "empty.mp4").write_bytes(b"")
        return tmp_path / "empty.mp4"
    if kind == "garbage":
        (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
        return tmp_path / "garbage.mp4"
    if kind in ("truncated", "truncated_faststart"):
        src = files["counter" if kind == "truncated" else "counter_fast"]
        target = tmp_path / f"{kind}.mp4"
        target.write_bytes(src.read_bytes())
        synth.truncate_file(target, 0.5)
        return target
    return files[kind]


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("missing", "missing_file"),
        ("empty", "empty_file"),
        ("garbage", "corrupt_media"),
        ("truncated", "corrupt_media"),
        ("truncated_faststart", "corrupt_media"),
        ("silent", "no_audio_stream"),
        ("mp3", "no_video_stream"),
    ],
)
def test_bad_inputs_raise_the_specific_reason(files, tmp_path, kind, reason):
    with pytest.raises(MediaError) as err:
        ffmpeg.extract_clip(_bad_input(kind, files, tmp_path))
    assert err.value.reason == reason and err.value.detail


def test_too_short(files):
    with pytest.raises(MediaError) as err:
        ffmpeg.extract_clip(files["counter"], start=9.95, duration=2.0)
    assert err.value.reason == "too_short"
    with pytest.raises(MediaError) as err:
        ffmpeg.extract_audio(files["wav"], start=7.0)
    assert err.value.reason == "too_short"


def test_unknown_reason_is_refused():
    with pytest.raises(ValueError):
        MediaError("oops", "not a reason")


# ---------------------------------------------------------------- probe


@pytest.mark.parametrize("key", ["counter", "avi", "flv", "mkv", "silent", "wav", "mp3", "flac"])
def test_probe_without_ffprobe(files, monkeypatch, key):
    monkeypatch.setattr(ffmpeg, "ffprobe_exe", lambda: None)
    info = ffmpeg.probe(files[key])
    video = key not in ("wav", "mp3", "flac")
    assert info.has_video is video and info.has_audio is (key != "silent")
    if video:
        assert info.fps == {"counter": 10.0, "mkv": 30.0}.get(key, 25.0)
        assert (info.width, info.height) == ((64, 64) if key == "counter" else (96, 64))
    if key == "wav":
        assert (info.audio_sample_rate, info.audio_channels, info.audio_codec) == (22050, 2, "pcm_s16le")
    # an mp3 is whole 1,152-sample frames plus the encoder's padding: its length varies by ffmpeg release
    slack = 0.1 if key == "mp3" else 0.05
    assert info.duration == pytest.approx(10.0 if key == "counter" else 5.0 if not video else 3.0, abs=slack)


def test_header_parsers_agree():
    header = (
        "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':\n  Duration: 00:01:02.345, start: 0.000000\n"
        "  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), "
        "1280x720 [SAR 1:1 DAR 16:9], 1000 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)\n"
        "  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, 5.1(side), fltp, 384 kb/s\n"
    )
    ffprobe = {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "62.345000"},
        "streams": [
            {
                "codec_type": "video",
                "codec_name": "h264",
                "width": 1280,
                "height": 720,
                "avg_frame_rate": "30000/1001",
            },
            {"codec_type": "audio", "codec_name": "aac", "sample_rate": "48000", "channels": 6},
        ],
    }
    a, b = info.parse_ffmpeg_header(header), info.parse_ffprobe_json(json.dumps(ffprobe))
    assert a == b
    assert (a.duration, a.fps, a.width, a.audio_channels) == (62.35, 29.97, 1280, 6)
    assert info.parse_ffmpeg_header("garbage") is None


# ---------------------------------------------------------------- audio


@pytest.mark.parametrize(
    "key, rate, channels", [("wav", 22050, 2), ("mp3", 16000, 1), ("flac", 48000, 1), ("flv", 44100, 2)]
)
def test_extract_audio(files, key, rate, channels):
    cut = ffmpeg.extract_audio(files[key], start=1.0, duration=1.5)
    assert _wav(cut.wav) == (1, 16000, 2, 24000) and cut.num_samples == 24000
    assert (cut.original_sample_rate, cut.original_channels) == (rate, channels)
    whole = ffmpeg.extract_audio(files[key])
    assert abs(whole.duration - whole.source_duration) < 1e-6
    assert abs(whole.num_samples / 16000 - (5.0 if key != "flv" else 3.0)) < (0.1 if key == "mp3" else 0.05)


def test_extract_audio_needs_an_audio_stream(files):
    with pytest.raises(MediaError) as err:
        ffmpeg.extract_audio(files["silent"])
    assert err.value.reason == "no_audio_stream"


# ---------------------------------------------------------------- images, masks, geometry


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_load_image(tmp_path, suffix):
    path = synth.make_image(tmp_path / f"f{suffix}", size=(320, 200), seed=3)
    data, original = images.load_image(path)
    assert original == (320, 200) and Image.open(io.BytesIO(data)).size == (224, 224)
    assert images.load_image(path)[0] == data


def test_load_image_errors(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not a picture at all")
    for path, reason in [(tmp_path / "bad.jpg", "corrupt_media"), (tmp_path / "none.jpg", "missing_file")]:
        with pytest.raises(MediaError) as err:
            images.load_image(path)
        assert err.value.reason == reason


def test_load_mask_modes(tmp_path):
    shapes = [("rect", (10, 5, 29, 14))]
    grey = images.load_mask(synth.make_mask(tmp_path / "l.png", (40, 20), shapes, value=45))
    assert grey.shape == (20, 40) and set(np.unique(grey)) == {0, 45} and (grey == 45).sum() == 20 * 10
    binary = images.load_mask(synth.make_mask(tmp_path / "b.png", (40, 20), shapes, mode="1"))
    assert set(np.unique(binary)) == {0, 255} and (binary == 255).sum() == 200
    rgb = images.load_mask(
        synth.make_mask(tmp_path / "c.png", (40, 20), shapes, value=(64, 128, 128), mode="RGB")
    )
    assert rgb.shape == (20, 40, 3) and tuple(rgb[10, 20]) == (64, 128, 128)


def test_resize_and_encode_mask():
    mask = np.zeros((100, 200), dtype=bool)
    mask[20:60, 50:150] = True
    small = images.resize_mask(mask, (224, 224))
    assert small.shape == (224, 224) and small.dtype == bool
    assert abs(small.mean() - mask.mean()) < 0.01
    png = images.encode_mask_png(small)
    img = Image.open(io.BytesIO(png))
    assert img.mode == "L" and set(np.unique(np.asarray(img))) <= {0, 255}
    assert np.array_equal(np.asarray(img) > 0, small) and images.encode_mask_png(small) == png


def _ellipse_mask() -> np.ndarray:
    yy, xx = np.mgrid[0:224, 0:224]
    return ((xx - 120) / 80.0) ** 2 + ((yy - 90) / 30.0) ** 2 <= 1.0


def _l_shape() -> np.ndarray:
    m = np.zeros((224, 224), dtype=bool)
    m[20:200, 30:60] = True  # vertical bar
    m[170:200, 30:190] = True  # foot: the centroid falls outside the shape
    return m


@pytest.mark.parametrize("make", [_ellipse_mask, _l_shape])
def test_mask_geometry_box_tight_points_inside(make):
    mask = make()
    box, points = images.mask_geometry(mask)
    ys, xs = np.nonzero(mask)
    assert box == [xs.min(), ys.min(), xs.max(), ys.max()]
    assert len(points) == 3 and len({tuple(p) for p in points}) == 3
    for x, y in points:
        assert mask[y, x] and mask[y - 1, x] and mask[y + 1, x] and mask[y, x - 1] and mask[y, x + 1]
    assert images.mask_geometry(mask) == (box, points)


def test_mask_geometry_rect_and_tiny():
    mask = np.zeros((224, 224), dtype=bool)
    mask[40:61, 100:181] = True
    box, points = images.mask_geometry(mask)
    assert box == [100, 40, 180, 60]
    assert points[0] == [140, 50]  # the centre
    assert abs(points[1][0] - points[2][0]) > 30 and all(p[1] == 50 for p in points)  # spread along x
    one = np.zeros((10, 10), dtype=bool)
    one[3, 7] = True
    assert images.mask_geometry(one) == ([7, 3, 7, 3], [[7, 3]] * 3)
    with pytest.raises(ValueError):
        images.mask_geometry(np.zeros((5, 5), dtype=bool))


def test_voc_palette_round_trip():
    pal = images.voc_palette()
    assert pal.shape == (256, 3)
    assert [tuple(pal[i]) for i in (0, 1, 2, 3, 14)] == [
        (0, 0, 0),
        (128, 0, 0),
        (0, 128, 0),
        (128, 128, 0),
        (64, 128, 128),
    ]
    assert len({tuple(c) for c in pal}) == 256
    index = np.random.default_rng(1).integers(0, 71, size=(30, 40)).astype(np.uint8)
    assert np.array_equal(images.rgb_mask_to_index(pal[index], images.voc_palette(71)), index)
    with pytest.raises(ValueError, match="not in the palette"):
        images.rgb_mask_to_index(np.full((2, 2, 3), 7, dtype=np.uint8), pal[:71])


# ---------------------------------------------------------------- the real files


@pytest.mark.parametrize("path, size, fps", [(AVE_MP4, (450, 360), 25.0), (LLP_MP4, (352, 288), 15.0)])
def test_real_videos(path, size, fps, monkeypatch):
    monkeypatch.setattr(ffmpeg, "ffprobe_exe", lambda: None)
    info = ffmpeg.probe(path)
    assert (info.width, info.height, info.fps, info.video_codec, info.audio_codec) == (
        *size,
        fps,
        "h264",
        "aac",
    )
    assert info.duration == pytest.approx(10.0, abs=0.02)
    clip = ffmpeg.extract_clip(path, info=info)
    assert len(clip.frames) == 10 and clip.original_size == size
    assert clip.frame_times == pytest.approx([(i + 0.5) * clip.duration / 10 for i in range(10)])
    channels, rate, _, n = _wav(clip.audio)
    assert (channels, rate) == (1, 16000) and abs(n / 16000 - info.duration) < 0.05
    segment = ffmpeg.extract_clip(path, start=3.0, duration=1.0, num_frames=1, info=info)
    assert segment.audio_num_samples == 16000 and len(segment.frames) == 1


def test_real_masks():
    s4 = images.load_mask(SEMANTIC / "v1s/_4R3qHn1n50_0_5000/labels_semantic/0.png")
    assert s4.ndim == 2 and set(np.unique(s4)) == {0, 45}
    ms3 = images.load_mask(SEMANTIC / "v1m/3vheOi4y540_1/labels_semantic/1.png")
    assert set(np.unique(ms3)) == {0, 9, 41}
    rgb = images.load_mask(SEMANTIC / "v2/_aldtLqTVYI_1000_11000/labels_rgb/0.png")
    index = images.rgb_mask_to_index(rgb, images.voc_palette(71))
    assert set(np.unique(index)) == {0, 14}  # 14 = clarinet
    box, points = images.mask_geometry(images.resize_mask(s4 == 45, (224, 224)))
    assert 0 <= box[0] <= box[2] < 224 and 0 <= box[1] <= box[3] < 224
    small = images.resize_mask(s4 == 45, (224, 224))
    assert all(small[y, x] for x, y in points)


def test_build_workers_share_the_cores_between_decoders(files, monkeypatch):
    """A build with several workers caps each ffmpeg decoder's threads so workers x threads fit the cores."""
    import os

    from avuie.build.cutting import ffmpeg_threads

    cores = len(os.sched_getaffinity(0))
    assert ffmpeg_threads(1) == cores and ffmpeg_threads(cores) == 1 and ffmpeg_threads(4 * cores) == 1
    calls = _count_runs(monkeypatch)
    ffmpeg.extract_clip(files["counter"], duration=10.0, num_frames=3, threads=1)  # seek: 3 inputs + audio
    args = calls[0]
    assert args.count("-i") == args.count("-threads") == 4
    assert all(args[i + 1] == "1" for i, a in enumerate(args) if a == "-threads"), args
