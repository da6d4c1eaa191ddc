"""Encode uint8 frames into real video files with PyAV (H.264 mp4, VP9/VP8 webm, HEVC mp4).

Tests and benchmarks write their own small clips with this, so no media file is checked in
and every decoder is exercised on real encoded streams; the synthetic world writes its videos with
it too, with settings that make the output a pure function of the frames.
"""

from __future__ import annotations

import itertools
import os
from typing import Iterable, Iterator, Mapping

import av
import numpy as np

CODECS = {"h264": ("libx264", ".mp4"), "hevc": ("libx265", ".mp4"), "vp9": ("libvpx-vp9", ".webm"),
          "vp8": ("libvpx", ".webm")}
"""Codec name -> (PyAV encoder, file suffix)."""


def pattern_frames(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 [n, height, width, 3] frames that differ clearly from each other.

    Smooth colour ramps that shift with the frame index plus a bright bar whose position
    encodes the index, so a decoded frame can be matched to its source index despite lossy
    compression.
    """
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, 3)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    out = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        t = i / max(n, 1)
        for c in range(3):
            wave = np.sin(2 * np.pi * (x * (c + 1) + y * (2 - c) + t) + phase[c])
            out[i, :, :, c] = (127.5 + 100 * wave).astype(np.uint8)
        bar = (i * max(width // n, 2)) % max(width - 4, 1)
        out[i, :, bar:bar + 4] = 255
    return out


def panning_frames(n: int, height: int, width: int, seed: int = 0) -> Iterator[np.ndarray]:
    """n uint8 [height, width, 3] frames of a camera panning over a wide pattern (cheap to make).

    A generator, so long high-resolution clips never sit in memory at once.
    """
    scene = pattern_frames(1, height, 2 * width, seed)[0]                    # [H, 2W, 3]
    step = max(1, width // max(n, 1))
    for i in range(n):
        x = (i * step) % width
        yield scene[:, x:x + width]


def encode_video(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: int = 24,
                 codec: str = "h264", gop: int | None = None, crf: int = 18, faststart: bool = False,
                 threads: int = 1, options: Mapping[str, str] | None = None) -> str:
    """Write RGB uint8 frames ([T, H, W, 3] array or an iterable of [H, W, 3]) to `path`.

    codec: "h264", "hevc", "vp9" or "vp8". gop: at most this many frames between keyframes (None:
    encoder default; for H.264 exactly this many, unless `options` replace x264-params). crf:
    quality (lower is closer to the source). faststart: put the MP4 index before the media data (a
    file cut short then still opens, which tests use). threads: encoder threads. options: FFmpeg
    encoder options set over the defaults, key by key (the synthetic world's reproducible
    settings, loaders/synth/encode.py). H and W must be even (yuv420p). Returns the path.
    """
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {sorted(CODECS)}, got {codec!r}")
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError("no frames to encode")
    height, width = _check_frame(first)
    path = os.fspath(path)
    container_options = {"movflags": "faststart"} if faststart else {}
    with av.open(path, "w", container_options=container_options) as container:
        stream = container.add_stream(CODECS[codec][0], rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = threads    # frame-threaded encoders reorder their decisions
        if gop is not None:
            stream.codec_context.gop_size = gop
        stream.options = {**_quality_options(codec, crf, gop), **(options or {}), "threads": str(threads)}
        for frame in itertools.chain([first], frames):
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _check_frame(frame: np.ndarray) -> tuple[int, int]:
    """(height, width) of an RGB uint8 [H, W, 3] frame with even sides (yuv420p); else ValueError."""
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [H, W, 3] RGB, got {frame.dtype} {tuple(frame.shape)}")
    height, width = frame.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"frame size {width}x{height} must be even for yuv420p")
    return height, width


def _quality_options(codec: str, crf: int, gop: int | None) -> dict[str, str]:
    if codec in ("vp9", "vp8"):
        opts = {"crf": str(crf), "b": "0", "deadline": "realtime", "cpu-used": "8"}
    else:
        opts = {"crf": str(crf), "preset": "ultrafast" if codec == "hevc" else "veryfast"}
        if codec == "hevc":
            opts["x265-params"] = "log-level=error"
    if gop is not None and codec == "h264":
        opts["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
    return opts
