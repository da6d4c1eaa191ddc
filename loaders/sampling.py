"""Which frames of a video to keep: the frame-count and index rules of qwen-vl-utils.

Pure functions of (total frames, source fps, request), so every decoder samples the same
frames and the rules can be tested without any media.
"""

from __future__ import annotations

import math

import torch

FRAME_FACTOR = 2
"""Frame counts are multiples of this (Qwen-VL folds consecutive frame pairs into one patch)."""


def round_to_factor(n: float, factor: int = FRAME_FACTOR) -> int:
    """Nearest multiple of `factor` (Python rounding: halves go to the even quotient)."""
    return round(n / factor) * factor


def ceil_to_factor(n: float, factor: int = FRAME_FACTOR) -> int:
    """Smallest multiple of `factor` that is >= n."""
    return math.ceil(n / factor) * factor


def floor_to_factor(n: float, factor: int = FRAME_FACTOR) -> int:
    """Largest multiple of `factor` that is <= n."""
    return math.floor(n / factor) * factor


def smart_nframes(total_frames: int, video_fps: float, num_frames: int | None = None, fps: float = 2.0,
                  min_frames: int = 4, max_frames: int = 16) -> int:
    """How many frames to sample from a video of `total_frames` frames at `video_fps`.

    With `num_frames` given: that count rounded to an even number. Otherwise the clip's
    duration times `fps`, clamped to [ceil_even(min_frames), floor_even(max_frames)] and to
    `total_frames`, then floored to even. Raises ValueError when the result is not in
    [2, total_frames] (a clip shorter than the request).
    """
    if total_frames <= 0:
        raise ValueError(f"total_frames must be positive, got {total_frames}")
    if num_frames is not None:
        n = round_to_factor(num_frames)
    else:
        if video_fps <= 0:
            raise ValueError(f"video_fps must be positive, got {video_fps}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        lo = ceil_to_factor(min_frames)
        hi = floor_to_factor(max_frames)
        want = total_frames / video_fps * fps
        n = floor_to_factor(min(max(want, lo), hi, total_frames))
    if not FRAME_FACTOR <= n <= total_frames:
        raise ValueError(f"the number of sampled frames must lie in [{FRAME_FACTOR}, {total_frames}] "
                         f"(frames in the video), got {n}")
    return n


def sample_indices(total_frames: int, n: int) -> list[int]:
    """`n` source indices spread uniformly over the whole clip: round(linspace(0, total-1, n)).

    Computed with the same float32 torch.linspace and round-half-to-even as qwen-vl-utils, so
    the chosen frames agree with the reference to the index.
    """
    if n <= 0 or total_frames <= 0:
        raise ValueError(f"need n > 0 and total_frames > 0, got n={n}, total_frames={total_frames}")
    return torch.linspace(0, total_frames - 1, n).round().long().tolist()
