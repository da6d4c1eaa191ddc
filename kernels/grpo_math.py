"""The per-token GRPO math of the fused loss, written once for every backend.

Everything here is elementwise over the N = B*T tokens (O(N), next to the O(N*H*V) lm_head),
so plain PyTorch ops are the right tool on both CPU and CUDA. The fused loss is
    loss = sum_t w_t * term_t(logp_t)
with per-token aggregation weights w (from the mask and `loss_agg`), so its gradient with
respect to the log-probs is the per-token coefficient coef_t = w_t * d term_t / d logp_t,
computed here in closed form during the forward. The backward of the fused loss is therefore
exactly the backward of `linear_logprob` driven by grad_logp = grad_loss * coef.

All functions avoid host synchronisation (no .item()), so they trace under torch.compile.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from videorft.kernels.reference import KL_CLAMP, LOSS_AGGREGATIONS

STAT_NAMES = ("kl", "clip_fraction", "entropy", "ratio_mean", "logp_mean", "tokens")
"""Order of the entries of the stats vector returned with the fused loss."""


class TokenTerms(NamedTuple):
    """Per-token pieces of the GRPO objective, all [N] fp32."""

    term: torch.Tensor
    """Policy-gradient term plus beta * KL: the quantity the aggregation averages."""
    dterm: torch.Tensor
    """d term / d logp, the closed-form derivative (exactly what autograd gives)."""
    kl: torch.Tensor
    """k3 KL estimate against the reference policy (0 without ref_logp)."""
    ratio: torch.Tensor
    """exp(logp - old_logp); 1 on-policy."""
    clipped: torch.Tensor
    """True where the clipped surrogate is selected and the gradient vanishes."""


def token_weights(mask: torch.Tensor, loss_agg: str) -> torch.Tensor:
    """Aggregation weights w [B, T] (fp32) so that loss = sum(w * term).

    mask [B, T] (bool, 0/1 or non-negative weights). Sequences without any masked-in token
    get weight 0, and an all-zero mask gives all-zero weights (loss 0, zero gradients).
    """
    m = mask.to(torch.float32)  # [B, T]
    if loss_agg == "token-mean":
        total = m.sum()
        return m / torch.where(total > 0, total, torch.ones_like(total))
    if loss_agg == "seq-mean-token-sum-norm":
        return m / m.numel()
    if loss_agg == "seq-mean-token-mean":
        lengths = m.sum(1, keepdim=True)  # [B, 1]
        has_tokens = lengths > 0
        sequences = has_tokens.sum().to(torch.float32)
        per_seq = m / torch.where(has_tokens, lengths, torch.ones_like(lengths))
        return per_seq / torch.clamp(sequences, min=1.0)
    raise ValueError(f"loss_agg must be one of {LOSS_AGGREGATIONS}, got {loss_agg!r}")


def grpo_token_terms(logp: torch.Tensor, active: torch.Tensor, advantages: torch.Tensor,
                     old_logp: torch.Tensor | None, ref_logp: torch.Tensor | None,
                     beta: float, clip_low: float, clip_high: float) -> TokenTerms:
    """Per-token GRPO term and its derivative with respect to logp.

    logp [N] fp32 (no autograd needed), active [N] bool, advantages [N] (already broadcast
    per token), old_logp/ref_logp [N] or None. Inactive positions use logp in place of
    old/ref, so garbage there (e.g. -inf padding) cannot produce NaN.
    """
    logp = logp.detach().to(torch.float32)
    adv = advantages.to(torch.float32)
    if old_logp is None:
        ratio = torch.ones_like(logp)
    else:
        old = torch.where(active, old_logp.to(torch.float32), logp)
        ratio = torch.exp(logp - old)
    low, high = 1.0 - clip_low, 1.0 + clip_high
    unclipped = -ratio * adv
    clipped_value = -ratio.clamp(low, high) * adv
    # Autograd of max(a, b) splits ties evenly; inside [low, high] both branches have the
    # derivative -A * ratio, outside it the clamped branch is flat.
    inside = (ratio >= low) & (ratio <= high)
    dterm = torch.where(inside | (unclipped > clipped_value), -adv * ratio, torch.zeros_like(ratio))
    term = torch.maximum(unclipped, clipped_value)
    kl = torch.zeros_like(logp)
    if ref_logp is not None:
        diff = torch.where(active, ref_logp.to(torch.float32), logp) - logp
        clamped = diff.clamp(-KL_CLAMP, KL_CLAMP)
        kl = torch.exp(clamped) - clamped - 1.0
        if beta != 0:
            in_clamp = (diff >= -KL_CLAMP) & (diff <= KL_CLAMP)
            dkl = torch.where(in_clamp, 1.0 - torch.exp(clamped), torch.zeros_like(clamped))
            term = term + beta * kl
            dterm = dterm + beta * dkl
    return TokenTerms(term, dterm, kl, ratio, clipped_value > unclipped)


def grpo_loss_coef_stats(logp: torch.Tensor, entropy: torch.Tensor, weights: torch.Tensor,
                         advantages: torch.Tensor, old_logp: torch.Tensor | None,
                         ref_logp: torch.Tensor | None, beta: float, clip_low: float,
                         clip_high: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Loss, per-token gradient coefficients and metrics from the per-token log-probs.

    logp, entropy, weights, advantages [N] (and old/ref [N] or None) ->
    (loss [] fp32, coef [N] fp32 = d loss / d logp, stats [len(STAT_NAMES)] fp32).
    """
    active = weights > 0
    terms = grpo_token_terms(logp, active, advantages, old_logp, ref_logp, beta, clip_low, clip_high)
    zero = torch.zeros_like(terms.term)
    loss = torch.where(active, weights * terms.term, zero).sum()
    coef = torch.where(active, weights * terms.dterm, zero)
    count = active.sum().to(torch.float32)
    denom = torch.clamp(count, min=1.0)

    def masked_mean(values: torch.Tensor) -> torch.Tensor:
        return torch.where(active, values.to(torch.float32), zero).sum() / denom

    stats = torch.stack([
        masked_mean(terms.kl), masked_mean(terms.clipped), masked_mean(entropy),
        masked_mean(terms.ratio), masked_mean(logp), count,
    ])
    return loss, coef, stats
