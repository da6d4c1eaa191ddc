"""One pass over a shared prompt for all G completions of a GRPO group.

In video GRPO a prompt is ~1,000 tokens (mostly video) and each of its G completions a few
hundred, yet the per-row layout runs the prompt through the language model G times. Here each
group's prompt is in the row once, followed by the group's completions:

    row = [prompt_0 | prompt_1 | ... | completion_0,0 ... completion_0,G-1 | completion_1,0 ...]

Attention keeps every token's view exactly as in its own unshared row: a prompt token attends
causally to its prompt; a completion token attends to all of its group's prompt and causally to
its own completion. Positions (3-D M-RoPE) are those each token would have in its own row. So
the hidden states of every completion token, and hence the loss and log-probs, equal the
per-row computation, while the gradients of the G completions add up in the one prompt (and,
through its video tokens, in one vision-tower backward), as they add up over the G copies in
the per-row computation.

The attention is two varlen calls per layer (engine/models/attention.py): the prompts among
themselves (causal), and the completions against [their prompt's keys; their own keys]
(bottom-right causal), with the prompt keys gathered per completion; flash-attn varlen on CUDA,
per-segment SDPA elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from videorft.engine.models.frozen_vision import MediaFeatures
from videorft.engine.models.varlen_attention import cu_seqlens_from_lengths, varlen_attention


@dataclass
class SharedPrefixLayout:
    """Where the prompts and completions of a shared-prefix row are, for the attention function."""

    prompt_cu: torch.Tensor
    """int32 [P + 1]: prompt p is row tokens prompt_cu[p]:prompt_cu[p + 1]; prompts come first."""
    completion_cu: torch.Tensor
    """int32 [R + 1]: completion r is row tokens n_prompt + completion_cu[r] ... (its own span)."""
    key_index: torch.Tensor
    """long [K]: row positions of the keys of every completion, in order: its prompt, then itself."""
    key_cu: torch.Tensor
    """int32 [R + 1]: completion r's keys are key_index[key_cu[r]:key_cu[r + 1]]."""
    n_prompt: int
    """Tokens of all prompts together (where the completions start in the row)."""
    max_prompt: int
    max_completion: int
    max_keys: int


@dataclass
class SharedPrefixBatch:
    """A micro-batch of whole groups as one row with each prompt once; what PolicyModel needs."""

    inputs: dict[str, torch.Tensor]
    """input_ids, mm_token_type_ids [1, T]; position_ids [3, 1, T]; pixel_values_videos,
    video_grid_thw (one per prompt that shows a video), pixel_values, image_grid_thw (one per
    prompt that shows an image)."""
    layout: SharedPrefixLayout
    predictors: torch.Tensor
    """long [R, C]: row position of the hidden state that predicts completion r's token c (the
    last prompt token for c = 0); padding positions point at a real token and are masked out."""
    features: MediaFeatures | None = None
    """With a frozen vision tower: each prompt's encoded media, in place of the pixel inputs."""

    def to(self, device: torch.device) -> "SharedPrefixBatch":
        """A copy with every tensor on `device` (encoded features stay where they were computed)."""
        lay = self.layout
        layout = SharedPrefixLayout(lay.prompt_cu.to(device), lay.completion_cu.to(device), lay.key_index.to(device),
                                    lay.key_cu.to(device), lay.n_prompt, lay.max_prompt, lay.max_completion,
                                    lay.max_keys)
        return SharedPrefixBatch({k: v.to(device) for k, v in self.inputs.items()}, layout, self.predictors.to(device),
                                 self.features)


def _group_rows(seq, group_size: int) -> list[torch.Tensor]:
    """Row indices of each group (rows g*G .. g*G+G-1 share a prompt)."""
    if seq.rows % group_size:
        raise ValueError(f"{seq.rows} rows are not whole groups of {group_size}")
    return [torch.arange(g * group_size, (g + 1) * group_size) for g in range(seq.rows // group_size)]


def share_prefixes(seq, group_size: int, rope_index) -> SharedPrefixBatch:
    """The shared-prefix row of a SequenceBatch of whole groups (engine/trainers/sequences.py).

    seq: left-padded prompts repeated G times + right-padded completions (rows grouped by prompt);
    rope_index: the model's get_rope_index (loaders.family.ModelFamily.rope_index). A completion
    keeps its tokens up to its last masked-in one; padding after it never enters the row.
    """
    inputs, prompt_len = seq.inputs, seq.prompt_len
    lengths = seq.completion_mask.sum(dim=1).long().clamp(min=1)                     # [R]
    ids, types, positions, prompt_lengths, comp_ids, comp_pos = [], [], [], [], [], []
    for rows in _group_rows(seq, group_size):
        first = int(rows[0])
        keep = inputs["attention_mask"][first, :prompt_len].bool()                     # [L] real prompt tokens
        prompt = inputs["input_ids"][first, :prompt_len][keep]                         # [L_p]
        prompt_types = inputs["mm_token_type_ids"][first, :prompt_len][keep]
        longest = int(lengths[rows].max())
        full = torch.cat([prompt, seq.completion_ids[first, :longest]])[None]         # [1, L_p + C_g]
        full_types = torch.cat([prompt_types, torch.zeros(longest, dtype=prompt_types.dtype,
                                                          device=prompt_types.device)])[None]
        pos, _ = rope_index(full, full_types, **_vision_of_row(seq, first))           # [3, 1, L_p + C_g]
        n = prompt.numel()
        ids.append(prompt)
        types.append(prompt_types)
        positions.append(pos[:, 0, :n])
        prompt_lengths.append(n)
        for r in rows.tolist():
            c = int(lengths[r])
            comp_ids.append(seq.completion_ids[r, :c])
            comp_pos.append(pos[:, 0, n:n + c])      # the positions depend on the offset only, not on tokens
    return _assemble(seq, group_size, ids + comp_ids, types, positions + comp_pos, prompt_lengths,
                     [int(x) for x in lengths])


def _vision_of_row(seq, row: int) -> dict:
    """get_rope_index's vision arguments for one row of the SequenceBatch."""
    out = {}
    video = int(seq.row_video[row])
    if video >= 0:
        out["video_grid_thw"] = seq.inputs["video_grid_thw"][video:video + 1]
        if "second_per_grid_ts" in seq.inputs:
            out["second_per_grid_ts"] = seq.inputs["second_per_grid_ts"][video:video + 1]
    image = int(seq.row_image[row])
    if image >= 0:
        out["image_grid_thw"] = seq.inputs["image_grid_thw"][image:image + 1]
    return out


def _assemble(seq, group_size: int, token_pieces, type_pieces, position_pieces, prompt_lengths, lengths
              ) -> SharedPrefixBatch:
    device = seq.completion_ids.device
    n_prompt = sum(prompt_lengths)
    prompt_cu = cu_seqlens_from_lengths(prompt_lengths, device)                       # [P + 1]
    completion_cu = cu_seqlens_from_lengths(lengths, device)                          # [R + 1]
    groups = torch.arange(len(lengths), device=device) // group_size                  # [R]
    key_index, key_lengths = [], []
    for r, c in enumerate(lengths):
        g = int(groups[r])
        start = n_prompt + int(completion_cu[r])
        key_index.append(torch.cat([torch.arange(int(prompt_cu[g]), int(prompt_cu[g + 1]), device=device),
                                    torch.arange(start, start + c, device=device)]))
        key_lengths.append(int(prompt_cu[g + 1] - prompt_cu[g]) + c)
    comp_types = torch.zeros(sum(lengths), dtype=type_pieces[0].dtype, device=device)
    inputs = {"input_ids": torch.cat(token_pieces)[None],                              # [1, T]
              "mm_token_type_ids": torch.cat(type_pieces + [comp_types])[None],        # [1, T]
              "position_ids": torch.cat(position_pieces, dim=1)[:, None]}              # [3, 1, T]
    vision, features = _prompt_vision(seq, group_size)
    inputs.update(vision)
    layout = SharedPrefixLayout(prompt_cu, completion_cu, torch.cat(key_index), cu_seqlens_from_lengths(key_lengths,
                                device), n_prompt, max(prompt_lengths), max(lengths), max(key_lengths))
    return SharedPrefixBatch(inputs, layout, _predictors(seq, layout, groups, lengths), features)


def _prompt_vision(seq, group_size: int) -> tuple[dict[str, torch.Tensor], MediaFeatures | None]:
    """The media of each group's prompt, once per prompt, in prompt order: their model inputs, and
    their encoded features when the SequenceBatch carries them (the pixels are then left out)."""
    firsts = torch.arange(0, seq.rows, group_size, device=seq.row_video.device)        # [P]
    out, picked = {}, {}
    for row_media, pixels_key, grid_key, extra_keys in (
        (seq.row_video, "pixel_values_videos", "video_grid_thw", ("second_per_grid_ts",)),
        (seq.row_image, "pixel_values", "image_grid_thw", ()),
    ):
        media = row_media[firsts]
        media = media[media >= 0]                                                      # [M]
        picked[grid_key] = media.tolist()
        if not media.numel():
            continue
        grid = seq.inputs[grid_key]                                                    # [N, 3]
        if seq.features is None:
            blocks = torch.split(seq.inputs[pixels_key], grid.prod(dim=1).tolist())
            out[pixels_key] = torch.cat([blocks[int(m)] for m in media])
        out[grid_key] = grid[media]
        for key in extra_keys:
            if key in seq.inputs:
                out[key] = seq.inputs[key][media]
    if seq.features is None:
        return out, None
    return out, seq.features.pick(videos=picked["video_grid_thw"], images=picked["image_grid_thw"])


def _predictors(seq, layout: SharedPrefixLayout, groups: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """long [R, C]: the row position whose hidden state predicts each completion token."""
    rows, width = seq.completion_ids.shape
    col = torch.arange(width, device=groups.device)[None]                               # [1, C]
    own = layout.n_prompt + layout.completion_cu[:-1].long()[:, None] + col - 1         # [R, C]
    last_prompt = layout.prompt_cu[1:].long()[groups][:, None] - 1                      # [R, 1]
    lengths_t = torch.tensor(lengths, device=groups.device)[:, None]
    predictors = torch.where(col == 0, last_prompt, own)
    return torch.where(col < lengths_t, predictors, last_prompt)     # padding: any real position (masked)


def shared_prefix_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, layout: SharedPrefixLayout,
                            scale: float | None, dropout: float) -> torch.Tensor:
    """Attention of a shared-prefix row: q [T, Hq, D], k, v [T, Hkv, D] -> [T, Hq, D].

    Prompts attend causally within themselves; each completion attends to its prompt's keys and
    causally to its own (the keys are gathered per completion, so each prompt's keys and values
    receive the gradients of all its completions).
    """
    n = layout.n_prompt
    prompts = varlen_attention(query[:n], key[:n], value[:n], layout.prompt_cu, layout.max_prompt, causal=True,
                               scale=scale, dropout=dropout)                                # [n, Hq, D]
    keys, values = key.index_select(0, layout.key_index), value.index_select(0, layout.key_index)  # [K, Hkv, D]
    completions = varlen_attention(query[n:], keys, values, layout.completion_cu, layout.max_completion,
                                   causal=True, scale=scale, dropout=dropout, cu_seqlens_k=layout.key_cu,
                                   max_seqlen_k=layout.max_keys)                            # [T - n, Hq, D]
    return torch.cat([prompts, completions])
