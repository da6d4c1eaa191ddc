"""The GRPO loss math on [B, T] log-probs, written once for every backend.

Everything here is O(B*T) (next to the O(B*T*H*V) lm_head), so plain PyTorch ops are the right
tool on both CPU and CUDA. The fused loss is
    loss = sum_{b,t} w[b,t] * (c[b,t] * pg[b,t] + beta * kl[b,t])
with aggregation weights w (mask, `loss_agg`, `num_tokens`, `max_completion_length`), detached
sampler-correction weights c (1 without `rollout_is`), the policy term pg and the k3 KL. Its
gradient with respect to the log-probs is the coefficient coef[b,t] = d loss / d logp[b,t],
computed here in closed form during the forward; the backward of the fused loss is therefore the
backward of `linear_logprob` driven by grad_logp = grad_loss * coef.

Policy terms. With x the log-ratio (token: logp - old; sequence: the masked mean of a sequence's
token log-ratios) and r = exp(x):
  ppo:   pg = max(-min(r, delta) * A, -clamp(r, 1 - clip_low, 1 + clip_high) * A)
  cispo: pg = -sg(min(r, 1 + clip_high)) * A * logp
At the sequence level pg is one value per sequence, so with S_b = sum_u w_u c_u over its tokens,
  d loss / d logp_t = S_b * (d pg_b / d x_b) * m_t / sum_u m_u       (ppo: through the mean)
while CISPO's detached weight leaves d loss / d logp_t = -w_t c_t sg(min(r, 1 + clip_high)) A.

All functions avoid host synchronisation (no .item()), so they trace under torch.compile.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from videorft.kernels.loss_options import LossOptions
from videorft.kernels.reference import KL_CLAMP, LOSS_AGGREGATIONS

STAT_NAMES = ("kl", "clip_fraction", "entropy", "ratio_mean", "logp_mean", "tokens")
"""Order of the entries of the stats vector returned with the fused loss."""
ROLLOUT_STAT_NAMES = ("rollout_is_mean", "rollout_is_max", "rollout_is_cut_fraction", "rollout_kl")
"""Entries appended to the stats vector when `rollout_is` is on (see `rollout_correction`)."""


def stat_names(rollout_is: str | None) -> tuple[str, ...]:
    """Names of the stats vector entries for these options, in order."""
    return STAT_NAMES + (ROLLOUT_STAT_NAMES if rollout_is is not None else ())


class TokenTerms(NamedTuple):
    """Per-token pieces of the token-level PPO objective, all shaped like logp, fp32."""

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


class PolicyPart(NamedTuple):
    """The policy term of one level, with its derivative; shaped [B, T] or [B, 1]."""

    value: torch.Tensor
    """pg (PPO), or the truncated IS weight sg(min(r, 1 + clip_high)) (CISPO)."""
    dvalue: torch.Tensor
    """PPO: d pg / d x (x the log-ratio); CISPO: unused (zeros)."""
    ratio: torch.Tensor
    """exp(x)."""
    clipped: torch.Tensor
    """PPO: the clipped branch strictly wins; CISPO: the IS weight was truncated."""


def token_weights(mask: torch.Tensor, loss_agg: str, num_tokens: torch.Tensor | None = None,
                  max_completion_length: int | None = None) -> torch.Tensor:
    """Aggregation weights w [B, T] (fp32) so that loss = sum(w * term).

    mask [B, T] (bool, 0/1 or non-negative weights). `num_tokens` (0-d, the global token count)
    replaces the local mask sum of "token-mean"; `max_completion_length` replaces T in the
    B * T divisor of "seq-mean-token-sum-norm". Sequences without any masked-in token get
    weight 0, and an all-zero mask gives all-zero weights (loss 0, zero gradients).
    """
    m = mask.to(torch.float32)  # [B, T]
    if loss_agg == "token-mean":
        total = m.sum() if num_tokens is None else num_tokens.to(torch.float32)
        return m / torch.where(total > 0, total, torch.ones_like(total))
    if loss_agg == "seq-mean-token-sum-norm":
        width = m.shape[1] if max_completion_length is None else max_completion_length
        return m / (m.shape[0] * width)
    if loss_agg == "seq-mean-token-mean":
        lengths = m.sum(1, keepdim=True)  # [B, 1]
        has_tokens = lengths > 0
        sequences = has_tokens.sum().to(torch.float32)
        per_seq = m / torch.where(has_tokens, lengths, torch.ones_like(lengths))
        return per_seq / torch.clamp(sequences, min=1.0)
    raise ValueError(f"loss_agg must be one of {LOSS_AGGREGATIONS}, got {loss_agg!r}")


def ppo_term(log_ratio: torch.Tensor, adv: torch.Tensor, clip_low: float, clip_high: float,
             delta: float | None) -> PolicyPart:
    """PPO's clipped surrogate of a log-ratio x and its derivative d pg / d x (any shape).

    The derivative reproduces autograd of torch.maximum (ties split evenly) and of torch.clamp
    (gradient passes on the bounds), so it agrees with the reference at every kink.
    """
    ratio = torch.exp(log_ratio)
    low, high = 1.0 - clip_low, 1.0 + clip_high
    capped, dcapped = ratio, ratio
    if delta is not None:
        capped = ratio.clamp(max=delta)
        dcapped = torch.where(ratio <= delta, ratio, torch.zeros_like(ratio))
    unclipped = -capped * adv
    clipped_value = -ratio.clamp(low, high) * adv
    d_unclipped = -adv * dcapped
    d_clipped = torch.where((ratio >= low) & (ratio <= high), -adv * ratio, torch.zeros_like(ratio))
    dvalue = torch.where(unclipped > clipped_value, d_unclipped,
                         torch.where(clipped_value > unclipped, d_clipped, 0.5 * (d_unclipped + d_clipped)))
    return PolicyPart(torch.maximum(unclipped, clipped_value), dvalue, ratio, clipped_value > unclipped)


def cispo_weight(log_ratio: torch.Tensor, clip_high: float) -> PolicyPart:
    """CISPO's detached IS weight min(r, 1 + clip_high) (any shape); its log-prob carries the gradient."""
    ratio = torch.exp(log_ratio)
    bound = 1.0 + clip_high
    return PolicyPart(ratio.clamp(max=bound), torch.zeros_like(ratio), ratio, ratio > bound)


def kl_term(logp: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """k3 KL(ref || policy) per token with the log-ratio clamped to +-KL_CLAMP, and d kl / d logp."""
    diff = ref - logp
    clamped = diff.clamp(-KL_CLAMP, KL_CLAMP)
    kl = torch.exp(clamped) - clamped - 1.0
    in_clamp = (diff >= -KL_CLAMP) & (diff <= KL_CLAMP)
    return kl, torch.where(in_clamp, 1.0 - torch.exp(clamped), torch.zeros_like(clamped))


def grpo_token_terms(logp: torch.Tensor, active: torch.Tensor, advantages: torch.Tensor,
                     old_logp: torch.Tensor | None, ref_logp: torch.Tensor | None,
                     beta: float, clip_low: float, clip_high: float) -> TokenTerms:
    """Token-level PPO term plus beta * KL and its derivative with respect to logp (any shape).

    logp fp32 (no autograd needed), active bool, advantages broadcast per token, old/ref like
    logp or None. Inactive positions use logp in place of old/ref, so garbage there (e.g. -inf
    padding) cannot produce NaN.
    """
    logp = logp.detach().to(torch.float32)
    adv = advantages.to(torch.float32)
    old = logp if old_logp is None else torch.where(active, old_logp.to(torch.float32), logp)
    part = ppo_term(logp - old, adv, clip_low, clip_high, None)
    term, dterm = part.value, part.dvalue
    kl = torch.zeros_like(logp)
    if ref_logp is not None:
        kl, dkl = kl_term(logp, torch.where(active, ref_logp.to(torch.float32), logp))
        if beta != 0:
            term, dterm = term + beta * kl, dterm + beta * dkl
    return TokenTerms(term, dterm, kl, part.ratio, part.clipped)


class RolloutCorrection(NamedTuple):
    """Detached sampler-mismatch weights and their metrics."""

    weight: torch.Tensor
    """c [B, T]: the factor on each token's policy term (1 everywhere without rollout_is)."""
    stats: list[torch.Tensor]
    """0-d values in the order of ROLLOUT_STAT_NAMES (empty without rollout_is)."""


def masked_mean(values: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Mean of values [B, T] over the active positions (0 when none), as a 0-d fp32 tensor."""
    total = torch.where(active, values.to(torch.float32), torch.zeros_like(values, dtype=torch.float32)).sum()
    return total / torch.clamp(active.sum().to(torch.float32), min=1.0)


def rollout_correction(old: torch.Tensor, rollout_logp: torch.Tensor | None, m: torch.Tensor,
                       active: torch.Tensor, opts: LossOptions) -> RolloutCorrection:
    """Weights that correct for tokens sampled by another engine (e.g. vLLM) than the trainer.

    old [B, T]: the trainer's behaviour log-probs (old_logp, or the detached current ones
    on-policy); rollout_logp [B, T]: the sampler's. The per-token log-ratio d = old - rollout
    becomes rho = exp(d) ("token") or exp(sum of the sequence's masked d) ("sequence").
    TIS: c = min(rho, threshold). MIS: c = 1 inside [1 / threshold, threshold], else 0.
    Metrics over masked-in tokens: mean and max of c, the share truncated (TIS) or masked (MIS),
    and rollout_kl, the k3 estimate exp(d) - d - 1 of KL(sampler || trainer) (no clamp).
    """
    if opts.rollout_is is None:
        return RolloutCorrection(torch.ones_like(old), [])
    diff = torch.where(active, old - rollout_logp.to(torch.float32), torch.zeros_like(old))  # [B, T]
    log_rho = diff if opts.rollout_is_level == "token" else (m * diff).sum(1, keepdim=True)  # [B, T] or [B, 1]
    rho = torch.exp(log_rho).expand_as(old)  # [B, T]
    threshold = opts.rollout_is_threshold
    if opts.rollout_is == "tis":
        cut = rho > threshold
        weight = rho.clamp(max=threshold)
    else:
        cut = (rho < 1.0 / threshold) | (rho > threshold)
        weight = (~cut).to(torch.float32)
    largest = torch.where(active, weight, torch.full_like(weight, float("-inf"))).amax()
    largest = torch.where(active.any(), largest, torch.zeros_like(largest))
    k3 = torch.exp(diff) - diff - 1.0
    stats = [masked_mean(weight, active), largest, masked_mean(cut, active), masked_mean(k3, active)]
    return RolloutCorrection(weight, stats)


def policy_part(logp: torch.Tensor, old: torch.Tensor, m: torch.Tensor, advantages: torch.Tensor,
                opts: LossOptions) -> tuple[PolicyPart, torch.Tensor]:
    """The policy term at the chosen level, and the log-ratio's per-token derivative factor.

    Returns (part, dx_dlogp): part broadcastable to [B, T]; dx_dlogp [B, T] is 1 at the token
    level and m_t / (sum of the sequence's m) at the sequence level.
    """
    log_ratio = logp - old  # [B, T]; 0 where inactive (old = logp there)
    adv = advantages.to(torch.float32).unsqueeze(1)  # [B, 1]
    dx_dlogp = torch.ones_like(logp)
    if opts.importance_sampling_level == "sequence":
        lengths = m.sum(1, keepdim=True)  # [B, 1]
        lengths = torch.where(lengths > 0, lengths, torch.ones_like(lengths))
        log_ratio = (m * log_ratio).sum(1, keepdim=True) / lengths  # [B, 1]
        dx_dlogp = m / lengths  # [B, T]
    if opts.policy_loss == "cispo":
        return cispo_weight(log_ratio, opts.clip_high), dx_dlogp
    return ppo_term(log_ratio, adv, opts.clip_low, opts.clip_high, opts.delta), dx_dlogp


def grpo_loss_coef_stats(logp: torch.Tensor, entropy: torch.Tensor, mask: torch.Tensor,
                         advantages: torch.Tensor, old_logp: torch.Tensor | None,
                         ref_logp: torch.Tensor | None, rollout_logp: torch.Tensor | None,
                         num_tokens: torch.Tensor | None,
                         opts: LossOptions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Loss, per-token gradient coefficients and metrics from the per-token log-probs.

    logp, entropy, mask [B, T]; advantages [B]; old/ref/rollout [B, T] or None; num_tokens 0-d
    or None -> (loss [] fp32, coef [B, T] fp32 = d loss / d logp, stats [len(stat_names)] fp32).
    """
    logp = logp.detach().to(torch.float32)
    m = mask.to(torch.float32)
    active = m > 0
    zero = torch.zeros_like(logp)
    weights = token_weights(m, opts.loss_agg, num_tokens, opts.max_completion_length)  # [B, T]
    old = logp if old_logp is None else torch.where(active, old_logp.to(torch.float32), logp)
    rollout = rollout_correction(old, rollout_logp, m, active, opts)
    part, dx_dlogp = policy_part(logp, old, m, advantages, opts)
    scale = weights * rollout.weight  # [B, T]: the factor on each token's pg
    adv = advantages.to(torch.float32).unsqueeze(1)  # [B, 1]
    if opts.policy_loss == "cispo":
        pg = -part.value * adv * logp  # [B, T]
        coef = scale * (-part.value * adv)
    else:
        pg = part.value.expand_as(logp)
        per_seq = scale.sum(1, keepdim=True) if opts.importance_sampling_level == "sequence" else scale
        coef = per_seq * part.dvalue * dx_dlogp
    term = rollout.weight * pg
    kl = zero
    if ref_logp is not None:
        kl, dkl = kl_term(logp, torch.where(active, ref_logp.to(torch.float32), logp))
        if opts.beta != 0:
            term = term + opts.beta * kl
            coef = coef + weights * (opts.beta * dkl)
    loss = torch.where(active, weights * term, zero).sum()
    coef = torch.where(active, coef, zero)
    stats = torch.stack([
        masked_mean(kl, active), masked_mean(part.clipped.expand_as(logp), active), masked_mean(entropy, active),
        masked_mean(part.ratio.expand_as(logp), active), masked_mean(logp, active),
        active.sum().to(torch.float32), *rollout.stats,
    ])
    return loss, coef, stats
