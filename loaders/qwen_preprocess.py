"""Qwen2-VL / Qwen2.5-VL visual preprocessing in plain PyTorch (no torchvision).

Frames become the flattened patch rows that the vision tower consumes, laid out exactly as
transformers' Qwen2-VL video processor lays them out: temporal pairs of 14x14 patches, ordered
so that each 2x2 block of patches (one merged language-model token) is contiguous.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# CLIP normalisation used by every Qwen-VL checkpoint (OPENAI_CLIP_MEAN / STD).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_ASPECT_RATIO = 200


@dataclass(frozen=True)
class PatchSpec:
    """Geometry of the vision tower's input."""

    patch_size: int = 14
    """Side of one square patch in pixels."""
    merge_size: int = 2
    """Patches merged per side into one language-model token."""
    temporal_patch_size: int = 2
    """Consecutive frames folded into one patch."""

    @property
    def factor(self) -> int:
        """Resized sides must be multiples of this (28 for Qwen2/2.5-VL)."""
        return self.patch_size * self.merge_size


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56,
                 max_pixels: int = 28 * 28 * 1280) -> tuple[int, int]:
    """Target (height, width): multiples of `factor`, aspect ratio kept, area in [min, max] pixels.

    Same rule as qwen-vl-utils: round each side to the factor, then shrink (floor) or grow
    (ceil) both sides by one common scale when the area leaves the range.
    """
    if min(height, width) <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(f"aspect ratio of {height}x{width} exceeds {MAX_ASPECT_RATIO}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def resize_frames(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic, antialiased resize of uint8 frames [T, H, W, 3] -> uint8 [T, h, w, 3]."""
    if tuple(frames.shape[1:3]) == tuple(size):
        return frames
    x = frames.permute(0, 3, 1, 2).float()                                  # [T, 3, H, W]
    x = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def patchify(frames: torch.Tensor, spec: PatchSpec = PatchSpec(),
             mean: tuple[float, ...] = CLIP_MEAN, std: tuple[float, ...] = CLIP_STD,
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalise and cut frames into the vision tower's patch rows.

    frames: uint8 [T, H, W, 3] with H, W multiples of spec.factor.
    Returns pixel_values float32 [gt*gh*gw, 3*tps*p*p] and grid_thw long [3] = (gt, gh, gw);
    the language model sees gt*gh*gw / merge_size**2 tokens. An odd frame count is padded by
    repeating the last frame, as the reference processor does.
    """
    t, h, w, c = frames.shape
    p, m, tps = spec.patch_size, spec.merge_size, spec.temporal_patch_size
    if h % spec.factor or w % spec.factor:
        raise ValueError(f"frame size {h}x{w} is not a multiple of {spec.factor}; resize first")
    mean_t = torch.tensor(mean, dtype=torch.float32, device=frames.device).view(1, c, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=frames.device).view(1, c, 1, 1)
    x = frames.permute(0, 3, 1, 2).float().div_(255.0).sub_(mean_t).div_(std_t)  # [T, C, H, W]
    if t % tps:
        x = torch.cat([x, x[-1:].expand(tps - t % tps, -1, -1, -1)])
    gt, gh, gw = x.shape[0] // tps, h // p, w // p
    x = x.view(gt, tps, c, gh // m, m, p, gw // m, m, p)
    # -> [gt, gh/m, gw/m, m, m, C, tps, p, p]: one merged token's 2x2 patches are adjacent rows
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    pixel_values = x.reshape(gt * gh * gw, c * tps * p * p)
    return pixel_values, torch.tensor([gt, gh, gw], dtype=torch.long)


def preprocess_video(frames: torch.Tensor, spec: PatchSpec = PatchSpec(), min_pixels: int | None = None,
                     max_pixels: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 frames [T, H, W, 3] -> (pixel_values [N, 3*tps*p*p], grid_thw [3]).

    Frames are smart-resized into [min_pixels, max_pixels] (sides rounded to spec.factor) unless
    they already sit on that grid.
    """
    _, h, w, _ = frames.shape
    lo = min_pixels if min_pixels is not None else spec.factor ** 2
    hi = max_pixels if max_pixels is not None else max(h * w, lo)
    size = smart_resize(h, w, spec.factor, lo, hi)
    return patchify(resize_frames(frames, size), spec)
