"""DALI backend: CPU pipeline on VP9 (the codecs DALI's CPU decoder reads), NVDEC on CUDA.

A DALI pipeline error can leave the process in a bad state, so failure paths that reach the
pipeline run in a child process.
"""

import subprocess
import sys
import textwrap

import av
import numpy as np
import pytest
import torch

pytest.importorskip("nvidia.dali")

from videorft.loaders.preprocess import video_inputs  # noqa: E402
from videorft.loaders.video import VideoDecodeError, load_video  # noqa: E402
from videorft.loaders.video_writer import encode_video, pattern_frames  # noqa: E402


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("dali")
    frames = pattern_frames(48, 120, 160)
    return {"vp9": encode_video(root / "clip.webm", frames, 24, "vp9", gop=12),
            "vp8": encode_video(root / "clip8.webm", frames, 24, "vp8", gop=12),
            "h264": encode_video(root / "clip.mp4", frames, 24, "h264", gop=12),
            "hevc": encode_video(root / "clip265.mp4", frames, 24, "hevc", gop=12)}


def upsample_chroma(c):
    """Bilinear 2x upsampling of a chroma plane with centred sample positions (float64)."""
    h, w = c.shape
    ys = np.clip((np.arange(2 * h) - 0.5) / 2, 0, h - 1)
    xs = np.clip((np.arange(2 * w) - 0.5) / 2, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (ys - y0)[:, None], (xs - x0)[None]
    return (c[y0][:, x0] * (1 - wy) * (1 - wx) + c[y0][:, x1] * (1 - wy) * wx
            + c[y1][:, x0] * wy * (1 - wx) + c[y1][:, x1] * wy * wx)


def bilinear_chroma_rgb(path, indices):
    """RGB of the decoded YUV 4:2:0 frames, BT.601 limited range, bilinear chroma (DALI's conversion)."""
    with av.open(path) as container:
        planes = [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]
    out = []
    for i in indices:
        p = planes[i].astype(np.float64)
        h, w = p.shape[0] * 2 // 3, p.shape[1]
        y = (p[:h] - 16) * 255 / 219
        u = (upsample_chroma(p[h:h + h // 4].reshape(h // 2, w // 2)) - 128) * 255 / 224
        v = (upsample_chroma(p[h + h // 4:].reshape(h // 2, w // 2)) - 128) * 255 / 224
        rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], -1)
        out.append(np.clip(np.round(rgb), 0, 255))
    return np.stack(out)


@pytest.mark.parametrize("codec", ["vp9", "vp8"])
def test_dali_cpu_decodes_the_same_frames_as_pyav(videos, codec):
    dali = load_video(videos[codec], num_frames=8, backend="dali")
    pyav = load_video(videos[codec], num_frames=8, backend="pyav")
    assert dali.indices == pyav.indices and dali.timestamps == pyav.timestamps
    assert dali.frames.device.type == "cpu" and dali.frames.shape == pyav.frames.shape
    expected = bilinear_chroma_rgb(videos[codec], dali.indices)
    assert np.abs(dali.frames.numpy() - expected).max() <= 2
    # Only the chroma upsampling differs from FFmpeg's conversion: a small mean difference.
    assert (dali.frames.float() - pyav.frames.float()).abs().mean() < 6


def test_dali_cpu_refuses_h264_with_a_clear_error(videos):
    if torch.cuda.is_available():
        pytest.skip("the GPU decoder reads H.264")
    with pytest.raises(VideoDecodeError, match="cannot decode h264 on the CPU"):
        load_video(videos["h264"], backend="dali")


def test_dali_pipeline_failure_is_a_decode_error_and_the_next_clip_works(videos, tmp_path):
    """Run in a child: a file DALI chokes on (an H.264 stream posing as VP9), then a good clip."""
    script = textwrap.dedent("""
        import sys, dataclasses
        from videorft.loaders.decode_dali import decode_dali
        from videorft.loaders.video import VideoDecodeError, load_video
        from videorft.loaders.video_probe import probe_video
        bad, good, missing = sys.argv[1:4]
        fake = dataclasses.replace(probe_video(bad), codec="vp9")
        try:
            decode_dali(bad, fake, [0, 1], device="cpu")
            sys.exit("no error from DALI")
        except VideoDecodeError as err:
            assert "DALI failed" in str(err), err
        for path in (missing, bad + ".nope"):
            try:
                load_video(path, backend="dali")
                sys.exit("decoded a missing file")
            except VideoDecodeError:
                pass
        clip = load_video(good, num_frames=4, backend="dali")
        assert tuple(clip.frames.shape) == (4, 120, 160, 3), clip.frames.shape
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script, videos["h264"], videos["vp9"], str(tmp_path / "none.webm")],
                          capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                            "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


@pytest.mark.gpu
@pytest.mark.parametrize("codec", ["h264", "hevc", "vp9"])
def test_dali_gpu_decodes_on_device_and_preprocesses_there(videos, codec):
    clip = load_video(videos[codec], num_frames=8, backend="dali")
    pyav = load_video(videos[codec], num_frames=8, backend="pyav")
    assert clip.frames.is_cuda and clip.indices == pyav.indices
    assert (clip.frames.cpu().float() - pyav.frames.float()).abs().mean() < 6
    inputs = video_inputs(clip, 64 * 28 * 28, 64 * 28 * 28, backend="auto")
    assert inputs["pixel_values_videos"].is_cuda
    assert inputs["video_grid_thw"].tolist()[0] == 4
    resized = load_video(videos[codec], num_frames=8, min_pixels=64 * 28 * 28, max_pixels=64 * 28 * 28)
    assert resized.frames.is_cuda and resized.extra["decoder"] == "dali"
