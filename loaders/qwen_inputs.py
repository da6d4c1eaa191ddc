"""Turn a chat-templated prompt and preprocessed video into Qwen-VL model inputs.

The chat template writes one `<|vision_start|><|video_pad|><|vision_end|>` block per video;
here each `<|video_pad|>` is expanded to the number of merged visual tokens, and
`mm_token_type_ids` marks them. Qwen2.5-VL silently drops its 3-D M-RoPE positions when that
tensor is missing, so every model call in the engine passes it.
"""

from __future__ import annotations

from typing import Literal, Sequence

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


def expand_video_placeholders(text: str, grid_thws: Sequence[Sequence[int]], merge_size: int = 2,
                              family: Literal["qwen2_vl", "qwen2_5_vl", "qwen3_vl"] = "qwen2_5_vl",
                              timestamps: Sequence[Sequence[float]] | None = None) -> str:
    """Expand the k-th video placeholder of `text` for the k-th grid.

    Qwen2/2.5-VL: one block of gt*gh*gw/merge**2 pad tokens. Qwen3-VL: one
    `<t seconds><|vision_start|>pads<|vision_end|>` block per temporal patch, with `timestamps`
    giving the start time of each temporal patch of each video.
    """
    block = f"{VISION_START}{VIDEO_PAD}{VISION_END}"
    pieces = text.split(block)
    if len(pieces) - 1 != len(grid_thws):
        raise ValueError(f"prompt has {len(pieces) - 1} video placeholders for {len(grid_thws)} videos")
    out = [pieces[0]]
    for k, grid in enumerate(grid_thws):
        if family == "qwen3_vl":
            gt, gh, gw = (int(v) for v in grid)
            per_frame = gh * gw // (merge_size * merge_size)
            times = timestamps[k] if timestamps is not None else [float(i) for i in range(gt)]
            out.append("".join(f"<{times[i]:.1f} seconds>{VISION_START}{VIDEO_PAD * per_frame}{VISION_END}"
                               for i in range(gt)))
        else:
            out.append(f"{VISION_START}{VIDEO_PAD * video_token_count(grid, merge_size)}{VISION_END}")
        out.append(pieces[k + 1])
    return "".join(out)


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
