"""load_video on real H.264 and VP9 files encoded here: every CPU backend, sampling, resizing."""

import av
import numpy as np
import pytest
import torch

from videorft.engine.config import VideoConfig
from videorft.loaders.decode_pyav import decode_pyav, decoded_frame_count, plan_segments
from videorft.loaders.qwen_preprocess import resize_frames
from videorft.loaders.preprocess import native_module
from videorft.loaders.video import (DECODERS, VideoDecodeError, decoder_fallback, installed_decoders, load_video,
                                    load_video_from_config, resolve_decoder, resolve_video_backends)
from videorft.loaders.video_probe import probe_video
from videorft.loaders.video_writer import encode_video, pattern_frames

CPU_BACKENDS = [b for b in ("pyav", "opencv", "decord") if b in installed_decoders()]
N_FRAMES, FPS, HEIGHT, WIDTH = 48, 24, 120, 160          # 2 s clips


@pytest.fixture(scope="module")
def source():
    return pattern_frames(N_FRAMES, HEIGHT, WIDTH)


@pytest.fixture(scope="module")
def videos(tmp_path_factory, source):
    """codec -> path of a 2 s 160x120 clip with a keyframe every 12 frames (B-frames in H.264)."""
    root = tmp_path_factory.mktemp("videos")
    return {"h264": encode_video(root / "clip.mp4", source, FPS, "h264", gop=12),
            "vp9": encode_video(root / "clip.webm", source, FPS, "vp9", gop=12)}


def decode_all(path):
    """Every frame of `path`, decoded by the plainest possible PyAV loop (the oracle)."""
    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def nearest_source(frame, source):
    return int(np.argmin(np.abs(source.astype(np.int16) - frame.astype(np.int16)).mean(axis=(1, 2, 3))))


@pytest.mark.parametrize("codec", ["h264", "vp9"])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_backend_returns_exactly_the_sampled_frames(videos, source, backend, codec):
    clip = load_video(videos[codec], num_frames=8, backend=backend)
    oracle = decode_all(videos[codec])
    assert clip.indices == [0, 7, 13, 20, 27, 34, 40, 47]
    assert clip.frames.dtype == torch.uint8 and tuple(clip.frames.shape) == (8, HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(clip.frames.numpy(), oracle[clip.indices])
    assert [nearest_source(f, source) for f in clip.frames.numpy()] == clip.indices
    assert clip.extra["decoder"] == backend and clip.extra["codec"] == codec


@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_backends_agree_on_default_sampling(videos, codec):
    clips = {b: load_video(videos[codec], backend=b) for b in CPU_BACKENDS}
    ref = clips["pyav"]
    for clip in clips.values():
        assert clip.indices == ref.indices
        assert torch.equal(clip.frames, ref.frames)


def test_metadata_timestamps_and_sample_fps(videos):
    clip = load_video(videos["h264"], backend="pyav")
    assert clip.fps == pytest.approx(FPS) and clip.total_frames == N_FRAMES
    assert len(clip.indices) == 4                             # 2 s * 2 fps, within [4, 16]
    assert clip.timestamps == pytest.approx([i / FPS for i in clip.indices])
    assert clip.sample_fps == pytest.approx(4 / 2.0)


@pytest.mark.parametrize("kwargs, expect", [
    ({}, 4),                                          # 2 s * 2 fps
    ({"fps": 8.0}, 16),                               # 16 wanted, within [4, 16]
    ({"fps": 8.0, "max_frames": 9}, 8),               # floor_even(9)
    ({"fps": 0.5, "min_frames": 5}, 6),               # 1 wanted, raised to ceil_even(5)
    ({"num_frames": 7}, 8),                           # round(7 / 2) * 2 with half-to-even
    ({"num_frames": 5}, 4),
    ({"fps": 100.0, "max_frames": 64}, 48),           # capped by the frames in the video
])
def test_frame_count_rules(videos, kwargs, expect):
    clip = load_video(videos["vp9"], backend="pyav", **kwargs)
    assert len(clip.indices) == expect
    assert clip.indices == torch.linspace(0, N_FRAMES - 1, expect).round().long().tolist()


def test_more_frames_than_the_video_holds_is_a_decode_error(videos):
    with pytest.raises(VideoDecodeError, match="clip.mp4.*48"):
        load_video(videos["h264"], num_frames=50)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_pixel_budget_resizes_with_smart_resize(videos, backend):
    budget = 128 * 28 * 28
    clip = load_video(videos["h264"], num_frames=4, min_pixels=budget, max_pixels=budget, backend=backend)
    native = load_video(videos["h264"], num_frames=4, backend=backend)
    assert tuple(clip.frames.shape) == (4, 280, 392, 3)      # 120x160 grown onto the 28-grid
    expected = resize_frames(native.frames, (280, 392))
    assert (clip.frames.int() - expected.int()).abs().max() <= 1
    assert clip.extra["source_size"] == (HEIGHT, WIDTH)


def test_max_pixels_alone_shrinks_and_keeps_aspect(videos):
    clip = load_video(videos["vp9"], num_frames=2, max_pixels=56 * 84, backend="pyav")
    assert tuple(clip.frames.shape[1:3]) == (56, 56)


def test_seek_plan_decodes_fewer_frames_and_the_same_pixels(videos):
    index = probe_video(videos["h264"])
    assert index.keyframes == (0, 12, 24, 36)
    sparse = [1, 25, 40]
    plan = plan_segments(index, sparse)
    assert [seg.start for seg in plan] == [0, 24, 36]
    assert decoded_frame_count(plan) < sparse[-1] + 1
    dense = list(range(0, 48, 2))
    assert [seg.start for seg in plan_segments(index, dense)] == [0]
    seeking = decode_pyav(videos["h264"], index, sparse)
    np.testing.assert_array_equal(seeking, decode_all(videos["h264"])[sparse])


def test_repeated_and_unsorted_indices(videos):
    index = probe_video(videos["vp9"])
    frames = decode_pyav(videos["vp9"], index, [30, 3, 30])
    oracle = decode_all(videos["vp9"])
    np.testing.assert_array_equal(frames, oracle[[30, 3, 30]])


def test_long_gop_file_is_decoded_sequentially(tmp_path, source):
    path = encode_video(tmp_path / "long_gop.mp4", source, FPS, "h264", gop=250)
    index = probe_video(path)
    assert index.keyframes == (0,)
    assert [seg.start for seg in plan_segments(index, [5, 20, 47])] == [0]
    clip = load_video(path, num_frames=6, backend="pyav")
    np.testing.assert_array_equal(clip.frames.numpy(), decode_all(path)[clip.indices])


def test_resolve_decoder():
    assert resolve_decoder("auto", "cpu") == "pyav"                  # measured fastest, always installed
    assert resolve_decoder("pyav", "cpu") == "pyav"
    with pytest.raises(ValueError, match="video.backend"):
        resolve_decoder("ffmpeg-cli", "cpu")
    if "dali" in installed_decoders():
        assert resolve_decoder("auto", "cuda") == "dali"


def test_the_decoder_registry_drives_auto_and_its_fallback(videos):
    cpu_order = [d.name for d in sorted(DECODERS.values(), key=lambda d: (d.cpu_rank is None, d.cpu_rank or 0))]
    assert cpu_order[:3] == ["pyav", "opencv", "decord"] and DECODERS["dali"].cpu_rank is None
    assert resolve_decoder("auto", "cpu") == next(n for n in cpu_order if n in installed_decoders())
    assert decoder_fallback("auto", "dali") == resolve_decoder("auto", "cpu")
    assert decoder_fallback("dali", "dali") is None and decoder_fallback("auto", "pyav") is None
    with pytest.raises(ValueError, match="video.backend"):
        load_video(videos["h264"], num_frames=4, backend="ffmpeg-cli")
    if not torch.cuda.is_available():          # DALI reads no H.264 on a CPU: the fallback decodes it
        clip = load_video(videos["h264"], num_frames=4, backend="dali", fallback="pyav")
        assert clip.extra["decoder"] == "pyav"
        np.testing.assert_array_equal(clip.frames.numpy(), load_video(videos["h264"], num_frames=4,
                                                                      backend="pyav").frames.numpy())


def test_preprocessing_follows_where_the_decoder_leaves_the_frames():
    on_cpu = "native" if native_module() is not None else "torch"
    assert resolve_video_backends("auto", "auto", "cpu") == (resolve_decoder("auto", "cpu"), None, on_cpu)
    # a CPU decoder on a CUDA run: its frames are on the CPU, so "auto" never picks the GPU path
    assert resolve_video_backends("pyav", "auto", "cuda") == ("pyav", None, on_cpu)
    assert resolve_video_backends("pyav", "torch", "cuda") == ("pyav", None, "torch")


def test_load_video_from_config(videos):
    cfg = VideoConfig(num_frames=6, min_pixels=None, max_pixels=None, backend="pyav")
    clip = load_video_from_config(videos["vp9"], cfg)
    assert len(clip.indices) == 6 and tuple(clip.frames.shape[1:3]) == (HEIGHT, WIDTH)
    train = load_video_from_config(videos["vp9"], VideoConfig(), backend="pyav")   # 128*28*28 per frame
    assert tuple(train.frames.shape) == (4, 280, 392, 3)


def test_a_video_with_an_audio_track_decodes_on_every_backend(tmp_path, source):
    """Audio packets are ignored; a longer audio track does not count as a cut-off video."""
    path = str(tmp_path / "with_audio.webm")
    with av.open(path, "w") as container:
        video = container.add_stream("libvpx-vp9", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        audio = container.add_stream("libopus", rate=48000)
        silence = np.zeros((1, 960), np.float32)                          # 20 ms of mono
        for k in range(150):                                              # 3 s of audio, 2 s of video
            frame = av.AudioFrame.from_ndarray(silence, format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48000, k * 960
            for packet in audio.encode(frame):
                container.mux(packet)
            if k < N_FRAMES:
                for packet in video.encode(av.VideoFrame.from_ndarray(source[k], format="rgb24")):
                    container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    oracle = decode_all(path)
    assert len(oracle) == N_FRAMES
    for backend in CPU_BACKENDS:
        clip = load_video(path, num_frames=6, backend=backend)
        np.testing.assert_array_equal(clip.frames.numpy(), oracle[clip.indices])
