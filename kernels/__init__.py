"""Fused lm_head + token log-prob + GRPO loss kernels, with PyTorch references and fallbacks.

Public API (DESIGN.md "Public API"):
    linear_logprob(hidden, weight, targets, temperature=1.0, backend="auto") -> logp
    fused_linear_grpo_loss(hidden, weight, targets, mask, advantages, ...) -> (loss, metrics)
    reference.linear_logprob / reference.fused_linear_grpo_loss: the naive fp32 oracles

Backends: "triton" (CUDA; CPU tensors only under TRITON_INTERPRET=1), "torch" (chunked, any
device), "reference" (naive, materialises [N, V] logits), "auto" (triton on CUDA tensors,
torch otherwise). None of the fused backends ever holds the [N, V] logits.
"""

from __future__ import annotations

import os

import torch

from videorft.kernels import ops, reference
from videorft.kernels.grpo_math import STAT_NAMES, token_weights
from videorft.kernels.reference import LOSS_AGGREGATIONS

BACKENDS = ("auto", "triton", "torch", "reference")

__all__ = ["linear_logprob", "fused_linear_grpo_loss", "grpo_loss_with_stats", "resolve_backend",
           "reference", "BACKENDS", "LOSS_AGGREGATIONS", "STAT_NAMES"]


def resolve_backend(backend: str, device: torch.device) -> str:
    """"auto" -> "triton" on CUDA, "torch" elsewhere; checks that the choice can run there."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "triton" if device.type == "cuda" else "torch"
    if backend == "triton" and device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError("backend 'triton' needs CUDA tensors (or TRITON_INTERPRET=1 for CPU tests); "
                         "use backend='torch' on CPU")
    return backend


def _check_head(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, temperature: float) -> None:
    """Shape, dtype and device checks shared by both entry points; errors name the argument."""
    if hidden.dim() not in (2, 3):
        raise ValueError(f"hidden must be [N, H] or [B, T, H], got shape {tuple(hidden.shape)}")
    if weight.dim() != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(f"weight must be [V, H] with H={hidden.shape[-1]} (hidden's last dim), "
                         f"got shape {tuple(weight.shape)}")
    if not hidden.is_floating_point() or weight.dtype != hidden.dtype:
        raise ValueError(f"hidden and weight must share one floating dtype, got {hidden.dtype} and {weight.dtype}")
    if targets.shape != hidden.shape[:-1]:
        raise ValueError(f"targets must have hidden's leading shape {tuple(hidden.shape[:-1])}, "
                         f"got {tuple(targets.shape)}")
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must be an integer (long) tensor, got {targets.dtype}")
    if not (hidden.device == weight.device == targets.device):
        raise ValueError(f"hidden, weight and targets must be on one device, got "
                         f"{hidden.device}, {weight.device}, {targets.device}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def linear_logprob(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                   temperature: float = 1.0, backend: str = "auto", *, return_entropy: bool = False,
                   token_chunk: int = 0, vocab_chunk: int = 0):
    """log softmax(hidden @ weight.T / temperature)[targets] without materialising the logits.

    hidden [N, H] or [B, T, H]; weight [V, H] (same dtype); targets with hidden's leading shape
    (long, in [0, V)) -> fp32 log-probs with that leading shape, differentiable w.r.t. hidden
    and weight. `return_entropy=True` also returns the per-token entropy (fp32, a metric: it
    carries no gradient). Under torch.no_grad() nothing is saved for backward, which is the
    cheap path for old-policy and reference log-probs. token_chunk/vocab_chunk override the
    block sizes of the chosen backend (0 = its default).
    """
    _check_head(hidden, weight, targets, temperature)
    lead = hidden.shape[:-1]
    backend = resolve_backend(backend, hidden.device)
    if backend == "reference":
        return reference.linear_logprob(hidden, weight, targets, temperature, return_entropy=return_entropy)
    logp, _, entropy = ops.linear_logprob_op(
        hidden.reshape(-1, hidden.shape[-1]), weight, targets.reshape(-1).long(), float(temperature),
        return_entropy, backend, int(token_chunk), int(vocab_chunk))
    if return_entropy:
        return logp.view(lead), entropy.view(lead)
    return logp.view(lead)


def _check_grpo(hidden, weight, targets, temperature, mask, advantages, old_logp, ref_logp, clip_low, clip_high,
                loss_agg):
    """The head's checks plus the GRPO arguments' shapes and ranges."""
    _check_head(hidden, weight, targets, temperature)
    if hidden.dim() != 3:
        raise ValueError(f"hidden must be [B, T, H] for the GRPO loss, got shape {tuple(hidden.shape)}")
    bt = tuple(hidden.shape[:2])
    for name, value in (("mask", mask), ("old_logp", old_logp), ("ref_logp", ref_logp)):
        if value is not None and tuple(value.shape) != bt:
            raise ValueError(f"{name} must be [B, T] = {bt}, got {tuple(value.shape)}")
    if tuple(advantages.shape) != bt[:1]:
        raise ValueError(f"advantages must be [B] = {bt[:1]}, got {tuple(advantages.shape)}")
    if loss_agg not in LOSS_AGGREGATIONS:
        raise ValueError(f"loss_agg must be one of {LOSS_AGGREGATIONS}, got {loss_agg!r}")
    if not (0 <= clip_low < 1 and clip_high >= 0):
        raise ValueError(f"need 0 <= clip_low < 1 and clip_high >= 0, got {clip_low}, {clip_high}")


def grpo_loss_with_stats(hidden, weight, targets, mask, advantages, old_logp=None, ref_logp=None,
                         beta=0.04, clip_low=0.2, clip_high=0.2, temperature=1.0,
                         loss_agg="seq-mean-token-mean", backend="auto", *, token_chunk=0, vocab_chunk=0):
    """`fused_linear_grpo_loss` without the host sync: (loss [], stats [len(STAT_NAMES)] fp32).

    Same arguments; backend "reference" is not accepted here. This is the form to call inside
    torch.compile (fullgraph): stats stay on the device in the order of STAT_NAMES.
    """
    _check_grpo(hidden, weight, targets, temperature, mask, advantages, old_logp, ref_logp, clip_low, clip_high,
                loss_agg)
    backend = resolve_backend(backend, hidden.device)
    if backend == "reference":
        raise ValueError("grpo_loss_with_stats has no 'reference' backend; call reference.fused_linear_grpo_loss")
    bsz, seq = hidden.shape[:2]
    flat = lambda x: None if x is None else x.reshape(-1).to(torch.float32)  # noqa: E731
    weights = token_weights(mask, loss_agg).reshape(-1)  # [N]
    token_adv = advantages.to(torch.float32).unsqueeze(1).expand(bsz, seq).reshape(-1)  # [N]
    loss, stats, _, _ = ops.grpo_loss_op(
        hidden.reshape(bsz * seq, -1), weight, targets.reshape(-1).long(), weights, token_adv,
        flat(old_logp), flat(ref_logp), float(beta), float(clip_low), float(clip_high),
        float(temperature), backend, int(token_chunk), int(vocab_chunk))
    return loss, stats


def fused_linear_grpo_loss(hidden, weight, targets, mask, advantages, old_logp=None, ref_logp=None,
                           beta=0.04, clip_low=0.2, clip_high=0.2, temperature=1.0,
                           loss_agg="seq-mean-token-mean", backend="auto", *, token_chunk=0, vocab_chunk=0):
    """lm_head + log-prob + GRPO loss in one pass, without [B, T, V] logits.

    hidden [B, T, H]; weight [V, H]; targets, mask [B, T]; advantages [B];
    old_logp / ref_logp [B, T] fp32 or None. Semantics (DESIGN.md): ratio = exp(logp - old)
    (old None = on-policy, ratio of the detached self); per token
    term = max(-ratio*A, -clamp(ratio, 1-clip_low, 1+clip_high)*A) + beta * k3_KL(ref, logp)
    (KL only with ref_logp and beta != 0, log-ratio clamped to [-10, 10]); loss_agg one of
    "seq-mean-token-mean", "token-mean", "seq-mean-token-sum-norm"; an all-zero mask gives
    loss 0 and zero gradients.
    Returns (loss: 0-d fp32 tensor, differentiable w.r.t. hidden and weight, metrics: dict of
    floats with "loss" and STAT_NAMES = kl, clip_fraction, entropy, ratio_mean, logp_mean,
    tokens; means over masked-in tokens).
    """
    if resolve_backend(backend, hidden.device) == "reference":
        _check_grpo(hidden, weight, targets, temperature, mask, advantages, old_logp, ref_logp, clip_low,
                    clip_high, loss_agg)
        return reference.fused_linear_grpo_loss(hidden, weight, targets, mask, advantages, old_logp, ref_logp,
                                                beta, clip_low, clip_high, temperature, loss_agg)
    loss, stats = grpo_loss_with_stats(hidden, weight, targets, mask, advantages, old_logp, ref_logp,
                                       beta, clip_low, clip_high, temperature, loss_agg, backend,
                                       token_chunk=token_chunk, vocab_chunk=vocab_chunk)
    values = torch.cat([loss.detach().reshape(1), stats]).tolist()  # one host sync
    return loss, dict(zip(("loss",) + STAT_NAMES, values))
