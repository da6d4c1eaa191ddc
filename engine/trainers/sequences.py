"""Prompt + completion sequences of a GRPO step, and the row slicing used for micro-batches.

A prompt shows a video or an image (or neither). Each video is stored once and its vision-tower
features are shared by the prompt's G rows (`video_index`); image patches are simply repeated per
row, since images are small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from videorft.engine.models.frozen_vision import MediaFeatures, without_pixels
from videorft.engine.rollout.types import Rollouts
from videorft.engine.trainers.distributed import all_ranks_max
from videorft.kernels.grpo_math import token_weights
from videorft.loaders.qwen_inputs import IMAGE_TYPE, VIDEO_TYPE

TEXT_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids")


@dataclass
class SequenceBatch:
    """P prompts x G completions as model inputs."""

    inputs: dict[str, torch.Tensor]
    """input_ids / attention_mask / mm_token_type_ids [R, L+C]; pixel_values_videos, video_grid_thw,
    second_per_grid_ts for the distinct videos; pixel_values, image_grid_thw per image row."""
    row_video: torch.Tensor
    """long [R]: which stored video each row shows, -1 for rows without a video."""
    row_image: torch.Tensor
    """long [R]: which image block of inputs["pixel_values"] each row shows, -1 for none."""
    completion_ids: torch.Tensor
    """long [R, C]: the targets."""
    completion_mask: torch.Tensor
    """float [R, C]: 1 on tokens that count in the loss."""
    prompt_len: int
    """L: completions start at this column."""
    features: MediaFeatures | None = None
    """With a frozen vision tower: the stored videos' and image rows' features, in place of the
    pixel inputs (which are then left out of `inputs`)."""

    @property
    def rows(self) -> int:
        """R = P*G."""
        return self.completion_ids.shape[0]

    @property
    def video_index(self) -> torch.Tensor:
        """long [rows with a video]: the stored video of each such row, in row order."""
        return self.row_video[self.row_video >= 0]


def _blocks(pixels: torch.Tensor, grid: torch.Tensor) -> list[torch.Tensor]:
    """Split concatenated patch rows into one block per grid row."""
    return list(torch.split(pixels, grid.prod(dim=1).tolist()))


def _ordinal(has: torch.Tensor) -> torch.Tensor:
    """long [P]: k for the k-th prompt that has the medium, -1 for the others."""
    return torch.where(has, has.long().cumsum(0) - 1, torch.full_like(has, -1, dtype=torch.long))


def _take_images(source: dict[str, torch.Tensor], row_image: torch.Tensor, inputs: dict[str, torch.Tensor],
                 features: MediaFeatures | None = None) -> tuple[torch.Tensor, MediaFeatures | None]:
    """Put one image per image row, in row order, into `inputs` (its pixel block, or with
    `features` its encoded features); returns the new row_image and features.

    row_image [R] indexes the images of `source` (-1: no image); afterwards the k-th image row
    shows image k of inputs (and of the returned features).
    """
    picked = row_image[row_image >= 0].tolist()
    if picked:
        inputs["image_grid_thw"] = source["image_grid_thw"][picked]
        if features is None:
            blocks = _blocks(source["pixel_values"], source["image_grid_thw"])
            inputs["pixel_values"] = torch.cat([blocks[k] for k in picked])
    if features is not None:
        features = MediaFeatures(features.videos, features.pick(images=picked).images)     # per row, not per prompt
    return _ordinal(row_image >= 0), features


def build_sequences(model_inputs: dict[str, torch.Tensor], rollouts: Rollouts,
                    device: torch.device, features: MediaFeatures | None = None) -> SequenceBatch:
    """Join each prompt (left-padded, repeated G times) with its G completions (right-padded).

    features: the prompts' media encoded by a frozen vision tower (engine/models/frozen_vision.py);
    they replace the pixel inputs.
    """
    g = rollouts.group_size
    if features is not None:
        model_inputs = without_pixels(model_inputs)
        features = MediaFeatures(features.videos, features.images)      # indexed by stored video and image from here
    types = model_inputs["mm_token_type_ids"]
    completions = rollouts.completion_ids.to(device)                        # [P*G, C]
    c_mask = rollouts.completion_mask.to(device)

    def rep(x: torch.Tensor) -> torch.Tensor:
        return x.to(device).repeat_interleave(g, dim=0)

    inputs = {
        "input_ids": torch.cat([rep(model_inputs["input_ids"]), completions], dim=1),
        "attention_mask": torch.cat([rep(model_inputs["attention_mask"]), c_mask], dim=1),
        "mm_token_type_ids": torch.cat([rep(types), torch.zeros_like(completions)], dim=1),
    }
    for key in ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts"):
        if model_inputs.get(key) is not None:
            inputs[key] = model_inputs[key].to(device)
    row_video = _ordinal((types == VIDEO_TYPE).any(dim=1)).repeat_interleave(g).to(device)
    row_image = _ordinal((types == IMAGE_TYPE).any(dim=1)).repeat_interleave(g).to(device)
    if model_inputs.get("image_grid_thw") is not None:
        row_image, features = _take_images(model_inputs, row_image, inputs, features)   # one image per image row
        for key in ("pixel_values", "image_grid_thw"):
            if key in inputs:
                inputs[key] = inputs[key].to(device)
    prompt_len = int(model_inputs["input_ids"].shape[1])
    return SequenceBatch(inputs, row_video, row_image, completions, c_mask.float(), prompt_len, features)


def select_rows(batch: SequenceBatch, rows: torch.Tensor) -> SequenceBatch:
    """The sub-batch of `rows`, carrying only the media those rows show (re-indexed)."""
    inputs = {k: batch.inputs[k][rows] for k in TEXT_KEYS}
    row_video = batch.row_video[rows].clone()
    has = row_video >= 0
    used, row_video[has] = torch.unique(row_video[has], sorted=True, return_inverse=True)
    if "video_grid_thw" in batch.inputs:
        inputs["video_grid_thw"] = batch.inputs["video_grid_thw"][used]
        if "second_per_grid_ts" in batch.inputs:
            inputs["second_per_grid_ts"] = batch.inputs["second_per_grid_ts"][used]
    if "pixel_values_videos" in batch.inputs:
        pixels = batch.inputs["pixel_values_videos"]
        blocks = _blocks(pixels, batch.inputs["video_grid_thw"])
        inputs["pixel_values_videos"] = torch.cat([pixels[:0]] + [blocks[v] for v in used.tolist()])
    row_image = batch.row_image[rows]
    features = batch.features
    if features is not None:
        features = MediaFeatures(features.pick(videos=used.tolist()).videos, features.images)
    if "image_grid_thw" in batch.inputs:
        row_image, features = _take_images(batch.inputs, row_image, inputs, features)
    return SequenceBatch(inputs, row_video, row_image, batch.completion_ids[rows], batch.completion_mask[rows],
                         batch.prompt_len, features)


@dataclass(frozen=True)
class MicroBatch:
    """Rows of a step's SequenceBatch that go through one forward/backward pass together."""

    rows: torch.Tensor
    """long [r]: row indices into the step's SequenceBatch."""
    padding: bool = False
    """A stand-in that only keeps this rank in step with ranks that have more chunks: it runs a real
    forward/backward (ZeRO-3 gathers are collective) but carries no loss and no log-probs."""


def micro_batches(n_rows: int, micro_rows: int, info=None, whole: int = 1) -> list[MicroBatch]:
    """Chunks of at most `micro_rows` rows (0 means all rows at once), as many on every rank.

    whole: chunks hold whole blocks of this many rows (GRPO groups, when they share a prompt):
    micro_rows is rounded up to a multiple of it. info: the run's DistInfo; with several ranks, a
    rank with fewer rows (a sample lost to bad media) appends padding chunks until it has as many
    chunks as the busiest rank.
    """
    size = n_rows if micro_rows <= 0 else -(-micro_rows // whole) * whole
    chunks = [MicroBatch(torch.arange(i, min(i + size, n_rows))) for i in range(0, n_rows, size)]
    count = all_ranks_max(len(chunks), info) if info is not None else len(chunks)
    return chunks + [MicroBatch(chunks[0].rows[:whole], padding=True)] * (count - len(chunks))


def micro_batch_shares(mask: torch.Tensor, chunks: Sequence[MicroBatch], loss_agg: str,
                       num_tokens: torch.Tensor | None = None, max_completion_length: int | None = None
                       ) -> list[float]:
    """Weight of each chunk's own loss in the full-batch objective, from the rows the step has.

    mask [R, C]. The fused loss normalises a chunk by its own rows (its sequences, tokens or rows,
    per `loss_agg`); the share rescales that to the full batch, so the chunks' weighted losses sum
    to the loss of all R rows at once: share = sum of the chunk's full-batch token weights / sum of
    its own token weights (kernels' token_weights, with the loss's num_tokens and
    max_completion_length: a fixed divisor gives every chunk share 1). Padding chunks get 0.
    """
    full = token_weights(mask, loss_agg, num_tokens, max_completion_length)   # [R, C]
    shares = []
    for chunk in chunks:
        own = token_weights(mask[chunk.rows], loss_agg, num_tokens, max_completion_length).sum()
        shares.append(0.0 if chunk.padding or own <= 0 else float(full[chunk.rows].sum() / own))
    return shares
