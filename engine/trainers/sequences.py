"""Prompt + completion sequences of a GRPO step, and the row slicing used for micro-batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from videorft.engine.rollout.types import Rollouts

VIDEO_KEYS = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")


@dataclass
class SequenceBatch:
    """P prompts x G completions as model inputs; each prompt's video is stored once."""

    inputs: dict[str, torch.Tensor]
    """input_ids / attention_mask / mm_token_type_ids [P*G, L+C]; video tensors for the P videos."""
    video_index: torch.Tensor
    """long [P*G]: which of the P videos each row shows."""
    completion_ids: torch.Tensor
    """long [P*G, C]: the targets."""
    completion_mask: torch.Tensor
    """float [P*G, C]: 1 on tokens that count in the loss."""
    prompt_len: int
    """L: completions start at this column."""

    @property
    def rows(self) -> int:
        """P*G."""
        return self.completion_ids.shape[0]


def _video_patch_offsets(grid: torch.Tensor) -> torch.Tensor:
    counts = grid.prod(dim=1)                                               # [P] patch rows per video
    return torch.cat([counts.new_zeros(1), counts.cumsum(0)])


def build_sequences(model_inputs: dict[str, torch.Tensor], rollouts: Rollouts,
                    device: torch.device) -> SequenceBatch:
    """Join each prompt (left-padded, repeated G times) with its G completions (right-padded)."""
    g = rollouts.group_size
    ids = model_inputs["input_ids"]
    p, prompt_len = ids.shape
    completions = rollouts.completion_ids.to(device)                        # [P*G, C]
    c_mask = rollouts.completion_mask.to(device)

    def rep(x: torch.Tensor) -> torch.Tensor:
        return x.to(device).repeat_interleave(g, dim=0)

    inputs = {
        "input_ids": torch.cat([rep(ids), completions], dim=1),
        "attention_mask": torch.cat([rep(model_inputs["attention_mask"]), c_mask], dim=1),
        "mm_token_type_ids": torch.cat([rep(model_inputs["mm_token_type_ids"]),
                                        torch.zeros_like(completions)], dim=1),
    }
    for key in VIDEO_KEYS:
        if model_inputs.get(key) is not None:
            inputs[key] = model_inputs[key].to(device)
    video_index = torch.arange(p, device=device).repeat_interleave(g)
    return SequenceBatch(inputs, video_index, completions, c_mask.float(), prompt_len)


def select_rows(batch: SequenceBatch, rows: torch.Tensor) -> SequenceBatch:
    """The sub-batch of `rows`, carrying only the videos those rows show (re-indexed)."""
    used, new_index = torch.unique(batch.video_index[rows], sorted=True, return_inverse=True)
    inputs = {k: batch.inputs[k][rows] for k in ("input_ids", "attention_mask", "mm_token_type_ids")}
    if "pixel_values_videos" in batch.inputs:
        grid = batch.inputs["video_grid_thw"]
        offsets = _video_patch_offsets(grid)
        pixels = batch.inputs["pixel_values_videos"]
        inputs["pixel_values_videos"] = torch.cat([pixels[offsets[v]:offsets[v + 1]] for v in used.tolist()])
        inputs["video_grid_thw"] = grid[used]
        if "second_per_grid_ts" in batch.inputs:
            inputs["second_per_grid_ts"] = batch.inputs["second_per_grid_ts"][used]
    return SequenceBatch(inputs, new_index, batch.completion_ids[rows], batch.completion_mask[rows],
                         batch.prompt_len)


def micro_batches(n_rows: int, micro_rows: int) -> list[torch.Tensor]:
    """Row index chunks of at most `micro_rows` (0 means all rows at once)."""
    size = n_rows if micro_rows <= 0 else micro_rows
    return [torch.arange(i, min(i + size, n_rows)) for i in range(0, n_rows, size)]
