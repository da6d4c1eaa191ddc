"""A data order that a resumed run can re-enter at any step.

Epoch e visits a permutation seeded by (seed, e); rank r of W takes every W-th sample of it.
Because the order is a pure function of (seed, epoch, position), a run resumed at sample k
sees exactly the samples an uninterrupted run would have seen next.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Infinite, shuffled, rank-sharded sample order starting at `start` (per-rank position)."""

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True,
                 start: int = 0):
        if size <= 0:
            raise ValueError("the dataset is empty")
        self.size, self.seed, self.rank, self.world = size, seed, rank, world_size
        self.shuffle = shuffle
        self.start = start

    def _epoch_order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            order = list(range(self.size))
        else:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        # pad so every rank gets the same count per epoch
        per_rank = -(-self.size // self.world)
        order += order[: per_rank * self.world - self.size]
        return order[self.rank::self.world]

    def __iter__(self) -> Iterator[int]:
        per_rank = -(-self.size // self.world)
        epoch, offset = divmod(self.start, per_rank)
        while True:
            order = self._epoch_order(epoch)
            yield from order[offset:]
            epoch, offset = epoch + 1, 0

    def __len__(self) -> int:
        return 2**62
