"""The "torch" backend: lm_head + log-prob streamed over token chunks and vocabulary slabs.

Runs on any device with plain PyTorch ops and is the CPU path and the CUDA fallback. At most
one [token_chunk, vocab_chunk] block of logits exists at a time (fp32, plus one temporary of
the same size); the [N, V] logits are never formed. The forward reduces each block to the
partials of `streaming.combine_vocab_partials`; the backward recomputes each block and hands
its dlogits to `streaming.streamed_backward`, which the triton backend shares.
"""

from __future__ import annotations

import functools

import torch

from videorft.kernels.streaming import combine_vocab_partials, streamed_backward

DEFAULT_TOKEN_CHUNK = 1024
DEFAULT_VOCAB_CHUNK = 8192


class _BlockBuffers:
    """Two reusable fp32 [token_chunk, vocab_chunk] buffers (logits and probabilities).

    Allocating a fresh block per (chunk, slab) costs page faults on CPU (large blocks go back to
    the OS when freed) that rival the exp pass itself; one pair per call is enough.
    """

    def __init__(self, rows: int, cols: int, device: torch.device, count: int):
        self.flat = [torch.empty(rows * cols, dtype=torch.float32, device=device) for _ in range(count)]

    def view(self, index: int, rows: int, cols: int) -> torch.Tensor:
        return self.flat[index][: rows * cols].view(rows, cols)


def _scaled_logits(h_c: torch.Tensor, w_v: torch.Tensor, temperature: float, out: torch.Tensor) -> torch.Tensor:
    """out[n, v] = fp32 logits / temperature of one block (GEMM in the operand dtype)."""
    if h_c.dtype == torch.float32:
        torch.mm(h_c, w_v.T, out=out)
    else:
        out.copy_(torch.mm(h_c, w_v.T))
    if temperature != 1.0:
        out.mul_(1.0 / temperature)
    return out


def _local_targets(targets: torch.Tensor, start: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets relative to a slab [start, start + width): clamped column index and in-slab flag."""
    local = targets - start  # [n]
    inside = (local >= 0) & (local < width)
    return local.clamp(0, width - 1).unsqueeze(1), inside


def torch_forward(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                  temperature: float, with_entropy: bool, token_chunk: int = DEFAULT_TOKEN_CHUNK,
                  vocab_chunk: int = DEFAULT_VOCAB_CHUNK):
    """hidden [N, H], weight [V, H], targets [N] -> logp [N], lse [N], entropy [N] or None (fp32)."""
    n_tokens, vocab = hidden.shape[0], weight.shape[0]
    slabs = range(0, vocab, vocab_chunk)
    parts = torch.empty((4, len(slabs), n_tokens), dtype=torch.float32, device=hidden.device)
    m, s, t, e = parts  # each [S, N]
    buffers = _BlockBuffers(min(token_chunk, n_tokens), min(vocab_chunk, vocab), hidden.device, 2)
    for c0 in range(0, n_tokens, token_chunk):
        c1 = min(c0 + token_chunk, n_tokens)
        h_c, t_c = hidden[c0:c1], targets[c0:c1]
        for j, v0 in enumerate(slabs):
            w_v = weight[v0:v0 + vocab_chunk]  # [v, H]
            z = _scaled_logits(h_c, w_v, temperature, buffers.view(0, c1 - c0, w_v.shape[0]))  # [n, v]
            local, inside = _local_targets(t_c, v0, w_v.shape[0])
            t[j, c0:c1] = torch.where(inside, z.gather(1, local).squeeze(1), 0.0)
            torch.amax(z, 1, out=m[j, c0:c1])
            p = torch.sub(z, m[j, c0:c1].unsqueeze(1), out=buffers.view(1, c1 - c0, w_v.shape[0])).exp_()
            torch.sum(p, 1, out=s[j, c0:c1])
            if with_entropy:  # sum_v p * z as a batched dot product (no [n, v] temporary)
                e[j, c0:c1] = torch.bmm(p.unsqueeze(1), z.unsqueeze(2)).view(-1)
    return combine_vocab_partials(m, s, t, e if with_entropy else None)


def torch_dlogits(h_c: torch.Tensor, w_v: torch.Tensor, t_c: torch.Tensor, lse_c: torch.Tensor,
                  g_c: torch.Tensor, start: int, temperature: float, buffers: _BlockBuffers) -> torch.Tensor:
    """d sum(g * logp) / d raw logits of one block: g * (onehot - softmax) / T, [n, v].

    The result lives in `buffers` (fp32 operands) and is only valid until the next call.
    """
    scale = g_c / temperature  # [n]
    dz = _scaled_logits(h_c, w_v, temperature, buffers.view(0, *t_c.shape, w_v.shape[0]))
    dz.sub_(lse_c.unsqueeze(1)).exp_().mul_(-scale.unsqueeze(1))  # -scale * p
    local, inside = _local_targets(t_c, start, w_v.shape[0])
    dz.scatter_add_(1, local, torch.where(inside, scale, 0.0).unsqueeze(1))
    return dz.to(h_c.dtype)


def torch_backward(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                   lse: torch.Tensor, grad_logp: torch.Tensor, temperature: float,
                   need_hidden: bool, need_weight: bool, token_chunk: int = DEFAULT_TOKEN_CHUNK,
                   vocab_chunk: int = DEFAULT_VOCAB_CHUNK):
    """(dHidden [N, H] or None, dWeight [V, H] or None) for the upstream grad_logp [N]."""
    buffers = _BlockBuffers(min(token_chunk, hidden.shape[0]), min(vocab_chunk, weight.shape[0]), hidden.device, 1)
    return streamed_backward(hidden, weight, targets, lse, grad_logp, temperature, need_hidden, need_weight,
                             token_chunk, vocab_chunk, functools.partial(torch_dlogits, buffers=buffers))
