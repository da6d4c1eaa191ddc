"""Group-relative advantages: each completion is judged against the other completions of its prompt."""

from __future__ import annotations

from typing import Literal

import torch

StdMode = Literal["unbiased", "biased", "none"]


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4,
                     std: StdMode = "unbiased") -> torch.Tensor:
    """A_i = (r_i - mean(group)) / (std(group) + eps), per group of `group_size` consecutive rows.

    rewards: [P * G] totals, grouped by prompt (rows i*G .. i*G+G-1 share a prompt).
    std "unbiased" is Bessel-corrected as in the released VideoRFT code, "biased" divides by G,
    "none" only subtracts the group mean (Dr.GRPO). Returns [P * G] float32. A group whose
    rewards are all equal gets zero advantages (it carries no learning signal).
    """
    if rewards.dim() != 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards must be 1-D with a multiple of group_size={group_size} entries, "
                         f"got shape {tuple(rewards.shape)}")
    grouped = rewards.float().view(-1, group_size)                        # [P, G]
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if std == "none":
        return centred.view(-1)
    if group_size == 1:
        return torch.zeros_like(rewards, dtype=torch.float32)
    spread = grouped.std(dim=1, keepdim=True, unbiased=(std == "unbiased"))
    return (centred / (spread + eps)).view(-1)


def group_outcomes(rewards: torch.Tensor, group_size: int, low: float, high: float) -> tuple[float, float]:
    """Share of groups where every reward is <= low ("all wrong") and where every one is >= high."""
    grouped = rewards.float().view(-1, group_size)
    return (float((grouped <= low).all(dim=1).float().mean()),
            float((grouped >= high).all(dim=1).float().mean()))
