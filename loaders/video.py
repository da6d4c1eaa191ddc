"""Decode the frames a Qwen-VL model sees from one video file: `load_video`.

Every backend samples the same frames: a PyAV packet probe (no decoding) gives the frame
count and timestamps, qwen-vl-utils' rules pick the indices, and the backend decodes only
those. Bad media of any kind raises `VideoDecodeError`, naming the file.

Backends: "pyav" (always installed), "opencv" and "decord" (the `decoders` extra), "dali"
(the `dali` extra: VP8/VP9 on CPU, H.264/HEVC/VP9/AV1 on the GPU, frames stay on the device),
and "auto": DALI on CUDA, else the fastest installed CPU decoder as measured by
bench/bench_video_decode.py: PyAV, whose decode plan seeks only when it pays and skips the
unreferenced frames that are not sampled (then OpenCV, then decord).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Callable

import numpy as np
import torch

from videorft.loaders.clip import VideoClip
from videorft.loaders.sampling import sample_indices, smart_nframes
from videorft.loaders.video_probe import VideoDecodeError, VideoIndex, probe_video

__all__ = ["load_video", "load_video_from_config", "video_pixel_bounds", "resolve_decoder", "installed_decoders",
           "VideoDecodeError", "DECODERS", "CPU_DECODER_PREFERENCE"]

log = logging.getLogger("videorft")

DECODERS = ("pyav", "opencv", "decord", "dali")
"""Every decoder name `load_video` accepts besides "auto"."""
CPU_DECODER_PREFERENCE = ("pyav", "opencv", "decord")
"""CPU decoders fastest first (16 frames of 480p H.264/VP9; bench/bench_video_decode.py)."""
_MODULE_OF = {"pyav": "av", "opencv": "cv2", "decord": "decord", "dali": "nvidia.dali"}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def installed_decoders() -> list[str]:
    """Decoder names whose library is importable here (DALI counts even without a GPU)."""
    return [name for name in DECODERS if _installed(_MODULE_OF[name])]


def resolve_decoder(backend: str = "auto", device: str | torch.device | None = None) -> str:
    """Concrete decoder for `backend` on `device` (default: cuda when available, else cpu).

    "auto" is DALI on CUDA when installed, otherwise the first installed decoder of
    CPU_DECODER_PREFERENCE. A named decoder that is not installed is an error naming the extra.
    """
    dev = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    have = installed_decoders()
    if backend == "auto":
        if dev.type == "cuda" and "dali" in have:
            return "dali"
        return next(name for name in CPU_DECODER_PREFERENCE if name in have)
    if backend not in DECODERS:
        raise ValueError(f"video.backend must be one of {('auto',) + DECODERS}, got {backend!r}")
    if backend not in have:
        extra = "dali" if backend == "dali" else "decoders"
        raise RuntimeError(f"video.backend {backend!r} is not installed; `pip install .[{extra}]`")
    return backend


def _decoder(name: str) -> Callable[..., np.ndarray | torch.Tensor]:
    """The decode function of backend `name` (imported on first use)."""
    if name == "pyav":
        from videorft.loaders.decode_pyav import decode_pyav
        return decode_pyav
    if name == "opencv":
        from videorft.loaders.decode_opencv import decode_opencv
        return decode_opencv
    if name == "decord":
        from videorft.loaders.decode_decord import decode_decord
        return decode_decord
    from videorft.loaders.decode_dali import decode_dali
    return decode_dali


def _skip_unsupported_dali(name: str, backend: str, index: VideoIndex) -> str:
    """"auto" falls back to the CPU choice for a codec that DALI cannot read on this device."""
    if name == "dali" and backend == "auto":
        from videorft.loaders.decode_dali import dali_supports
        if not dali_supports(index.codec, "cuda" if torch.cuda.is_available() else "cpu"):
            name = resolve_decoder("auto", "cpu")
    return name


def _frame_count(path: str, index: VideoIndex, num_frames, fps, min_frames, max_frames) -> int:
    try:
        return smart_nframes(index.total_frames, index.fps, num_frames, fps, min_frames, max_frames)
    except ValueError as err:
        raise VideoDecodeError(f"{path}: {err}") from err


def load_video(path: str | os.PathLike, num_frames: int | None = None, fps: float = 2.0,
               min_frames: int = 4, max_frames: int = 16, min_pixels: int | None = None,
               max_pixels: int | None = None, backend: str = "auto", *, threads: int = 0,
               resize: str = "auto") -> VideoClip:
    """Sample frames of the video at `path` -> VideoClip (frames uint8 [T, H, W, 3] RGB).

    T: `num_frames` rounded to even, or duration * `fps` clamped to [min_frames,
    min(max_frames, total frames)] and floored to even; indices round(linspace(0, total-1, T)).
    Size: the source size when min_pixels and max_pixels are both None, else smart_resize into
    [min_pixels, max_pixels] per frame (sides multiples of 28, bicubic with antialias).
    backend: "auto" | "pyav" | "opencv" | "decord" | "dali"; DALI on a GPU returns CUDA frames.
    threads: decoder threads (0: torch.get_num_threads(), which is 1 inside DataLoader workers).
    resize: the resize path, as in
    `videorft.loaders.preprocess.resize_video` ("auto", "native", "torch").
    Raises VideoDecodeError (naming the file) for missing, unreadable, truncated or too-short media.
    """
    path = os.fspath(path)
    name = resolve_decoder(backend)
    index = probe_video(path)
    name = _skip_unsupported_dali(name, backend, index)
    n = _frame_count(path, index, num_frames, fps, min_frames, max_frames)
    indices = sample_indices(index.total_frames, n)
    frames = _decoder(name)(path, index, indices, threads or torch.get_num_threads())
    frames = torch.from_numpy(frames) if isinstance(frames, np.ndarray) else frames   # [T, H, W, 3]
    source_size = (int(frames.shape[1]), int(frames.shape[2]))
    if min_pixels is not None or max_pixels is not None:
        from videorft.loaders.preprocess import resize_video, target_size
        frames = resize_video(frames, target_size(*source_size, min_pixels, max_pixels), resize)
    return VideoClip(frames=frames, indices=indices, timestamps=index.timestamps(indices), fps=index.fps,
                     total_frames=index.total_frames, path=path,
                     extra={"decoder": name, "codec": index.codec, "source_size": source_size,
                            "min_pixels": min_pixels, "max_pixels": max_pixels})


def video_pixel_bounds(cfg) -> tuple[int | None, int | None]:
    """(min, max) pixels per frame of a VideoConfig, with qwen-vl-utils' ceiling rule.

    qwen-vl-utils raises a video's pixel ceiling to at least int(min_pixels * 1.05), so with
    min = max = 128*28*28 the effective ceiling is 105,369 and a 4:3 video gets 364x280 frames
    (130 tokens per frame pair), not 364x252 (117). `cfg.max_pixels_floor` is that factor (1.0 keeps
    max_pixels as given). An open bound (None) stays open.
    """
    low, high = cfg.min_pixels, cfg.max_pixels
    if low is not None and high is not None:
        high = max(high, int(low * cfg.max_pixels_floor))
    return low, high


def load_video_from_config(path: str | os.PathLike, cfg, backend: str | None = None) -> VideoClip:
    """`load_video` with the frame and pixel settings of a VideoConfig (`cfg.video` of a RunConfig).

    backend overrides cfg.backend (e.g. the choice already resolved and logged at start-up).
    """
    low, high = video_pixel_bounds(cfg)
    return load_video(path, num_frames=cfg.num_frames, fps=cfg.fps, min_frames=cfg.min_frames,
                      max_frames=cfg.max_frames, min_pixels=low, max_pixels=high, backend=backend or cfg.backend)
