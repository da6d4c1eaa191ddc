"""torch.library custom ops for the fused kernels, so torch.compile sees them as single nodes.

Three ops in the `videorft` namespace, each with a fake (meta) implementation:
    linear_logprob(hidden, weight, targets, ...) -> (logp, lse, entropy)
    linear_logprob_backward(hidden, weight, targets, lse, grad_logp, ...) -> (d_hidden, d_weight)
    grpo_loss(hidden, weight, targets, mask, advantages, old?, ref?, rollout?, ...) -> (loss, stats, coef, lse)
`linear_logprob` and `grpo_loss` register their autograd formulas; both backwards are the
`linear_logprob_backward` op, driven by the upstream grad of logp (linear_logprob) or by
grad_loss * coef (grpo_loss). lse, entropy, stats and coef are not differentiable.
hidden is flat [N, H] (weight [V, H], targets [N]); the loss's per-token inputs keep their
[B, T] shape (the sequence-level options need it) with B * T = N.
`backend` is a resolved name ("torch" or "triton"); token_chunk/vocab_chunk 0 mean the
backend's default block sizes.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from videorft.kernels import chunked
from videorft.kernels.grpo_math import grpo_loss_coef_stats, stat_names
from videorft.kernels.loss_options import LossOptions


def _check_targets(targets: Tensor, vocab: int) -> None:
    """Targets outside [0, V) are an error (asynchronous device assert on CUDA)."""
    in_range = ((targets >= 0) & (targets < vocab)).all()
    if targets.is_cuda:
        torch._assert_async(in_range, f"targets must lie in [0, {vocab}) (vocabulary of weight)")
    elif not bool(in_range):
        bad = targets[(targets < 0) | (targets >= vocab)][:5].tolist()
        raise ValueError(f"targets must lie in [0, {vocab}) (rows of weight); found {bad}")


def _chunks(token_chunk: int, vocab_chunk: int, defaults: tuple[int, int]) -> dict:
    return {"token_chunk": token_chunk or defaults[0], "vocab_chunk": vocab_chunk or defaults[1]}


def _forward(hidden, weight, targets, temperature, with_entropy, backend, token_chunk, vocab_chunk):
    _check_targets(targets, weight.shape[0])
    if backend == "triton":
        from videorft.kernels.triton_linear_logprob import triton_forward

        return triton_forward(hidden, weight, targets, temperature, with_entropy)
    if backend == "torch":
        sizes = _chunks(token_chunk, vocab_chunk, (chunked.DEFAULT_TOKEN_CHUNK, chunked.DEFAULT_VOCAB_CHUNK))
        return chunked.torch_forward(hidden, weight, targets, temperature, with_entropy, **sizes)
    raise ValueError(f"kernel backend must be 'torch' or 'triton' here, got {backend!r}")


def _backward(hidden, weight, targets, lse, grad_logp, temperature, need_hidden, need_weight,
              backend, token_chunk, vocab_chunk):
    """The backend's backward, on the tokens whose upstream gradient is non-zero only.

    A token with grad_logp 0 (padding, a masked-out position, a zero GRPO coefficient)
    contributes nothing to either gradient, so skipping its [V x H] GEMM work is exact.
    """
    keep = grad_logp != 0                                                      # [N]
    if bool(keep.all()):
        return _backward_rows(hidden, weight, targets, lse, grad_logp, temperature, need_hidden, need_weight,
                              backend, token_chunk, vocab_chunk)
    rows = keep.nonzero().squeeze(1)                                           # [n]
    d_rows, d_weight = _backward_rows(hidden[rows], weight, targets[rows], lse[rows], grad_logp[rows], temperature,
                                      need_hidden, need_weight, backend, token_chunk, vocab_chunk)
    d_hidden = None
    if need_hidden:
        d_hidden = torch.zeros_like(hidden).index_copy_(0, rows, d_rows)       # [N, H]
    return d_hidden, d_weight


def _backward_rows(hidden, weight, targets, lse, grad_logp, temperature, need_hidden, need_weight,
                   backend, token_chunk, vocab_chunk):
    if backend == "triton":
        from videorft.kernels import triton_linear_logprob as tk

        sizes = _chunks(token_chunk, vocab_chunk, (tk.BACKWARD_TOKEN_CHUNK, tk.BACKWARD_VOCAB_CHUNK))
        return tk.triton_backward(hidden, weight, targets, lse, grad_logp, temperature,
                                  need_hidden, need_weight, **sizes)
    sizes = _chunks(token_chunk, vocab_chunk, (chunked.DEFAULT_TOKEN_CHUNK, chunked.DEFAULT_VOCAB_CHUNK))
    return chunked.torch_backward(hidden, weight, targets, lse, grad_logp, temperature,
                                  need_hidden, need_weight, **sizes)


# ---------------------------------------------------------------- linear_logprob (forward)

@torch.library.custom_op("videorft::linear_logprob", mutates_args=())
def linear_logprob_op(hidden: Tensor, weight: Tensor, targets: Tensor, temperature: float,
                      with_entropy: bool, backend: str, token_chunk: int,
                      vocab_chunk: int) -> tuple[Tensor, Tensor, Tensor]:
    """logp [N], lse [N] and entropy ([N], or [0] when with_entropy is False), all fp32."""
    logp, lse, entropy = _forward(hidden, weight, targets, temperature, with_entropy, backend,
                                  token_chunk, vocab_chunk)
    return logp, lse, entropy if entropy is not None else logp.new_empty(0)


@linear_logprob_op.register_fake
def _(hidden, weight, targets, temperature, with_entropy, backend, token_chunk, vocab_chunk):
    n = hidden.shape[0]
    f32 = dict(dtype=torch.float32)
    return hidden.new_empty(n, **f32), hidden.new_empty(n, **f32), hidden.new_empty(n if with_entropy else 0, **f32)


# ---------------------------------------------------------------- shared backward op

@torch.library.custom_op("videorft::linear_logprob_backward", mutates_args=())
def linear_logprob_backward_op(hidden: Tensor, weight: Tensor, targets: Tensor, lse: Tensor,
                               grad_logp: Tensor, temperature: float, need_hidden: bool,
                               need_weight: bool, backend: str, token_chunk: int,
                               vocab_chunk: int) -> tuple[Tensor, Tensor]:
    """(d_hidden [N, H], d_weight [V, H]) of sum(grad_logp * logp); [0]-sized when not needed."""
    d_hidden, d_weight = _backward(hidden, weight, targets, lse, grad_logp, temperature,
                                   need_hidden, need_weight, backend, token_chunk, vocab_chunk)
    empty = hidden.new_empty(0)
    return (d_hidden if d_hidden is not None else empty, d_weight if d_weight is not None else empty)


@linear_logprob_backward_op.register_fake
def _(hidden, weight, targets, lse, grad_logp, temperature, need_hidden, need_weight, backend,
      token_chunk, vocab_chunk):
    return (torch.empty_like(hidden) if need_hidden else hidden.new_empty(0),
            torch.empty_like(weight) if need_weight else weight.new_empty(0))


def _run_backward(ctx, grad_logp: Tensor):
    hidden, weight, targets, lse = ctx.saved_tensors[:4]
    need_hidden, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    d_hidden, d_weight = linear_logprob_backward_op(
        hidden, weight, targets, lse, grad_logp, ctx.temperature, need_hidden, need_weight,
        ctx.backend, ctx.token_chunk, ctx.vocab_chunk)
    return (d_hidden if need_hidden else None), (d_weight if need_weight else None)


def _remember(ctx, temperature: float, backend: str, token_chunk: int, vocab_chunk: int) -> None:
    ctx.temperature, ctx.backend = temperature, backend
    ctx.token_chunk, ctx.vocab_chunk = token_chunk, vocab_chunk


def _logprob_setup_context(ctx, inputs, output):
    hidden, weight, targets, temperature, _, backend, token_chunk, vocab_chunk = inputs
    logp, lse, entropy = output
    ctx.mark_non_differentiable(lse, entropy)
    ctx.save_for_backward(hidden, weight, targets, lse)
    _remember(ctx, temperature, backend, token_chunk, vocab_chunk)


def _logprob_backward(ctx, grad_logp, grad_lse, grad_entropy):
    d_hidden, d_weight = _run_backward(ctx, grad_logp)
    return d_hidden, d_weight, None, None, None, None, None, None


linear_logprob_op.register_autograd(_logprob_backward, setup_context=_logprob_setup_context)


# ---------------------------------------------------------------- fused GRPO loss

def _masked_forward(hidden, weight, targets, active, temperature, backend, token_chunk, vocab_chunk):
    """logp, lse, entropy [N] computed on the `active` tokens only (0 elsewhere): padding and
    masked-out positions never reach the [V x H] GEMM."""
    if bool(active.all()):
        return _forward(hidden, weight, targets, temperature, True, backend, token_chunk, vocab_chunk)
    rows = active.nonzero().squeeze(1)                                          # [n]
    out = [torch.zeros(active.shape, dtype=torch.float32, device=hidden.device) for _ in range(3)]
    if rows.numel():
        parts = _forward(hidden[rows], weight, targets[rows], temperature, True, backend, token_chunk, vocab_chunk)
        for full, part in zip(out, parts):
            full.index_copy_(0, rows, part)
    return tuple(out)


@torch.library.custom_op("videorft::grpo_loss", mutates_args=())
def grpo_loss_op(hidden: Tensor, weight: Tensor, targets: Tensor, mask: Tensor, advantages: Tensor,
                 old_logp: Optional[Tensor], ref_logp: Optional[Tensor], rollout_logp: Optional[Tensor],
                 num_tokens: Optional[Tensor], beta: float, clip_low: float, clip_high: float,
                 delta: Optional[float], loss_agg: str, importance_sampling_level: str, policy_loss: str,
                 rollout_is: Optional[str], rollout_is_level: str, rollout_is_threshold: float,
                 max_completion_length: Optional[int], temperature: float, backend: str,
                 token_chunk: int, vocab_chunk: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """loss [], stats [len(stat_names(rollout_is))], coef [N] = d loss / d logp, lse [N].

    hidden [N, H] with N = B * T; mask, old/ref/rollout log-probs [B, T]; advantages [B];
    num_tokens 0-d or None. The scalars are the fields of `loss_options.LossOptions`.
    """
    opts = LossOptions(beta, clip_low, clip_high, loss_agg, importance_sampling_level, policy_loss, delta,
                       rollout_is, rollout_is_level, rollout_is_threshold, max_completion_length)
    logp, lse, entropy = _masked_forward(hidden, weight, targets, mask.reshape(-1) > 0, temperature, backend,
                                         token_chunk, vocab_chunk)
    shape = mask.shape
    loss, coef, stats = grpo_loss_coef_stats(logp.view(shape), entropy.view(shape), mask, advantages,
                                             old_logp, ref_logp, rollout_logp, num_tokens, opts)
    return loss, stats, coef.reshape(-1), lse


@grpo_loss_op.register_fake
def _(hidden, weight, targets, mask, advantages, old_logp, ref_logp, rollout_logp, num_tokens, beta,
      clip_low, clip_high, delta, loss_agg, importance_sampling_level, policy_loss, rollout_is,
      rollout_is_level, rollout_is_threshold, max_completion_length, temperature, backend,
      token_chunk, vocab_chunk):
    n = hidden.shape[0]
    f32 = dict(dtype=torch.float32)
    return (hidden.new_empty((), **f32), hidden.new_empty(len(stat_names(rollout_is)), **f32),
            hidden.new_empty(n, **f32), hidden.new_empty(n, **f32))


def _grpo_setup_context(ctx, inputs, output):
    hidden, weight, targets = inputs[:3]
    temperature, backend, token_chunk, vocab_chunk = inputs[-4:]
    _, stats, coef, lse = output
    ctx.mark_non_differentiable(stats, coef, lse)
    ctx.save_for_backward(hidden, weight, targets, lse, coef)
    ctx.num_inputs = len(inputs)
    _remember(ctx, temperature, backend, token_chunk, vocab_chunk)


def _grpo_backward(ctx, grad_loss, grad_stats, grad_coef, grad_lse):
    coef = ctx.saved_tensors[4]
    d_hidden, d_weight = _run_backward(ctx, coef * grad_loss)
    return (d_hidden, d_weight) + (None,) * (ctx.num_inputs - 2)


grpo_loss_op.register_autograd(_grpo_backward, setup_context=_grpo_setup_context)
