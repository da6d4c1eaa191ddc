"""Write uint8 frames to a video file with PyAV: H.264 in mp4 (default) or VP9 in webm.

The encoders run single-threaded with fixed settings and no rate-control look-ahead, so the same
frames always give the same file. A short GOP keeps seeking cheap for decoders that sample a
few frames.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

CODECS = {
    # x264's look-ahead (rc-lookahead, mb-tree) made about 1 clip in 20 decode differently from run
    # to run even single-threaded; without it the output is reproducible.
    "h264": ("libx264", ".mp4", {"crf": "18", "preset": "veryfast", "x264-params": "rc-lookahead=0:mbtree=0"}),
    "vp9": ("libvpx-vp9", ".webm", {"crf": "24", "b": "0", "deadline": "realtime", "cpu-used": "8",
                                    "row-mt": "0"}),
}
"""codec name -> (FFmpeg encoder, file suffix, encoder options)."""
GOP = 16
"""Frames between key frames."""


def video_suffix(codec: str) -> str:
    """File suffix for `codec` ("h264" -> ".mp4", "vp9" -> ".webm")."""
    if codec not in CODECS:
        raise ValueError(f"synth.codec: unknown codec {codec!r}; choose from {sorted(CODECS)}")
    return CODECS[codec][1]


def write_video(frames: np.ndarray, path: str | Path, fps: int, codec: str = "h264") -> None:
    """Encode uint8 frames [T, H, W, 3] (H and W even) at `fps` into `path`."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"frame size {width}x{height} must be even for yuv420p")
    video_suffix(codec)  # validates the codec name
    encoder, _, options = CODECS[codec]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(encoder, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1      # frame-threaded encoders reorder their decisions
        stream.codec_context.gop_size = GOP
        stream.options = {**options, "threads": "1"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
