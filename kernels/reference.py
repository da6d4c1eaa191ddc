"""Naive oracles for the fused kernels: full logits, plain autograd, fp32 (or wider) math.

These are the ground truth of the tests and the "naive torch" baseline of the benchmarks. They
materialise the [N, V] logits on purpose, so never use them on real shapes in training.
`upcast=True` (the default) computes in at least fp32 (fp64 inputs stay fp64, which the tests
use as the truth for fp32 kernels); `upcast=False` keeps the lm_head GEMM in the input dtype
and only the softmax in fp32, which is what hand-written bf16 training code does, so its error
is "PyTorch's own error at that dtype" in the tolerance rule (docs/design.md §5).

The GRPO formula here is written independently of `grpo_math.py` (autograd differentiates
it), so the closed-form gradient coefficients of the fused path are checked against it.
"""

from __future__ import annotations

import torch

LOSS_AGGREGATIONS = ("seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm")
KL_CLAMP = 10.0


def _logits(hidden: torch.Tensor, weight: torch.Tensor, temperature: float, upcast: bool) -> torch.Tensor:
    """[..., V] logits divided by the temperature, in fp32 or wider."""
    wide = torch.promote_types(hidden.dtype, torch.float32)
    if upcast:
        return (hidden.to(wide) @ weight.to(wide).T) / temperature
    return (hidden @ weight.T).to(wide) / temperature


def linear_logprob(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                   temperature: float = 1.0, *, return_entropy: bool = False,
                   upcast: bool = True):
    """log softmax(hidden @ weight.T / temperature)[targets], naively.

    hidden [..., H], weight [V, H], targets [...] (long) -> log-probs [...] in fp32 (fp64 for
    fp64 inputs); with `return_entropy=True` also the entropy of each token's distribution
    [...] (differentiable here, unlike in the fused kernels where it is a metric).
    """
    logp_all = torch.log_softmax(_logits(hidden, weight, temperature, upcast), dim=-1)  # [..., V]
    logp = logp_all.gather(-1, targets.long().unsqueeze(-1)).squeeze(-1)  # [...]
    if not return_entropy:
        return logp
    entropy = -(logp_all.exp() * logp_all).sum(-1)  # [...]
    return logp, entropy


def _aggregate(term: torch.Tensor, mask: torch.Tensor, loss_agg: str, num_tokens=None,
               max_completion_length: int | None = None) -> torch.Tensor:
    """Reduce per-token terms [B, T] with a 0/1 (or weighting) mask [B, T] to a scalar.

    num_tokens (a number or 0-d tensor) replaces sum(mask) in "token-mean";
    max_completion_length replaces T in the B * T divisor of "seq-mean-token-sum-norm".
    """
    masked = torch.where(mask > 0, term * mask, torch.zeros_like(term))  # [B, T]
    if loss_agg == "token-mean":
        total = mask.sum() if num_tokens is None else torch.as_tensor(num_tokens, dtype=term.dtype)
        return masked.sum() / total if total > 0 else masked.sum() * 0
    if loss_agg == "seq-mean-token-sum-norm":
        width = term.shape[1] if max_completion_length is None else max_completion_length
        return masked.sum() / (term.shape[0] * width)
    if loss_agg == "seq-mean-token-mean":
        lengths = mask.sum(1)  # [B]
        keep = lengths > 0
        if not keep.any():
            return masked.sum() * 0
        return (masked.sum(1)[keep] / lengths[keep]).mean()
    raise ValueError(f"loss_agg must be one of {LOSS_AGGREGATIONS}, got {loss_agg!r}")


def _masked_mean(values: torch.Tensor, active: torch.Tensor) -> float:
    count = int(active.sum())
    return float(values[active].sum() / count) if count else 0.0


def _kl(logp, active, ref_logp):
    """k3 estimate of KL(ref || policy) per token, log-ratio clamped to [-KL_CLAMP, KL_CLAMP]."""
    ref = torch.where(active, ref_logp.to(logp.dtype), logp.detach())
    diff = (ref - logp).clamp(-KL_CLAMP, KL_CLAMP)
    return torch.exp(diff) - diff - 1


def grpo_token_term(logp, active, advantages, old_logp, ref_logp, beta, clip_low, clip_high):
    """Per-token GRPO term as a differentiable function of logp (autograd gives its gradient).

    logp [...] (requires grad), active [...] bool, advantages broadcastable to logp,
    old_logp/ref_logp like logp or None -> (term, ratio, kl), each like logp.
    Positions outside `active` use logp itself for old/ref, so padding garbage (e.g. -inf)
    never turns into 0 * inf in the gradient.
    """
    old = logp.detach() if old_logp is None else torch.where(active, old_logp.to(logp.dtype), logp.detach())
    ratio = torch.exp(logp - old)
    adv = advantages.to(logp.dtype)
    term = torch.maximum(-ratio * adv, -ratio.clamp(1 - clip_low, 1 + clip_high) * adv)
    kl = torch.zeros_like(logp)
    if ref_logp is not None:
        kl = _kl(logp, active, ref_logp)
        if beta != 0:
            term = term + beta * kl
    return term, ratio, kl


def _importance_ratio(logp, old, mask, level):
    """pi / pi_old per token, or per sequence (GSPO) as exp of the masked mean log-ratio [B, 1]."""
    log_ratio = logp - old
    if level == "sequence":
        lengths = mask.sum(-1, keepdim=True)
        lengths = torch.where(lengths > 0, lengths, torch.ones_like(lengths))
        log_ratio = (log_ratio * mask).sum(-1, keepdim=True) / lengths
    return torch.exp(log_ratio)


def _policy_objective(logp, ratio, adv, policy_loss, clip_low, clip_high, delta):
    """Per-token policy loss and its "clipped" flags (PPO surrogate or CISPO)."""
    if policy_loss == "cispo":
        # MiniMax-M1 / TRL: the IS weight, truncated and detached, scales the REINFORCE term
        truncated = torch.clamp(ratio, max=1 + clip_high).detach()
        return -truncated * adv * logp, ratio > 1 + clip_high
    bounded = ratio.clamp(1 - clip_low, 1 + clip_high)
    unbounded = ratio if delta is None else torch.clamp(ratio, max=delta)  # INTELLECT-2 cap
    objective = torch.min(unbounded * adv, bounded * adv)
    return -objective, bounded * adv < unbounded * adv


def _rollout_weights(old, rollout_logp, mask, active, mode, level, threshold):
    """Detached sampler-correction weights [B, T] with the sampler/trainer log-ratio [B, T]."""
    gap = torch.where(active, old.detach() - rollout_logp.to(old.dtype), torch.zeros_like(old))
    log_rho = gap if level == "token" else (gap * mask).sum(-1, keepdim=True)
    rho = torch.exp(log_rho).expand_as(old)
    if mode == "tis":
        return torch.clamp(rho, max=threshold), rho > threshold, gap
    keep = (rho >= 1 / threshold) & (rho <= threshold)
    return keep.to(old.dtype), ~keep, gap


def grpo_objective(logp, entropy, mask, advantages, old_logp=None, ref_logp=None, beta=0.04, clip_low=0.2,
                   clip_high=0.2, loss_agg="seq-mean-token-mean", importance_sampling_level="token",
                   rollout_logp=None, rollout_is=None, rollout_is_level="token", rollout_is_threshold=2.0,
                   num_tokens=None, max_completion_length=None, delta=None, policy_loss="ppo"):
    """The GRPO loss as a differentiable function of the token log-probs logp [B, T].

    entropy [B, T] (metric only), mask [B, T], advantages [B], old/ref/rollout [B, T] or None
    -> (scalar loss, metrics dict of floats). The options follow their published definitions
    (GSPO, CISPO and INTELLECT-2's delta as TRL writes them; TIS / MIS sampler correction);
    autograd differentiates everything that is not explicitly detached. Positions with mask 0
    never contribute, whatever old/ref/rollout log-probs hold there.
    """
    mask = mask.to(logp.dtype)
    active = mask > 0
    adv = advantages.to(logp.dtype).unsqueeze(1)  # [B, 1]
    old = logp.detach() if old_logp is None else torch.where(active, old_logp.to(logp.dtype), logp.detach())
    ratio = _importance_ratio(logp, old, mask, importance_sampling_level)  # [B, T] or [B, 1]
    policy, clipped = _policy_objective(logp, ratio, adv, policy_loss, clip_low, clip_high, delta)
    policy = policy.expand_as(logp)
    if rollout_is is not None:
        correction, cut, gap = _rollout_weights(old, rollout_logp, mask, active, rollout_is,
                                                rollout_is_level, rollout_is_threshold)
        policy = policy * correction
    kl = torch.zeros_like(logp) if ref_logp is None else _kl(logp, active, ref_logp)
    term = policy + beta * kl if (ref_logp is not None and beta != 0) else policy
    loss = _aggregate(term, mask, loss_agg, num_tokens, max_completion_length)
    with torch.no_grad():
        metrics = {
            "loss": float(loss),
            "kl": _masked_mean(kl, active),
            "clip_fraction": _masked_mean(clipped.expand_as(logp).to(logp.dtype), active),
            "entropy": _masked_mean(entropy, active),
            "ratio_mean": _masked_mean(ratio.expand_as(logp), active),
            "logp_mean": _masked_mean(logp, active),
            "tokens": float(active.sum()),
        }
        if rollout_is is not None:
            metrics.update({
                "rollout_is_mean": _masked_mean(correction, active),
                "rollout_is_max": float(correction[active].max()) if bool(active.any()) else 0.0,
                "rollout_is_cut_fraction": _masked_mean(cut.to(logp.dtype), active),
                "rollout_kl": _masked_mean(torch.exp(gap) - gap - 1, active),
            })
    return loss, metrics


def fused_linear_grpo_loss(hidden, weight, targets, mask, advantages, old_logp=None, ref_logp=None,
                           beta=0.04, clip_low=0.2, clip_high=0.2, temperature=1.0,
                           loss_agg="seq-mean-token-mean", importance_sampling_level="token",
                           rollout_logp=None, rollout_is=None, rollout_is_level="token",
                           rollout_is_threshold=2.0, num_tokens=None, max_completion_length=None,
                           delta=None, policy_loss="ppo", *, upcast: bool = True):
    """The GRPO loss of the public API (docs/design.md §4), computed naively with full logits.

    hidden [B, T, H], weight [V, H], targets/mask [B, T], advantages [B],
    old_logp/ref_logp/rollout_logp [B, T] or None -> (scalar loss, metrics dict of floats);
    the options are those of `grpo_objective`.
    """
    logp, entropy = linear_logprob(hidden, weight, targets, temperature,
                                   return_entropy=True, upcast=upcast)  # [B, T]
    return grpo_objective(logp, entropy, mask, advantages, old_logp, ref_logp, beta, clip_low, clip_high,
                          loss_agg, importance_sampling_level, rollout_logp, rollout_is, rollout_is_level,
                          rollout_is_threshold, num_tokens, max_completion_length, delta, policy_loss)
