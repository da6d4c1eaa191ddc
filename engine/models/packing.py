"""Pack several Qwen-VL samples (each with its own videos, prompt and response) into one row.

A packed row has no padding: token ids, labels and loss masks are concatenated, the videos'
patch rows and grids are concatenated in sample order, and each sample keeps the 3-D M-RoPE
positions the model's own `get_rope_index` gives it alone. The model learns the boundaries from
the position ids alone:

  position_ids [4, 1, T]: row 0 holds text positions that restart at 0 for every sample, rows 1-3
  the M-RoPE (time, height, width) positions. The Qwen-VL text models split off row 0 and use it
  to find the samples (a block-diagonal causal mask with "sdpa", cu_seqlens with flash-attn and
  with the engine's "videorft_varlen"). The vision tower derives its own cu_seqlens from
  video_grid_thw, so videos never attend to each other either.

Pass no attention_mask with a packed row: with a mask, transformers ignores the packing.
A trainer's step: `packed = pack_samples(samples, model)`,
`hidden = model.model(**packed.model_inputs()).last_hidden_state` ([1, T, H]), targets and masks
from `shift_left_within`, then `unpack` / `unpack_padded` to get per-sample results back.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping, Sequence

import torch

from videorft.engine.models.varlen_attention import cu_seqlens_from_lengths, segment_ids
from videorft.loaders.family import family_of

PER_TOKEN_FIELDS = ("input_ids", "mm_token_type_ids", "labels", "loss_mask")
VISUAL_FIELDS = (("pixel_values_videos", "video_grid_thw", 2), ("pixel_values", "image_grid_thw", 1))


@dataclass
class PackedBatch:
    """One packed row of n samples (T tokens in all) and everything the model needs for it."""

    input_ids: torch.Tensor
    """long [1, T]: the samples' token ids, concatenated."""
    position_ids: torch.Tensor
    """long [4, 1, T]: text positions (restarting at 0 per sample), then M-RoPE time/height/width."""
    mm_token_type_ids: torch.Tensor
    """long [1, T]: 0 text, 1 image pad, 2 video pad."""
    cu_seqlens: torch.Tensor
    """int32 [n + 1]: sample i is tokens cu_seqlens[i]:cu_seqlens[i + 1]."""
    rope_deltas: torch.Tensor
    """long [n]: per sample, max M-RoPE position + 1 - length (continues positions when generating)."""
    pixel_values_videos: torch.Tensor | None = None
    """[sum of patches, C*tps*p*p]: every video's patch rows, in sample order."""
    video_grid_thw: torch.Tensor | None = None
    """long [num_videos, 3]: (t, h, w) patch grid of each video, in sample order."""
    pixel_values: torch.Tensor | None = None
    """Image patch rows, in sample order (when samples carry images)."""
    image_grid_thw: torch.Tensor | None = None
    """long [num_images, 3]."""
    labels: torch.Tensor | None = None
    """[1, T] when every sample carried labels."""
    loss_mask: torch.Tensor | None = None
    """[1, T] when every sample carried a loss mask."""

    @property
    def lengths(self) -> list[int]:
        """Tokens of each sample."""
        return (self.cu_seqlens[1:] - self.cu_seqlens[:-1]).tolist()

    @property
    def max_seqlen(self) -> int:
        """Longest sample."""
        return max(self.lengths)

    def model_inputs(self) -> dict[str, Any]:
        """Keyword arguments for the model's forward.

        No attention_mask, and use_cache=False: transformers builds the block-diagonal mask of
        "sdpa"/"eager" from the text positions only when there is neither a mask nor a cache
        (the engine's "videorft_varlen" reads the positions either way).
        """
        inputs = {"input_ids": self.input_ids, "position_ids": self.position_ids,
                  "mm_token_type_ids": self.mm_token_type_ids, "use_cache": False}
        for name in ("pixel_values_videos", "video_grid_thw", "pixel_values", "image_grid_thw"):
            if getattr(self, name) is not None:
                inputs[name] = getattr(self, name)
        return inputs

    def to(self, device: torch.device | str) -> "PackedBatch":
        """A copy with every tensor on `device`."""
        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)
                                if getattr(self, f.name) is not None})


def _row(value: torch.Tensor, name: str, index: int) -> torch.Tensor:
    value = torch.as_tensor(value)
    if value.dim() == 2 and value.shape[0] == 1:
        value = value[0]
    if value.dim() != 1:
        raise ValueError(f"sample {index}: {name} must be [L] or [1, L], got shape {tuple(value.shape)}")
    return value


def _token_fields(sample: Mapping[str, Any], index: int) -> dict[str, torch.Tensor]:
    """The per-token tensors of one sample as [L], padding (attention_mask 0) removed."""
    for required in ("input_ids", "mm_token_type_ids"):
        if sample.get(required) is None:
            hint = " (without it Qwen2.5-VL silently drops M-RoPE)" if required == "mm_token_type_ids" else ""
            raise KeyError(f"sample {index}: {required} is missing{hint}")
    tokens = {k: _row(sample[k], k, index) for k in PER_TOKEN_FIELDS if sample.get(k) is not None}
    length = tokens["input_ids"].numel()
    for name, value in tokens.items():
        if value.numel() != length:
            raise ValueError(f"sample {index}: {name} has {value.numel()} entries for {length} input_ids")
    if sample.get("attention_mask") is not None:
        keep = _row(sample["attention_mask"], "attention_mask", index).bool()
        if keep.numel() != length:
            raise ValueError(f"sample {index}: attention_mask has {keep.numel()} entries for {length} input_ids")
        tokens = {k: v[keep] for k, v in tokens.items()}
    if tokens["input_ids"].numel() == 0:
        raise ValueError(f"sample {index}: no tokens to pack")
    return tokens


def _visual_fields(sample: Mapping[str, Any], types: torch.Tensor, merge: int, index: int) -> dict:
    """Patch rows and grids [k, 3] of one sample, checked against its placeholder tokens."""
    found = {}
    for pixels_key, grid_key, type_id in VISUAL_FIELDS:
        n_tokens = int((types == type_id).sum())
        if sample.get(grid_key) is None:
            if n_tokens:
                raise ValueError(f"sample {index}: {n_tokens} placeholder tokens of type {type_id} but no {grid_key}")
            continue
        grid = torch.as_tensor(sample[grid_key]).long().reshape(-1, 3)          # [k, 3]
        pixels = sample.get(pixels_key)
        if pixels is None or pixels.shape[0] != int(grid.prod(-1).sum()):
            rows = None if pixels is None else pixels.shape[0]
            raise ValueError(f"sample {index}: {pixels_key} has {rows} patch rows, {grid_key} "
                             f"{grid.tolist()} needs {int(grid.prod(-1).sum())}")
        expected = int(grid.prod(-1).sum()) // (merge * merge)
        if n_tokens != expected:
            raise ValueError(f"sample {index}: {n_tokens} placeholder tokens of type {type_id} in "
                             f"mm_token_type_ids, {grid_key} {grid.tolist()} needs {expected}")
        found[pixels_key], found[grid_key] = pixels, grid
    return found


def _sample_positions(rope_index, tokens: dict, visual: dict, sample: Mapping[str, Any]):
    """([4, L] positions with the text row first, rope delta) of one sample on its own."""
    kwargs = {"image_grid_thw": visual.get("image_grid_thw"), "video_grid_thw": visual.get("video_grid_thw")}
    if sample.get("second_per_grid_ts") is not None:
        kwargs["second_per_grid_ts"] = torch.as_tensor(sample["second_per_grid_ts"]).reshape(-1)
    ids, types = tokens["input_ids"][None], tokens["mm_token_type_ids"][None]          # [1, L]
    mrope, delta = rope_index(ids, types, **kwargs)                                       # [3, 1, L], [1, 1]
    text = torch.arange(ids.shape[1], device=ids.device)[None]                            # [1, L]
    return torch.cat([text, mrope[:, 0].to(text.dtype)]), delta.reshape(())


def pack_samples(samples: Sequence[Mapping[str, Any]], model) -> PackedBatch:
    """Pack `samples` into one row for `model` (a Qwen2-VL / Qwen2.5-VL / Qwen3-VL transformers model).

    Each sample maps names to tensors: input_ids [L] (or [1, L]) and mm_token_type_ids [L] are
    required; labels [L], loss_mask [L], attention_mask [L] (0 = padding, dropped),
    pixel_values_videos [N, P] with video_grid_thw [k, 3], second_per_grid_ts [k], and
    pixel_values with image_grid_thw are optional. Placeholder counts are checked against the
    grids. labels / loss_mask are kept only when every sample has them.
    """
    if not samples:
        raise ValueError("pack_samples needs at least one sample")
    rope_index = family_of(model.config).rope_index(model)
    merge = model.config.vision_config.spatial_merge_size
    tokens, visuals, positions, deltas = [], [], [], []
    for index, sample in enumerate(samples):
        tok = _token_fields(sample, index)
        vis = _visual_fields(sample, tok["mm_token_type_ids"], merge, index)
        pos, delta = _sample_positions(rope_index, tok, vis, sample)
        tokens.append(tok)
        visuals.append(vis)
        positions.append(pos)
        deltas.append(delta)
    packed = {name: torch.cat([t[name] for t in tokens])[None] for name in PER_TOKEN_FIELDS
              if all(name in t for t in tokens)}
    for pixels_key, grid_key, _ in VISUAL_FIELDS:
        present = [v for v in visuals if grid_key in v]
        if present:
            packed[pixels_key] = torch.cat([v[pixels_key] for v in present])
            packed[grid_key] = torch.cat([v[grid_key] for v in present])
    return PackedBatch(position_ids=torch.cat(positions, dim=1)[:, None],          # [4, 1, T]
                       cu_seqlens=cu_seqlens_from_lengths([t["input_ids"].numel() for t in tokens]),
                       rope_deltas=torch.stack(deltas).long(), **packed)


def _token_major(x: torch.Tensor, total: int) -> torch.Tensor:
    """[1, T, ...] or [T, ...] -> [T, ...]."""
    if x.dim() >= 2 and x.shape[0] == 1 and x.shape[1] == total:
        return x[0]
    if x.shape[0] == total:
        return x
    raise ValueError(f"expected [1, {total}, ...] or [{total}, ...], got shape {tuple(x.shape)}")


def unpack(x: torch.Tensor, cu_seqlens: torch.Tensor) -> list[torch.Tensor]:
    """Split a packed tensor [1, T, ...] or [T, ...] (hidden states, log-probs) into [L_i, ...] per sample."""
    x = _token_major(x, int(cu_seqlens[-1]))
    return list(torch.split(x, (cu_seqlens[1:] - cu_seqlens[:-1]).tolist(), dim=0))


def unpack_padded(x: torch.Tensor, cu_seqlens: torch.Tensor, pad_value: float = 0.0
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed [1, T, ...] or [T, ...] -> (right-padded [n, Lmax, ...], bool mask [n, Lmax]); differentiable."""
    total = int(cu_seqlens[-1])
    x = _token_major(x, total)
    cu = cu_seqlens.to(x.device).long()
    lengths = cu[1:] - cu[:-1]                                                   # [n]
    seg = segment_ids(cu)                                                        # [T]
    pos = torch.arange(total, device=x.device) - cu[seg]                         # [T]
    padded = x.new_full((lengths.numel(), int(lengths.max()), *x.shape[1:]), pad_value)
    padded = padded.index_put((seg, pos), x)                                     # [n, Lmax, ...]
    mask = torch.zeros(padded.shape[:2], dtype=torch.bool, device=x.device).index_put(
        (seg, pos), torch.ones(total, dtype=torch.bool, device=x.device))
    return padded, mask


def shift_left_within(x: torch.Tensor, cu_seqlens: torch.Tensor, fill: float | int = 0) -> torch.Tensor:
    """y[t] = x[t + 1] inside each sample and `fill` at each sample's last token; same shape as x.

    With x = input_ids this gives next-token targets for the packed row (hidden state t predicts
    token t + 1 of the same sample, never the first token of the next one); with x = loss_mask it
    gives the matching mask.
    """
    total = int(cu_seqlens[-1])
    seq = _token_major(x, total)                                                 # [T, ...]
    shifted = torch.roll(seq, shifts=-1, dims=0).clone()
    last = (cu_seqlens[1:].to(seq.device).long() - 1)                           # [n]
    shifted[last] = fill
    return shifted.reshape(x.shape)


def group_by_token_budget(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Indices of samples grouped into packs of at most `max_tokens` tokens (first-fit, longest first).

    A sample longer than the budget gets a pack of its own. Order inside a pack follows the input.
    """
    if max_tokens <= 0:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    packs: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda j: -lengths[j]):
        slot = next((p for p, free in enumerate(room) if lengths[i] <= free), None)
        if slot is None:
            packs.append([i])
            room.append(max_tokens - lengths[i])
        else:
            packs[slot].append(i)
            room[slot] -= lengths[i]
    return [sorted(p) for p in packs]
