"""The synthetic world's video settings: H.264 in mp4 (default) or VP9 in webm, reproducible.

The encoders run single-threaded with fixed settings and no rate-control look-ahead, so the same
frames always give the same file. A short GOP keeps seeking cheap for decoders that sample a
few frames. The encoding itself is loaders/video_writer.encode_video.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from videorft.loaders.video_writer import CODECS, encode_video

SETTINGS = {
    # x264's look-ahead (rc-lookahead, mb-tree) made about 1 clip in 20 decode differently from run
    # to run even single-threaded; without it the output is reproducible. Replacing x264-params
    # also leaves x264 free to place extra keyframes at scene cuts (GOP is an upper bound here).
    "h264": (18, {"x264-params": "rc-lookahead=0:mbtree=0"}),
    "vp9": (24, {"row-mt": "0"}),
}
"""codec name -> (crf, encoder options over encode_video's defaults)."""
GOP = 16
"""At most this many frames between key frames."""


def video_suffix(codec: str) -> str:
    """File suffix for `codec` ("h264" -> ".mp4", "vp9" -> ".webm")."""
    if codec not in SETTINGS:
        raise ValueError(f"synth.codec: unknown codec {codec!r}; choose from {sorted(SETTINGS)}")
    return CODECS[codec][1]


def write_video(frames: np.ndarray, path: str | Path, fps: int, codec: str = "h264") -> None:
    """Encode uint8 frames [T, H, W, 3] (H and W even) at `fps` into `path`, reproducibly."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [T, H, W, 3], got {frames.dtype} {frames.shape}")
    video_suffix(codec)
    crf, options = SETTINGS[codec]
    encode_video(path, frames, fps, codec, gop=GOP, crf=crf, threads=1, options=options)
