"""Decode the frames a Qwen-VL model sees from one video file: `load_video`.

Every backend samples the same frames: a PyAV packet probe (no decoding) gives the frame
count and timestamps, qwen-vl-utils' rules pick the indices, and the backend decodes only
those. Bad media of any kind raises `VideoDecodeError`, naming the file.

Backends, one `Decoder` record each in DECODERS: "pyav" (always installed), "opencv" and "decord"
(the `decoders` extra), "dali" (the `dali` extra: VP8/VP9 on CPU, H.264/HEVC/VP9/AV1 on the GPU,
frames stay on the device), and "auto": DALI on CUDA, else the fastest installed CPU decoder as
measured by bench/bench_video_decode.py: PyAV, whose decode plan seeks only when it pays and skips
the unreferenced frames that are not sampled (then OpenCV, then decord).

A run resolves "auto" once at start-up (`resolve_video_backends`: decoder, its fallback and the
preprocessing path) and hands the names down, so nothing is probed per clip.
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from videorft.loaders.clip import VideoClip
from videorft.loaders.packages import has_package
from videorft.loaders.sampling import sample_indices, smart_nframes
from videorft.loaders.video_probe import VideoDecodeError, VideoIndex, probe_video

__all__ = ["load_video", "load_video_from_config", "video_pixel_bounds", "resolve_decoder", "decoder_fallback",
           "frames_device", "resolve_video_backends", "installed_decoders", "VideoDecodeError", "Decoder", "DECODERS"]


@dataclass(frozen=True)
class Decoder:
    """One video decoder backend."""

    name: str
    """The name video.backend and `load_video(backend=...)` take."""
    module: str
    """The library it needs, probed without importing to tell whether it is installed."""
    function: str
    """"module:function" of its decode function (path, VideoIndex, indices, threads) -> frames."""
    cpu_rank: Optional[int]
    """Place in the CPU "auto" preference, fastest first (16 frames of 480p H.264/VP9;
    bench/bench_video_decode.py); None: never the CPU "auto" choice."""
    extra: Optional[str]
    """The setup.py extra that installs it (None: always installed)."""


DECODERS: dict[str, Decoder] = {d.name: d for d in (
    Decoder("pyav", "av", "videorft.loaders.decode_pyav:decode_pyav", cpu_rank=0, extra=None),
    Decoder("opencv", "cv2", "videorft.loaders.decode_opencv:decode_opencv", cpu_rank=1, extra="decoders"),
    Decoder("decord", "decord", "videorft.loaders.decode_decord:decode_decord", cpu_rank=2, extra="decoders"),
    Decoder("dali", "nvidia.dali", "videorft.loaders.decode_dali:decode_dali", cpu_rank=None, extra="dali"),
)}
"""Every decoder `load_video` accepts besides "auto", by name."""


def installed_decoders() -> list[str]:
    """Decoder names whose library is importable here (DALI counts even without a GPU)."""
    return [name for name, decoder in DECODERS.items() if has_package(decoder.module)]


def _cuda_or_cpu(device: str | torch.device | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_decoder(backend: str = "auto", device: str | torch.device | None = None) -> str:
    """Concrete decoder for `backend` on `device` (default: cuda when available, else cpu).

    "auto" is DALI on CUDA when installed, otherwise the installed decoder of lowest cpu_rank.
    A named decoder that is not installed is an error naming the extra.
    """
    if backend == "auto":
        have = installed_decoders()
        if _cuda_or_cpu(device).type == "cuda" and "dali" in have:
            return "dali"
        cpu = sorted((d for d in DECODERS.values() if d.cpu_rank is not None and d.name in have),
                     key=lambda d: d.cpu_rank)
        return cpu[0].name
    _check_name(backend)
    if not has_package(DECODERS[backend].module):
        raise _not_installed(backend)
    return backend


def _check_name(backend: str) -> None:
    if backend not in DECODERS:
        raise ValueError(f"video.backend must be one of {['auto', *DECODERS]}, got {backend!r}")


def _not_installed(name: str) -> RuntimeError:
    return RuntimeError(f"video.backend {name!r} is not installed; `pip install .[{DECODERS[name].extra}]`")


def decoder_fallback(backend: str, decoder: str) -> Optional[str]:
    """The CPU decoder for codecs that `decoder` cannot read on this machine, or None.

    Only "auto" falls back: when it chose DALI, a codec DALI cannot read here (e.g. MPEG-4 part 2
    on the CPU) goes to the CPU "auto" choice instead; a decoder named outright never falls back.
    """
    return resolve_decoder("auto", "cpu") if backend == "auto" and decoder == "dali" else None


def frames_device(decoder: str) -> torch.device:
    """Where `decoder` leaves its frames: DALI decodes on the GPU when there is one, the rest on the CPU."""
    return torch.device("cuda" if decoder == "dali" and torch.cuda.is_available() else "cpu")


def resolve_video_backends(backend: str = "auto", preprocess: str = "auto",
                           device: str | torch.device | None = None) -> tuple[str, Optional[str], str]:
    """(decoder, its fallback or None, preprocessing path) for video.backend and video.preprocess on
    `device` (default: cuda when available, else cpu).

    The preprocessing path follows the frames: "auto" is "gpu" only when the decoder leaves its
    frames on the GPU (DALI on CUDA), so CPU-decoded clips are never shipped to the GPU from
    DataLoader workers.
    """
    from videorft.loaders.preprocess import resolve_preprocess

    decoder = resolve_decoder(backend, device)
    return decoder, decoder_fallback(backend, decoder), resolve_preprocess(preprocess, frames_device(decoder))


@functools.lru_cache(maxsize=None)
def _decode_function(name: str) -> Callable[..., np.ndarray | torch.Tensor]:
    """The decode function of decoder `name`, looked up once per process (the library probed and
    imported on first use); a decoder whose library is missing is an error naming its extra."""
    if not has_package(DECODERS[name].module):
        raise _not_installed(name)
    module, _, function = DECODERS[name].function.partition(":")
    return getattr(importlib.import_module(module), function)


def _decoder_for(name: str, fallback: Optional[str], index: VideoIndex) -> str:
    """`name`, or `fallback` for a codec that DALI cannot read on this machine."""
    if name == "dali" and fallback is not None:
        from videorft.loaders.decode_dali import dali_supports
        if not dali_supports(index.codec, _cuda_or_cpu(None)):
            return fallback
    return name


def _frame_count(path: str, index: VideoIndex, num_frames, fps, min_frames, max_frames) -> int:
    try:
        return smart_nframes(index.total_frames, index.fps, num_frames, fps, min_frames, max_frames)
    except ValueError as err:
        raise VideoDecodeError(f"{path}: {err}") from err


def load_video(path: str | os.PathLike, num_frames: int | None = None, fps: float = 2.0,
               min_frames: int = 4, max_frames: int = 16, min_pixels: int | None = None,
               max_pixels: int | None = None, backend: str = "auto", *, threads: int = 0,
               resize: str = "auto", fallback: str | None = None) -> VideoClip:
    """Sample frames of the video at `path` -> VideoClip (frames uint8 [T, H, W, 3] RGB).

    T: `num_frames` rounded to even, or duration * `fps` clamped to [min_frames,
    min(max_frames, total frames)] and floored to even; indices round(linspace(0, total-1, T)).
    Size: the source size when min_pixels and max_pixels are both None, else smart_resize into
    [min_pixels, max_pixels] per frame (sides multiples of 28, bicubic with antialias).
    backend: "auto" | "pyav" | "opencv" | "decord" | "dali"; DALI on a GPU returns CUDA frames. A
    named decoder is used as is (pass the one resolved at start-up: nothing is probed per clip);
    "auto" is resolved here, on every call, with its fallback (see `decoder_fallback`).
    fallback: the decoder for codecs that DALI cannot read here (`decoder_fallback`; None: none).
    threads: decoder threads (0: torch.get_num_threads(), which is 1 inside DataLoader workers).
    resize: the resize path, as in `videorft.loaders.preprocess.resize_video` ("auto", "native",
    "torch", "gpu").
    Raises VideoDecodeError (naming the file) for missing, unreadable, truncated or too-short media.
    """
    path = os.fspath(path)
    if backend == "auto":
        backend = resolve_decoder("auto")
        fallback = decoder_fallback("auto", backend)
    else:
        _check_name(backend)
    index = probe_video(path)
    name = _decoder_for(backend, fallback, index)
    n = _frame_count(path, index, num_frames, fps, min_frames, max_frames)
    indices = sample_indices(index.total_frames, n)
    frames = _decode_function(name)(path, index, indices, threads or torch.get_num_threads())
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


def load_video_from_config(path: str | os.PathLike, cfg, backend: str | None = None, *,
                           fallback: str | None = None, resize: str = "auto") -> VideoClip:
    """`load_video` with the frame and pixel settings of a VideoConfig (`cfg.video` of a RunConfig).

    backend overrides cfg.backend (the decoder resolved at start-up), with its `fallback`; resize:
    the resize path (the preprocessing path resolved at start-up).
    """
    low, high = video_pixel_bounds(cfg)
    return load_video(path, num_frames=cfg.num_frames, fps=cfg.fps, min_frames=cfg.min_frames,
                      max_frames=cfg.max_frames, min_pixels=low, max_pixels=high, backend=backend or cfg.backend,
                      fallback=fallback, resize=resize)
