"""The native and GPU preprocessing paths against the PyTorch path, and the one-clip model inputs."""

import logging
import sys

import numpy as np
import pytest
import torch

from videorft.loaders.clip import VideoClip
from videorft.loaders.preprocess import (native_module, preprocess_frames, resize_video, resolve_preprocess,
                                         target_size, video_inputs)
from videorft.loaders.qwen_preprocess import CLIP_STD, PatchSpec, patchify, resize_frames
from videorft.loaders.video import load_video
from videorft.loaders.video_writer import encode_video, pattern_frames

needs_native = pytest.mark.skipif(native_module() is None, reason="videorft._native was not built")
STD_PER_COLUMN = torch.tensor(CLIP_STD).repeat_interleave(2 * 14 * 14)          # [1176]


def levels_apart(a, b):
    """Largest difference of two patch-row tensors in uint8 levels (normalisation undone)."""
    return (((a - b) * STD_PER_COLUMN).abs().max() * 255).item()


def smooth_frames(t, h, w, seed=0):
    return torch.from_numpy(pattern_frames(t, h, w, seed))


@needs_native
@pytest.mark.parametrize("t, h, w, size", [
    (4, 96, 170, (56, 112)),          # downscale, 16:9-ish
    (3, 50, 70, (28, 56)),            # odd frame count, tiny
    (2, 60, 80, (112, 140)),          # upscale
    (2, 56, 84, (56, 84)),            # already on the grid: no resize
    (2, 61, 93, (56, 84)),            # odd source sides
])
@pytest.mark.parametrize("content", ["random", "smooth"])
def test_native_matches_torch_within_one_level(t, h, w, size, content):
    frames = torch.randint(0, 256, (t, h, w, 3), dtype=torch.uint8) if content == "random" else smooth_frames(t, h, w)
    ref_rows, ref_grid = patchify(resize_frames(frames, size))
    rows, grid = preprocess_frames(frames, size, backend="native")
    assert grid.tolist() == ref_grid.tolist()
    assert rows.shape == ref_rows.shape and rows.dtype == torch.float32
    assert levels_apart(rows, ref_rows) <= 1.0 + 1e-3
    resized = resize_video(frames, size, backend="native")
    assert (resized.int() - resize_frames(frames, size).int()).abs().max() <= 1


@needs_native
def test_native_is_exact_without_resize_and_threads_do_not_change_results():
    frames = torch.randint(0, 256, (5, 56, 112, 3), dtype=torch.uint8)
    ref_rows, _ = patchify(frames)
    rows1, _ = preprocess_frames(frames, backend="native", threads=1)
    rows2, _ = preprocess_frames(frames, backend="native", threads=2)
    assert torch.equal(rows1, ref_rows) and torch.equal(rows1, rows2)


@needs_native
def test_native_rejects_bad_input_clearly():
    frames = torch.randint(0, 256, (2, 56, 56, 3), dtype=torch.uint8)
    with pytest.raises(ValueError, match="multiple of 28"):
        preprocess_frames(frames, (50, 56), backend="native")
    with pytest.raises((ValueError, TypeError)):
        native_module().preprocess_frames(frames.float().numpy(), 56, 56, (0, 0, 0), (1, 1, 1))
    with pytest.raises(ValueError, match=r"\[T, H, W, 3\]"):
        native_module().resize_frames(np.zeros((2, 56, 56), np.uint8), 28, 28)


def test_missing_extension_falls_back_to_torch_and_says_so_once(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "videorft._native", None)       # makes the import fail
    native_module.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="videorft"):
            assert resolve_preprocess("auto", "cpu") == "torch"
            assert resolve_preprocess("auto", "cpu") == "torch"
            frames = torch.randint(0, 256, (2, 56, 56, 3), dtype=torch.uint8)
            rows, grid = preprocess_frames(frames)
        assert torch.equal(rows, patchify(frames)[0])
        assert sum("not built" in r.getMessage() for r in caplog.records) == 1
        with pytest.raises(RuntimeError, match="native"):
            resolve_preprocess("native", "cpu")
    finally:
        native_module.cache_clear()


def test_resolve_preprocess_choices():
    assert resolve_preprocess("torch") == "torch"
    assert resolve_preprocess("auto", "cuda") == "gpu"
    with pytest.raises(ValueError, match="video.preprocess"):
        resolve_preprocess("opencl")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            resolve_preprocess("gpu")


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return encode_video(tmp_path_factory.mktemp("pp") / "clip.mp4", pattern_frames(30, 96, 128), 15, "h264")


@pytest.mark.parametrize("backend", ["torch", pytest.param("native", marks=needs_native)])
def test_video_inputs_of_a_clip(clip_path, backend):
    budget = 64 * 28 * 28
    clip = load_video(clip_path, num_frames=6, backend="pyav")
    inputs = video_inputs(clip, budget, budget, backend=backend)
    h, w = target_size(96, 128, budget, budget)
    assert inputs["video_grid_thw"].tolist() == [3, h // 14, w // 14]
    assert inputs["pixel_values_videos"].shape == (3 * (h // 14) * (w // 14), 1176)
    assert inputs["second_per_grid_ts"] == pytest.approx(2 / clip.sample_fps)
    assert clip.sample_fps == pytest.approx(6 / 2.0)                  # 6 frames over a 2 s clip
    # A clip that load_video already resized with the same budget is not resized a second time.
    small = load_video(clip_path, num_frames=6, min_pixels=budget, max_pixels=budget, backend="pyav")
    again = video_inputs(small, budget, budget, backend=backend)
    assert again["video_grid_thw"].tolist() == inputs["video_grid_thw"].tolist()
    assert levels_apart(again["pixel_values_videos"], inputs["pixel_values_videos"]) <= 1.0 + 1e-3


def test_video_inputs_needs_a_known_sampling_rate():
    clip = VideoClip(frames=torch.zeros(2, 28, 28, 3, dtype=torch.uint8), indices=[0, 1], timestamps=[0.0, 0.5],
                     fps=0.0)
    with pytest.raises(ValueError, match="sample fps"):
        video_inputs(clip)


@pytest.mark.gpu
def test_gpu_path_matches_torch_on_device():
    frames = smooth_frames(5, 120, 212)
    size = target_size(120, 212, 32 * 28 * 28, 32 * 28 * 28)
    ref, ref_grid = preprocess_frames(frames, size, backend="torch")
    rows, grid = preprocess_frames(frames.cuda(), size, backend="auto")
    assert rows.is_cuda and grid.tolist() == ref_grid.tolist()
    assert levels_apart(rows.cpu(), ref) <= 1.0 + 1e-3


def test_make_install_builds_the_extension_where_a_toolchain_exists():
    """A silent build failure would leave every run on the slower torch path."""
    import os
    import shutil

    if os.environ.get("VIDEORFT_BUILD_NATIVE") == "0" or not (shutil.which("cmake") and shutil.which("c++")):
        pytest.skip("no C++ toolchain, or the native build was switched off")
    assert native_module() is not None, "videorft._native is missing: rerun `make install` and read its output"
