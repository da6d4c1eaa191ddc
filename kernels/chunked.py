"""The "torch" backend: lm_head + log-prob streamed over token chunks and vocabulary slabs.

Runs on any device with plain PyTorch ops and is the CPU path and the CUDA fallback. At most
one [token_chunk, vocab_chunk] block of logits exists at a time (fp32, plus one temporary of
the same size); the [N, V] logits are never formed. The forward reduces each block to the
partials of `streaming.combine_vocab_partials`; the backward recomputes each block and hands
its dlogits to `streaming.streamed_backward`, which the triton backend shares.
"""

from __future__ import annotations

import torch

from videorft.kernels.streaming import combine_vocab_partials, streamed_backward

DEFAULT_TOKEN_CHUNK = 1024
DEFAULT_VOCAB_CHUNK = 8192


def _scaled_logits(h_c: torch.Tensor, w_v: torch.Tensor, temperature: float) -> torch.Tensor:
    """[n, v] fp32 logits / temperature of one block (GEMM in the operand dtype)."""
    z = torch.mm(h_c, w_v.T).to(torch.float32)  # [n, v]
    if temperature != 1.0:
        z.mul_(1.0 / temperature)
    return z


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
    shape = (len(slabs), n_tokens)
    f32 = dict(dtype=torch.float32, device=hidden.device)
    m, s, t = torch.empty(shape, **f32), torch.empty(shape, **f32), torch.empty(shape, **f32)
    e = torch.empty(shape, **f32) if with_entropy else None
    for c0 in range(0, n_tokens, token_chunk):
        c1 = min(c0 + token_chunk, n_tokens)
        h_c, t_c = hidden[c0:c1], targets[c0:c1]
        for j, v0 in enumerate(slabs):
            w_v = weight[v0:v0 + vocab_chunk]  # [v, H]
            z = _scaled_logits(h_c, w_v, temperature)  # [n, v]
            local, inside = _local_targets(t_c, v0, w_v.shape[0])
            t[j, c0:c1] = torch.where(inside, z.gather(1, local).squeeze(1), 0.0)
            m_j = z.max(1).values  # [n]
            p = torch.exp(z - m_j.unsqueeze(1))  # [n, v]
            m[j, c0:c1] = m_j
            s[j, c0:c1] = p.sum(1)
            if e is not None:
                e[j, c0:c1] = torch.linalg.vecdot(p, z)
            del z, p
    return combine_vocab_partials(m, s, t, e)


def torch_dlogits(h_c: torch.Tensor, w_v: torch.Tensor, t_c: torch.Tensor, lse_c: torch.Tensor,
                  g_c: torch.Tensor, start: int, temperature: float) -> torch.Tensor:
    """d sum(g * logp) / d raw logits of one block: g * (onehot - softmax) / T, [n, v]."""
    scale = g_c / temperature  # [n]
    dz = _scaled_logits(h_c, w_v, temperature)
    dz.sub_(lse_c.unsqueeze(1)).exp_().mul_(-scale.unsqueeze(1))  # -scale * p
    local, inside = _local_targets(t_c, start, w_v.shape[0])
    dz.scatter_add_(1, local, torch.where(inside, scale, 0.0).unsqueeze(1))
    return dz.to(h_c.dtype)


def torch_backward(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                   lse: torch.Tensor, grad_logp: torch.Tensor, temperature: float,
                   need_hidden: bool, need_weight: bool, token_chunk: int = DEFAULT_TOKEN_CHUNK,
                   vocab_chunk: int = DEFAULT_VOCAB_CHUNK):
    """(dHidden [N, H] or None, dWeight [V, H] or None) for the upstream grad_logp [N]."""
    return streamed_backward(hidden, weight, targets, lse, grad_logp, temperature,
                             need_hidden, need_weight, token_chunk, vocab_chunk, torch_dlogits)
