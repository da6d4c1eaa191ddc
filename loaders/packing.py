"""Pack SFT samples into rows with per-sample boundaries (for variable-length attention).

Samples stay in their order (so the vision tensors, concatenated in sample order, line up with
the placeholder tokens read row by row); a row takes samples until the next one would pass
`pack_length` tokens. The rows are right-padded to the longest row.
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import torch

from videorft.loaders.collate import IGNORE, PackedBatch, SpecialIds, sequence_labels, split_skipped, vision_tensors
from videorft.loaders.dataset import Sample, SkippedSample
from videorft.loaders.qwen_inputs import token_type_ids


def pack_rows(lengths: Sequence[int], pack_length: Optional[int]) -> list[list[int]]:
    """Group sample indices into rows of at most pack_length tokens, keeping their order.

    A sample longer than pack_length gets a row of its own; pack_length None puts every
    sample in one row.
    """
    if pack_length is not None and pack_length <= 0:
        raise ValueError(f"pack_length must be positive, got {pack_length}")
    rows: list[list[int]] = []
    used = 0
    for i, n in enumerate(lengths):
        if rows and (pack_length is None or used + n <= pack_length):
            rows[-1].append(i)
            used += n
        else:
            rows.append([i])
            used = n
    return rows


def _segments(row_lengths: list[list[int]], width: int) -> list[int]:
    """Segment lengths of the flattened rows: each sample, then each row's padding tail."""
    seg = []
    for lengths in row_lengths:
        seg.extend(lengths)
        if width - sum(lengths):
            seg.append(width - sum(lengths))
    return seg


def collate_packed(items: Sequence[Sample | SkippedSample], ids: SpecialIds,
                   loss_on: Literal["response", "all"] = "response", pack_length: Optional[int] = None) -> PackedBatch:
    """Pack samples into rows (see PackedBatch for the boundary tensors)."""
    samples, skipped = split_skipped(items)
    if not samples:
        return PackedBatch(samples, skipped)
    pairs = [sequence_labels(s, ids, loss_on) for s in samples]
    rows = pack_rows([int(t.numel()) for t, _ in pairs], pack_length)
    width = max(sum(int(pairs[i][0].numel()) for i in row) for row in rows)
    shape = (len(rows), width)
    input_ids = torch.full(shape, ids.pad, dtype=torch.long)                                  # [R, L]
    labels = torch.full(shape, IGNORE, dtype=torch.long)                                      # [R, L]
    mask = torch.zeros(shape, dtype=torch.long)                                               # [R, L]
    positions = torch.zeros(shape, dtype=torch.long)                                          # [R, L]
    owner = torch.full(shape, -1, dtype=torch.long)                                           # [R, L]
    for r, row in enumerate(rows):
        col = 0
        for i in row:
            tokens, lab = pairs[i]
            n = tokens.numel()
            input_ids[r, col:col + n], labels[r, col:col + n] = tokens, lab
            labels[r, col] = IGNORE                       # never predicted from the previous sample
            mask[r, col:col + n], owner[r, col:col + n] = 1, i
            positions[r, col:col + n] = torch.arange(n)
            col += n
        positions[r, col:] = torch.arange(width - col)
    seg = _segments([[int(pairs[i][0].numel()) for i in row] for row in rows], width)
    cu = torch.zeros(len(seg) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(torch.tensor(seg), 0)
    return PackedBatch(samples, skipped, input_ids, mask, token_type_ids(input_ids, ids.image, ids.video),
                       vision_tensors(samples), labels=labels, position_ids=positions, sample_index=owner,
                       cu_seqlens=cu, max_seqlen=max(seg))
