"""Vocabulary streaming shared by the torch and triton backends.

Both backends see the [N, V] logits only as tiles. The forward of each backend reduces every
(token, vocabulary split) pair to four numbers, the "partials":
    m = max z,  s = sum exp(z - m),  t = z[target] (0 when the target lies elsewhere),
    e = sum exp(z - m) * z,
and `combine_vocab_partials` merges the splits into log-prob, log-sum-exp and entropy.

The backward of both backends is `streamed_backward`: it walks token chunks (outer) and
vocabulary slabs (inner), asks the backend for the dlogits tile of that (chunk, slab), and
turns it into dHidden and dWeight with two GEMMs. Only one [chunk, slab] dlogits tile exists
at a time; dHidden of a chunk is accumulated over slabs in fp32, and dWeight of a slab is
accumulated over token chunks in the weight's dtype (one rounding per token chunk).
"""

from __future__ import annotations

from typing import Callable

import torch

DlogitsFn = Callable[..., torch.Tensor]
"""(hidden_chunk [n, H], weight_slab [v, H], targets_chunk [n], lse_chunk [n], grad_chunk [n],
slab_start, temperature) -> dlogits [n, v] in the operand dtype (fp32 for fp32 operands)."""


def combine_vocab_partials(m: torch.Tensor, s: torch.Tensor, t: torch.Tensor,
                           e: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Merge per-split partials [S, N] into logp [N], lse [N] and entropy [N] (or None)."""
    top = m.max(0).values  # [N]
    scale = torch.exp(m - top)  # [S, N]
    total = (s * scale).sum(0)  # [N]
    lse = top + torch.log(total)
    logp = t.sum(0) - lse
    entropy = None
    if e is not None:
        mean_logit = (e * scale).sum(0) / total  # [N]
        entropy = lse - mean_logit
    return logp, lse, entropy


def _accumulate_mm(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """acc (fp32) += a @ b. The GEMM accumulates in fp32 for every dtype; a 16-bit product is
    written in fp32 on CUDA (cuBLAS out_dtype) and rounded once to 16 bits elsewhere."""
    if a.dtype == torch.float32:
        acc.addmm_(a, b)
    elif a.is_cuda:
        acc += torch.mm(a, b, out_dtype=torch.float32)
    else:
        acc += torch.mm(a, b)


def streamed_backward(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                      lse: torch.Tensor, grad_logp: torch.Tensor, temperature: float,
                      need_hidden: bool, need_weight: bool, token_chunk: int, vocab_chunk: int,
                      dlogits_fn: DlogitsFn) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """dHidden [N, H] and dWeight [V, H] of sum(grad_logp * logp), without [N, V] logits.

    hidden [N, H], weight [V, H], targets [N], lse [N] fp32 (from the forward),
    grad_logp [N] fp32. Returns None for a gradient that is not needed.
    """
    n_tokens, vocab = hidden.shape[0], weight.shape[0]
    grad_hidden = torch.empty_like(hidden) if need_hidden else None
    grad_weight = torch.zeros_like(weight) if need_weight else None
    if not (need_hidden or need_weight):
        return grad_hidden, grad_weight
    grad_logp = grad_logp.to(torch.float32)
    # fp32 hidden accumulates straight into its gradient rows; 16-bit ones through an fp32 buffer.
    direct = need_hidden and hidden.dtype == torch.float32
    for c0 in range(0, n_tokens, token_chunk):
        c1 = min(c0 + token_chunk, n_tokens)
        h_c = hidden[c0:c1]  # [n, H]
        dh_acc = None
        if need_hidden:
            dh_acc = grad_hidden[c0:c1].zero_() if direct else h_c.new_zeros(h_c.shape, dtype=torch.float32)
        for v0 in range(0, vocab, vocab_chunk):
            w_v = weight[v0:v0 + vocab_chunk]  # [v, H]
            dz = dlogits_fn(h_c, w_v, targets[c0:c1], lse[c0:c1], grad_logp[c0:c1], v0, temperature)  # [n, v]
            if need_hidden:
                _accumulate_mm(dh_acc, dz, w_v)
            if need_weight:
                grad_weight[v0:v0 + vocab_chunk].addmm_(dz.T, h_c)
        if need_hidden and not direct:
            grad_hidden[c0:c1] = dh_acc
    return grad_hidden, grad_weight
