"""Contrastive training of the tiny SigLIP on frame/caption pairs, and its held-out check.

The loss is SigLIP's pairwise sigmoid loss: every (text, image) pair in a batch is a binary
problem, positive when the texts match. Unlike the textbook version the positives are not just
the diagonal: the synthetic captions repeat ("a red circle on the left" describes many frames),
and treating equal captions as negatives would teach the encoder to tell identical texts apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase, SiglipModel

from videorft.engine.config import EncoderTrainConfig
from videorft.engine.rewards.frame_transform import FrameTransform


def sigmoid_pair_loss(logits: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Mean over texts of the summed -log sigmoid(+-logit) over images.

    logits [U, B] (text x image, after SigLIP's scale and bias); same [U, B] bool, True where the
    pair matches.
    """
    signs = same.float() * 2.0 - 1.0  # [B, B] +1 / -1
    return -F.logsigmoid(signs * logits).sum(dim=-1).mean()


def caption_groups(captions: Sequence[str]) -> torch.Tensor:
    """long [N]: equal (case-insensitive) captions share an id."""
    ids: dict[str, int] = {}
    return torch.tensor([ids.setdefault(c.strip().lower(), len(ids)) for c in captions], dtype=torch.long)


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> torch.Tensor:
    """long [N, max_length] input ids, padded and cut exactly as the semantic reward does."""
    return tokenizer(list(texts), padding="max_length", truncation=True, max_length=max_length,
                     return_tensors="pt")["input_ids"]


def pixel_batches(transform: FrameTransform, frames: np.ndarray, chunk: int = 256) -> torch.Tensor:
    """float [N, 3, S, S] pixel inputs of uint8 frames [N, H, W, 3], converted in chunks."""
    parts = [transform(torch.from_numpy(frames[i:i + chunk])) for i in range(0, len(frames), chunk)]
    return torch.cat(parts)


def lr_factor(step: int, cfg: EncoderTrainConfig) -> float:
    """Linear warm-up to 1, then cosine decay to 0.1 at the last step."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class TrainHistory:
    """Loss per step, for logs and tests."""

    losses: list[float] = field(default_factory=list)


def batch_loss(model: SiglipModel, pixels: torch.Tensor, input_ids: torch.Tensor,
               groups: torch.Tensor) -> torch.Tensor:
    """Sigmoid loss of one batch: pixels [B, 3, S, S], input_ids [B, L], groups [B].

    Each distinct caption of the batch is encoded once and paired with every frame, so batches
    full of repeated captions cost a fraction of the text tower.
    """
    unique, first = _first_of_each(groups)  # [U], [U]
    text = F.normalize(model.get_text_features(input_ids=input_ids[first]).pooler_output, dim=-1)  # [U, D]
    image = F.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)  # [B, D]
    logits = text @ image.t() * model.logit_scale.exp() + model.logit_bias  # [U, B]
    return sigmoid_pair_loss(logits, unique[:, None] == groups[None, :])


def _first_of_each(groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct values of groups [B] and the position of each one's first occurrence."""
    unique, inverse = torch.unique(groups, return_inverse=True)
    positions = torch.arange(groups.shape[0], device=groups.device)
    first = torch.full((unique.shape[0],), groups.shape[0], dtype=torch.long, device=groups.device)
    first = first.scatter_reduce(0, inverse, positions, reduce="amin")
    return unique, first


def train_encoder(model: SiglipModel, pixels: torch.Tensor, input_ids: torch.Tensor,
                  groups: torch.Tensor, cfg: EncoderTrainConfig, seed: int = 0,
                  on_step: Callable[[int, float], None] | None = None) -> TrainHistory:
    """Train `model` in place on pairs (pixels [N, 3, S, S], input_ids [N, L], groups [N]).

    All four live on the same device. Each step draws `cfg.batch_size` pairs without
    replacement (fewer when N is smaller); `on_step(step, loss)` is called after every step.
    """
    if cfg.steps < 1 or cfg.batch_size < 2:
        raise ValueError("encoder.steps must be >= 1 and encoder.batch_size >= 2")
    gen = torch.Generator().manual_seed(seed)
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lambda s: lr_factor(s, cfg))
    history = TrainHistory()
    model.train()
    batch = min(cfg.batch_size, pixels.shape[0])
    for step in range(cfg.steps):
        idx = torch.randperm(pixels.shape[0], generator=gen)[:batch].to(pixels.device)  # [B]
        loss = batch_loss(model, pixels[idx], input_ids[idx], groups[idx])
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        sched.step()
        history.losses.append(loss.item())
        if on_step is not None:
            on_step(step, history.losses[-1])
    model.eval()
    return history


def mismatched_partners(captions: Sequence[str], seed: int = 0) -> list[int]:
    """For each pair, the index of a random pair with a different caption (-1 when none exists)."""
    groups = caption_groups(captions).numpy()
    rng = np.random.default_rng(seed)
    partners = []
    for g in groups:
        others = np.flatnonzero(groups != g)
        partners.append(int(rng.choice(others)) if len(others) else -1)
    return partners


def pair_accuracy(image_emb: torch.Tensor, text_emb: torch.Tensor, captions: Sequence[str],
                  seed: int = 0) -> float:
    """Share of pairs whose frame is closer (cosine) to its own caption than to a mismatched one.

    image_emb, text_emb: unit-norm [N, D] embeddings of the frames and of their captions.
    """
    partners = mismatched_partners(captions, seed)
    wins = [float(text_emb[i] @ image_emb[i]) > float(text_emb[j] @ image_emb[i])
            for i, j in enumerate(partners) if j >= 0]
    if not wins:
        raise ValueError("pair accuracy needs at least two different captions")
    return sum(wins) / len(wins)
