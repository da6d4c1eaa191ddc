"""Turn a chat-templated prompt and preprocessed video into Qwen-VL model inputs.

The chat template writes one `<|vision_start|><|video_pad|><|vision_end|>` block per video; the
model family (loaders/family.py) expands each to the clip's merged visual tokens, and
`mm_token_type_ids` marks them. Qwen2.5-VL silently drops its 3-D M-RoPE positions when that
tensor is missing, so every model call in the engine passes it.
"""

from __future__ import annotations

from typing import Sequence

import torch

VIDEO_PAD = "<|video_pad|>"
IMAGE_PAD = "<|image_pad|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
TEXT_TYPE, IMAGE_TYPE, VIDEO_TYPE = 0, 1, 2


def video_token_count(grid_thw: Sequence[int], merge_size: int = 2) -> int:
    """Language-model tokens of one video: gt * gh * gw / merge_size**2."""
    gt, gh, gw = (int(v) for v in grid_thw)
    return gt * gh * gw // (merge_size * merge_size)


def token_type_ids(input_ids: torch.Tensor, image_token_id: int, video_token_id: int) -> torch.Tensor:
    """mm_token_type_ids [.., T]: 0 text, 1 image pad, 2 video pad (same shape as input_ids)."""
    return ((input_ids == image_token_id).long() * IMAGE_TYPE
            + (input_ids == video_token_id).long() * VIDEO_TYPE)


def left_pad(rows: Sequence[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack 1-D id rows into [B, T] with padding on the left; returns (ids, attention_mask)."""
    width = max(int(r.numel()) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - row.numel():] = row
        mask[i, width - row.numel():] = 1
    return ids, mask
