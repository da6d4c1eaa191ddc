"""Naive oracles for the fused kernels: full logits, plain autograd, fp32 (or wider) math.

These are the ground truth of the tests and the "naive torch" baseline of the benchmarks. They
materialise the [N, V] logits on purpose, so never use them on real shapes in training.
`upcast=True` (the default) computes in at least fp32 (fp64 inputs stay fp64, which the tests
use as the truth for fp32 kernels); `upcast=False` keeps the lm_head GEMM in the input dtype
and only the softmax in fp32, which is what hand-written bf16 training code does, so its error
is "PyTorch's own error at that dtype" in the tolerance rule of DESIGN.md.

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


def _aggregate(term: torch.Tensor, mask: torch.Tensor, loss_agg: str) -> torch.Tensor:
    """Reduce per-token terms [B, T] with a 0/1 (or weighting) mask [B, T] to a scalar."""
    masked = torch.where(mask > 0, term * mask, torch.zeros_like(term))  # [B, T]
    if loss_agg == "token-mean":
        total = mask.sum()
        return masked.sum() / total if total > 0 else masked.sum() * 0
    if loss_agg == "seq-mean-token-sum-norm":
        return masked.sum() / term.numel()
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
        ref = torch.where(active, ref_logp.to(logp.dtype), logp.detach())
        diff = (ref - logp).clamp(-KL_CLAMP, KL_CLAMP)
        kl = torch.exp(diff) - diff - 1
        if beta != 0:
            term = term + beta * kl
    return term, ratio, kl


def fused_linear_grpo_loss(hidden, weight, targets, mask, advantages, old_logp=None, ref_logp=None,
                           beta=0.04, clip_low=0.2, clip_high=0.2, temperature=1.0,
                           loss_agg="seq-mean-token-mean", *, upcast: bool = True):
    """The GRPO loss of DESIGN.md "Public API", computed naively with full logits.

    hidden [B, T, H], weight [V, H], targets/mask [B, T], advantages [B],
    old_logp/ref_logp [B, T] or None -> (scalar loss, metrics dict of floats).
    Positions with mask 0 never contribute, whatever old_logp/ref_logp hold there.
    """
    logp, entropy = linear_logprob(hidden, weight, targets, temperature,
                                   return_entropy=True, upcast=upcast)  # [B, T]
    mask = mask.to(logp.dtype)
    active = mask > 0
    term, ratio, kl = grpo_token_term(logp, active, advantages.unsqueeze(1), old_logp, ref_logp,
                                      beta, clip_low, clip_high)
    adv = advantages.to(logp.dtype).unsqueeze(1)  # [B, 1]
    loss = _aggregate(term, mask, loss_agg)
    with torch.no_grad():
        clipped = (-ratio.clamp(1 - clip_low, 1 + clip_high) * adv) > (-ratio * adv)
        metrics = {
            "loss": float(loss),
            "kl": _masked_mean(kl, active),
            "clip_fraction": _masked_mean(clipped.to(logp.dtype), active),
            "entropy": _masked_mean(entropy, active),
            "ratio_mean": _masked_mean(ratio, active),
            "logp_mean": _masked_mean(logp, active),
            "tokens": float(active.sum()),
        }
    return loss, metrics
