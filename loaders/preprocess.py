"""Qwen-VL video preprocessing behind one switch, and the model inputs of one clip.

Three paths give the same patch rows (values within 1/255 before normalisation):
  "torch"  - loaders/qwen_preprocess.py on CPU tensors (always available);
  "native" - the fused C++ kernel of videorft._native (resize, normalise and patchify in one
             multi-threaded pass over uint8 frames; built by `make install` when a compiler exists);
  "gpu"    - the PyTorch ops on CUDA tensors, e.g. frames that DALI decoded on the device, so
             they never travel back to the host.
"auto" is gpu for frames on CUDA, native when built, torch otherwise. When the extension is
missing, "auto" says so once in the log and runs the torch path.
"""

from __future__ import annotations

import functools
import importlib
import logging

import torch

from videorft.loaders.clip import VideoClip
from videorft.loaders.qwen_preprocess import CLIP_MEAN, CLIP_STD, PatchSpec, patchify, resize_frames, smart_resize

log = logging.getLogger("videorft")

PREPROCESS_BACKENDS = ("torch", "native", "gpu")
"""Every preprocessing path besides "auto"."""


@functools.lru_cache(maxsize=1)
def native_module():
    """videorft._native, or None when it was not built (logged once)."""
    try:
        return importlib.import_module("videorft._native")
    except ImportError as err:
        log.info("videorft._native is not built (%s); video preprocessing uses the PyTorch path", err)
        return None


def resolve_preprocess(setting: str = "auto", device: str | torch.device | None = None) -> str:
    """Concrete preprocessing path for `setting` with frames or the run on `device`.

    "auto": "gpu" on CUDA, "native" when the extension is built, else "torch". Asking for
    "native" without the extension, or "gpu" without CUDA, is an error.
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if setting == "auto":
        if dev.type == "cuda":
            return "gpu"
        return "native" if native_module() is not None else "torch"
    if setting not in PREPROCESS_BACKENDS:
        raise ValueError(f"video.preprocess must be one of {('auto',) + PREPROCESS_BACKENDS}, got {setting!r}")
    if setting == "native" and native_module() is None:
        raise RuntimeError("video.preprocess 'native' needs the videorft._native extension (run `make install` "
                           "with cmake and a C++ compiler present)")
    if setting == "gpu" and not torch.cuda.is_available():
        raise RuntimeError("video.preprocess 'gpu' needs a CUDA device")
    return setting


def target_size(height: int, width: int, min_pixels: int | None, max_pixels: int | None,
                factor: int = 28) -> tuple[int, int]:
    """smart_resize target of a height x width frame; a missing bound means no limit on that side."""
    lo = min_pixels if min_pixels is not None else factor * factor
    hi = max_pixels if max_pixels is not None else max(height * width, lo)
    return smart_resize(height, width, factor, lo, hi)


def _frames_backend(frames: torch.Tensor, backend: str) -> str:
    """`backend` checked against the frames; "auto" (a caller without a start-up choice) is resolved
    for the frames' device."""
    name = resolve_preprocess(backend, frames.device)
    if name == "native" and frames.device.type != "cpu":
        raise ValueError("video.preprocess 'native' needs frames on the CPU; use 'gpu' for CUDA frames")
    return name


def _threads(threads: int) -> int:
    """Native threads: as asked, else torch's setting (1 inside DataLoader workers)."""
    return threads if threads > 0 else torch.get_num_threads()


def _to_gpu(frames: torch.Tensor) -> torch.Tensor:
    return frames if frames.device.type == "cuda" else frames.to("cuda", non_blocking=True)


def resize_video(frames: torch.Tensor, size: tuple[int, int], backend: str = "auto", threads: int = 0) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> uint8 [T, size[0], size[1], 3], bicubic with antialias, on the chosen path.

    threads: native threads (0: torch.get_num_threads()).
    """
    if tuple(frames.shape[1:3]) == tuple(size):
        return frames
    name = _frames_backend(frames, backend)
    if name == "native":
        out = native_module().resize_frames(frames.contiguous().numpy(), size[0], size[1], _threads(threads))
        return torch.from_numpy(out)
    return resize_frames(_to_gpu(frames) if name == "gpu" else frames, size)


def preprocess_frames(frames: torch.Tensor, size: tuple[int, int] | None = None, backend: str = "auto",
                      spec: PatchSpec = PatchSpec(), threads: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 frames [T, H, W, 3] -> (pixel_values float32 [gt*gh*gw, 3*tps*p*p], grid_thw long [3]).

    size: the (height, width) to resize to, multiples of spec.factor (None: the frames' own size,
    which must then be on that grid). Patch layout as transformers' Qwen2-VL processor; an odd
    frame count repeats the last frame. The result lives where the path ran (CUDA for "gpu").
    threads: native threads (0: torch.get_num_threads()).
    """
    size = tuple(size) if size is not None else tuple(frames.shape[1:3])
    name = _frames_backend(frames, backend)
    if name == "native":
        rows = native_module().preprocess_frames(
            frames.contiguous().numpy(), size[0], size[1], CLIP_MEAN, CLIP_STD, spec.patch_size,
            spec.merge_size, spec.temporal_patch_size, _threads(threads))
        t = frames.shape[0]
        gt = -(-t // spec.temporal_patch_size)
        grid = torch.tensor([gt, size[0] // spec.patch_size, size[1] // spec.patch_size], dtype=torch.long)
        return torch.from_numpy(rows), grid
    frames = _to_gpu(frames) if name == "gpu" else frames
    rows, grid = patchify(resize_frames(frames, size), spec)
    return rows, grid


def video_inputs(clip: VideoClip, min_pixels: int | None = None, max_pixels: int | None = None,
                 backend: str = "auto", spec: PatchSpec = PatchSpec(), threads: int = 0) -> dict:
    """The Qwen2.5-VL inputs of one clip.

    Returns {"pixel_values_videos": float32 [N, 3*tps*p*p] (N = gt*gh*gw; 1176 columns for
    Qwen2/2.5-VL), "video_grid_thw": long [3], "second_per_grid_ts": float}, where
    second_per_grid_ts = temporal_patch_size / clip.sample_fps (the true sampling rate, so
    M-RoPE time positions match real seconds in training and evaluation alike).
    Size: with min/max pixels, smart_resize of the clip's source size (a clip that load_video
    already resized with the same bounds is not resized again); without, the frames' own size
    snapped to the grid.
    """
    frames = clip.frames
    h, w = int(frames.shape[1]), int(frames.shape[2])
    if min_pixels is None and max_pixels is None:
        size = target_size(h, w, None, None, spec.factor)
    else:
        src_h, src_w = clip.extra.get("source_size", (h, w))
        size = target_size(src_h, src_w, min_pixels, max_pixels, spec.factor)
    if clip.sample_fps <= 0:
        raise ValueError(f"{clip.path or 'clip'}: sample fps unknown (fps={clip.fps}, "
                         f"total_frames={clip.total_frames}); cannot place frames in time")
    rows, grid = preprocess_frames(frames, size, backend, spec, threads)
    return {"pixel_values_videos": rows, "video_grid_thw": grid,
            "second_per_grid_ts": spec.temporal_patch_size / clip.sample_fps}
