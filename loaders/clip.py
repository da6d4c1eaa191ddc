"""The decoded video that flows through a training step: decoded once, shared by all consumers."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class VideoClip:
    """Frames sampled from one video, with where and when they came from.

    The same clip feeds the policy's preprocessing and the semantic reward, so a video is
    decoded once per prompt.
    """

    frames: torch.Tensor
    """uint8 [T, H, W, 3] RGB frames (on CPU, or on the GPU when DALI decoded them there)."""
    indices: list[int]
    """Source frame index of each sampled frame."""
    timestamps: list[float]
    """Presentation time of each sampled frame, in seconds."""
    fps: float
    """Frame rate of the source video."""
    total_frames: int = 0
    """Frames in the source video."""
    path: str = ""
    """Where the video was read from (for logs and errors)."""
    extra: dict = field(default_factory=dict)
    """Backend-specific details (decoder used, codec), for logging only."""

    @property
    def sample_fps(self) -> float:
        """Effective sampling rate: sampled frames per second of video (drives M-RoPE time ids)."""
        if self.total_frames <= 0 or self.fps <= 0:
            return 0.0
        return len(self.indices) / (self.total_frames / self.fps)

    def __post_init__(self) -> None:
        if self.frames.dtype != torch.uint8 or self.frames.dim() != 4 or self.frames.shape[-1] != 3:
            raise ValueError(f"VideoClip.frames must be uint8 [T, H, W, 3], got {self.frames.dtype} "
                             f"{tuple(self.frames.shape)}")
        if len(self.indices) != self.frames.shape[0] or len(self.timestamps) != self.frames.shape[0]:
            raise ValueError("VideoClip needs one index and one timestamp per frame")
