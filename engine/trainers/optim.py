"""AdamW and the learning-rate schedules (warm-up, then constant, linear or cosine decay)."""

from __future__ import annotations

import math
from typing import Iterable

import torch

from videorft.engine.config import OptimConfig


def lr_multiplier(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Factor on cfg.lr at optimizer step `step` (0-based) of a schedule spanning `total_steps`."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.scheduler == "constant":
        return 1.0
    span = max(1, total_steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    if cfg.scheduler == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def parameter_groups(named_params: Iterable[tuple[str, torch.nn.Parameter]], weight_decay: float) -> list[dict]:
    """Trainable parameters split as transformers' Trainer splits them: weight decay on matrices,
    none on biases and normalisation weights (the one-dimensional parameters)."""
    decay, plain = [], []
    for _, param in named_params:
        if param.requires_grad:
            (decay if param.dim() >= 2 else plain).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(named_params: Iterable[tuple[str, torch.nn.Parameter]], cfg: OptimConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters (decoupled weight decay, not on biases and norms)."""
    return torch.optim.AdamW(parameter_groups(named_params, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas),
                             eps=cfg.eps)


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, cfg: OptimConfig):
    """LambdaLR following lr_multiplier over `optim.schedule_steps` steps, or the run's `total_steps`."""
    span = cfg.schedule_steps or total_steps
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_multiplier(s, span, cfg))
