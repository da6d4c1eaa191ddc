"""Fused lm_head + token log-prob + GRPO loss kernels, with PyTorch references and fallbacks.

Public API (docs/design.md §4):
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
from videorft.kernels.grpo_math import ROLLOUT_STAT_NAMES, STAT_NAMES, stat_names
from videorft.kernels.loss_options import IS_LEVELS, POLICY_LOSSES, ROLLOUT_IS_MODES, LossOptions
from videorft.kernels.reference import LOSS_AGGREGATIONS

BACKENDS = ("auto", "triton", "torch", "reference")

__all__ = ["linear_logprob", "fused_linear_grpo_loss", "grpo_loss_with_stats", "resolve_backend",
           "reference", "stat_names", "BACKENDS", "LOSS_AGGREGATIONS", "STAT_NAMES", "ROLLOUT_STAT_NAMES",
           "IS_LEVELS", "POLICY_LOSSES", "ROLLOUT_IS_MODES"]


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


def _check_grpo(hidden, weight, targets, temperature, mask, advantages, tensors: dict) -> None:
    """The head's checks plus the [B, T] / [B] shapes of the GRPO tensors (named in errors)."""
    _check_head(hidden, weight, targets, temperature)
    if hidden.dim() != 3:
        raise ValueError(f"hidden must be [B, T, H] for the GRPO loss, got shape {tuple(hidden.shape)}")
    bt = tuple(hidden.shape[:2])
    for name, value in {"mask": mask, **tensors}.items():
        if value is not None and tuple(value.shape) != bt:
            raise ValueError(f"{name} must be [B, T] = {bt}, got {tuple(value.shape)}")
    if tuple(advantages.shape) != bt[:1]:
        raise ValueError(f"advantages must be [B] = {bt[:1]}, got {tuple(advantages.shape)}")


def _num_tokens_tensor(num_tokens, device: torch.device) -> torch.Tensor | None:
    """num_tokens as a 0-d fp32 tensor on `device` (a tensor is taken as is: no host sync)."""
    if num_tokens is None:
        return None
    if isinstance(num_tokens, torch.Tensor):
        if num_tokens.numel() != 1:
            raise ValueError(f"num_tokens must be a number or a one-element tensor, got shape "
                             f"{tuple(num_tokens.shape)}")
        return num_tokens.reshape(()).to(device=device, dtype=torch.float32)
    if isinstance(num_tokens, bool) or not isinstance(num_tokens, (int, float)) or not num_tokens > 0:
        raise ValueError(f"num_tokens must be a positive number (the global masked-token count), got {num_tokens!r}")
    return torch.tensor(float(num_tokens), dtype=torch.float32, device=device)


def _validated(hidden, weight, targets, mask, advantages, old_logp, ref_logp, beta, clip_low, clip_high,
               temperature, loss_agg, importance_sampling_level, rollout_logp, rollout_is, rollout_is_level,
               rollout_is_threshold, num_tokens, max_completion_length, delta,
               policy_loss) -> tuple[LossOptions, torch.Tensor | None]:
    """Every check of the GRPO entry points, whose arguments it takes in their order:
    (the options record, num_tokens as a 0-d tensor or None)."""
    _check_grpo(hidden, weight, targets, temperature, mask, advantages,
                {"old_logp": old_logp, "ref_logp": ref_logp, "rollout_logp": rollout_logp})
    opts = LossOptions(float(beta), float(clip_low), float(clip_high), loss_agg, importance_sampling_level,
                       policy_loss, None if delta is None else float(delta), rollout_is, rollout_is_level,
                       float(rollout_is_threshold), max_completion_length)
    opts.check(has_rollout_logp=rollout_logp is not None, has_num_tokens=num_tokens is not None)
    return opts, _num_tokens_tensor(num_tokens, hidden.device)


def grpo_loss_with_stats(hidden, weight, targets, mask, advantages, old_logp=None, ref_logp=None,
                         beta=0.04, clip_low=0.2, clip_high=0.2, temperature=1.0,
                         loss_agg="seq-mean-token-mean", importance_sampling_level="token",
                         rollout_logp=None, rollout_is=None, rollout_is_level="token",
                         rollout_is_threshold=2.0, num_tokens=None, max_completion_length=None,
                         delta=None, policy_loss="ppo", backend="auto", *, token_chunk=0, vocab_chunk=0):
    """`fused_linear_grpo_loss` without the host sync: (loss [], stats [len(stat_names(rollout_is))] fp32).

    Same arguments; backend "reference" is not accepted here. This is the form to call inside
    torch.compile (fullgraph): stats stay on the device in the order of `stat_names(rollout_is)`.
    """
    opts, count = _validated(hidden, weight, targets, mask, advantages, old_logp, ref_logp, beta, clip_low,
                             clip_high, temperature, loss_agg, importance_sampling_level, rollout_logp,
                             rollout_is, rollout_is_level, rollout_is_threshold, num_tokens,
                             max_completion_length, delta, policy_loss)
    backend = resolve_backend(backend, hidden.device)
    if backend == "reference":
        raise ValueError("grpo_loss_with_stats has no 'reference' backend; call reference.fused_linear_grpo_loss")
    bsz, seq = hidden.shape[:2]
    fp32 = lambda x: None if x is None else x.to(torch.float32)  # noqa: E731
    loss, stats, _, _ = ops.grpo_loss_op(
        hidden.reshape(bsz * seq, -1), weight, targets.reshape(-1).long(), mask.to(torch.float32),
        advantages.to(torch.float32), fp32(old_logp), fp32(ref_logp), fp32(rollout_logp), count,
        opts.beta, opts.clip_low, opts.clip_high, opts.delta, opts.loss_agg, opts.importance_sampling_level,
        opts.policy_loss, opts.rollout_is, opts.rollout_is_level, opts.rollout_is_threshold,
        opts.max_completion_length, float(temperature), backend, int(token_chunk), int(vocab_chunk))
    return loss, stats


def fused_linear_grpo_loss(hidden, weight, targets, mask, advantages, old_logp=None, ref_logp=None,
                           beta=0.04, clip_low=0.2, clip_high=0.2, temperature=1.0,
                           loss_agg="seq-mean-token-mean", importance_sampling_level="token",
                           rollout_logp=None, rollout_is=None, rollout_is_level="token",
                           rollout_is_threshold=2.0, num_tokens=None, max_completion_length=None,
                           delta=None, policy_loss="ppo", backend="auto", *, token_chunk=0, vocab_chunk=0):
    """lm_head + log-prob + GRPO loss in one pass, without [B, T, V] logits.

    hidden [B, T, H]; weight [V, H]; targets, mask [B, T]; advantages [B];
    old_logp / ref_logp / rollout_logp [B, T] fp32 or None. Per token:
        term = c * pg + beta * k3_KL(ref, logp)
    (KL only with ref_logp and beta != 0, log-ratio clamped to [-10, 10]; never reweighted).
    Policy term, with x the log-ratio logp - old (old None = on-policy: the detached self) and
    r = exp(x); importance_sampling_level="sequence" (GSPO) replaces x by the masked mean of the
    sequence's token log-ratios, for every token of it (gradients flow through the mean):
        policy_loss="ppo":   pg = max(-min(r, delta) * A, -clamp(r, 1-clip_low, 1+clip_high) * A)
                             (delta None: no cap; else two-sided clipping, delta >= 1 + clip_high)
        policy_loss="cispo": pg = -sg(min(r, 1 + clip_high)) * A * logp   (MiniMax-M1)
    Sampler correction (rollout_is with rollout_logp, the sampler's log-probs): with
    d = old - rollout per token, rho = exp(d) (rollout_is_level "token") or exp(sum of the
    sequence's masked d) ("sequence"); "tis": c = sg(min(rho, rollout_is_threshold)); "mis":
    c = 1 where rho lies in [1/threshold, threshold], else 0. Without rollout_is, c = 1.
    Aggregation loss_agg: "seq-mean-token-mean" (mean over non-empty sequences of their token
    means), "token-mean" (sum(term*mask) / num_tokens, default sum(mask); pass the count
    summed over ranks and micro-batches to make DAPO exact: the per-rank losses then add up to
    the global one), "seq-mean-token-sum-norm" (sum(term*mask) / (B * max_completion_length),
    default B * T). An all-zero mask gives loss 0 and zero gradients.
    Returns (loss: 0-d fp32 tensor, differentiable w.r.t. hidden and weight, metrics: dict of
    floats with "loss" and STAT_NAMES = kl, clip_fraction (PPO: share of tokens whose clipped
    branch wins; CISPO: share whose IS weight was truncated), entropy, ratio_mean, logp_mean,
    tokens; means over masked-in tokens). With rollout_is also rollout_is_mean / rollout_is_max
    (the applied weight c), rollout_is_cut_fraction (share truncated or masked) and rollout_kl,
    the k3 estimate mean(exp(d) - d - 1) of KL(sampler || trainer) over masked-in tokens.
    """
    args = (hidden, weight, targets, mask, advantages, old_logp, ref_logp, beta, clip_low, clip_high,
            temperature, loss_agg, importance_sampling_level, rollout_logp, rollout_is, rollout_is_level,
            rollout_is_threshold, num_tokens, max_completion_length, delta, policy_loss)
    if resolve_backend(backend, hidden.device) == "reference":
        _validated(*args)
        return reference.fused_linear_grpo_loss(*args)
    loss, stats = grpo_loss_with_stats(*args, backend, token_chunk=token_chunk, vocab_chunk=vocab_chunk)
    values = torch.cat([loss.detach().reshape(1), stats]).tolist()  # one host sync
    return loss, dict(zip(("loss",) + stat_names(rollout_is), values))
