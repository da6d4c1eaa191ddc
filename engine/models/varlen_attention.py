"""Attention over packed variable-length sequences, described by cumulative lengths (cu_seqlens).

Several sequences are concatenated along the token axis; `cu_seqlens` ([n + 1], int32, starting
at 0) marks where each one begins and ends, and no token attends across a boundary. This is the
layout flash-attn's varlen kernels consume and the one Qwen-VL vision towers already use for
their window and full attention; the language model gets it from packed training rows.

Backends (all give the result of running each sequence on its own):
  "flash_attn"      flash_attn_varlen_func, one launch for all sequences (CUDA, fp16/bf16).
  "sdpa_segments"   one torch SDPA call per sequence (any device). On CPU it beat one masked call
                    3.9x (language-model lengths) and 24x (vision windows), and a padded batch
                    2.0x and 1.5x: the masked call computes every masked-out block, the padded
                    one every pad (bench/bench_attention.py::test_cpu_varlen_strategies).
  "sdpa_block_mask" a single SDPA call with a block-diagonal (causal) boolean mask (any device).
  "auto"            flash_attn when the tensors allow it and flash-attn is installed, else
                    sdpa_segments.
"""

from __future__ import annotations

import functools
from typing import Literal, Sequence

import torch
import torch.nn.functional as F

VarlenBackend = Literal["auto", "flash_attn", "sdpa_segments", "sdpa_block_mask"]
VARLEN_BACKENDS: tuple[str, ...] = ("auto", "flash_attn", "sdpa_segments", "sdpa_block_mask")
FLASH_DTYPES = (torch.float16, torch.bfloat16)


def cu_seqlens_from_lengths(lengths: Sequence[int] | torch.Tensor,
                            device: torch.device | str | None = None) -> torch.Tensor:
    """Cumulative boundaries int32 [n + 1] (0, L0, L0+L1, ...) of sequences with these lengths."""
    lengths = torch.as_tensor(lengths, dtype=torch.int64, device=device).reshape(-1)
    if (lengths < 0).any():
        raise ValueError(f"sequence lengths must be >= 0, got {lengths.tolist()}")
    return F.pad(lengths.cumsum(0), (1, 0)).to(torch.int32)


def cu_seqlens_from_position_ids(position_ids: torch.Tensor) -> torch.Tensor:
    """Boundaries int32 [n + 1] of the sequences in position ids [B, T], over the flattened B*T tokens.

    A sequence starts at the first token of every row and wherever a position does not follow
    its left neighbour by exactly one (a packed row restarts its text positions at 0 for each
    sample). Unpacked rows (0..T-1) therefore give one sequence per row.
    """
    if position_ids.dim() != 2:
        raise ValueError(f"position_ids must be [B, T], got shape {tuple(position_ids.shape)}")
    batch, length = position_ids.shape
    starts = torch.ones_like(position_ids, dtype=torch.bool)                 # [B, T]
    starts[:, 1:] = position_ids[:, 1:] - position_ids[:, :-1] != 1
    start_idx = starts.reshape(-1).nonzero().squeeze(1)                      # [n]
    end = torch.tensor([batch * length], device=position_ids.device)
    return torch.cat([start_idx, end]).to(torch.int32)


def segment_ids(cu_seqlens: torch.Tensor) -> torch.Tensor:
    """Index of the sequence each token belongs to, long [T] with T = cu_seqlens[-1]."""
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).long()                      # [n]
    return torch.repeat_interleave(torch.arange(lengths.numel(), device=cu_seqlens.device), lengths)


def block_diagonal_mask(cu_seqlens: torch.Tensor, causal: bool) -> torch.Tensor:
    """Boolean [T, T] mask, True where query i may attend key j: same sequence (and j <= i if causal)."""
    seg = segment_ids(cu_seqlens)                                            # [T]
    mask = seg[:, None] == seg[None, :]                                      # [T, T]
    if causal:
        mask &= torch.ones_like(mask).tril_()
    return mask


@functools.lru_cache(maxsize=1)
def flash_attn_installed() -> bool:
    """Whether flash-attn's CUDA extension imports (imported only when first asked, then cached)."""
    try:
        from flash_attn import flash_attn_varlen_func  # noqa: F401
    except (ImportError, OSError, RuntimeError):
        return False
    return True


def choose_backend(q: torch.Tensor, backend: VarlenBackend = "auto") -> str:
    """The concrete backend "auto" stands for on these tensors; explicit choices are checked."""
    if backend not in VARLEN_BACKENDS:
        raise ValueError(f"varlen attention backend must be one of {VARLEN_BACKENDS}, got {backend!r}")
    flash_ok = q.is_cuda and q.dtype in FLASH_DTYPES
    if backend == "auto":
        return "flash_attn" if flash_ok and flash_attn_installed() else "sdpa_segments"
    if backend == "flash_attn" and not (flash_ok and flash_attn_installed()):
        raise RuntimeError("varlen backend 'flash_attn' needs CUDA fp16/bf16 tensors and flash-attn installed")
    return backend


def _check_shapes(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                  cu_seqlens_k: torch.Tensor) -> None:
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise ValueError(f"q, k, v must be [T, H, D]; got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if k.shape != v.shape or q.shape[2] != k.shape[2]:
        raise ValueError(f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} do not match")
    if q.shape[1] % k.shape[1]:
        raise ValueError(f"query heads ({q.shape[1]}) must be a multiple of key/value heads ({k.shape[1]})")
    for name, cu, tokens in (("cu_seqlens", cu_seqlens, q.shape[0]), ("cu_seqlens_k", cu_seqlens_k, k.shape[0])):
        if cu.dim() != 1 or cu.numel() != cu_seqlens.numel():
            raise ValueError(f"{name} must be 1-D [n + 1] like cu_seqlens, got shape {tuple(cu.shape)}")
        # Value checks read the tensor; on a GPU that is a host sync per layer, so only on CPU.
        if not cu.is_cuda and (int(cu[0]) != 0 or int(cu[-1]) != tokens):
            raise ValueError(f"{name} must run from 0 to {tokens}, got {cu.tolist()}")


def _repeat_kv_heads(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """[T, Hkv, D] -> [T, Hkv*n_rep, D]; kv head j serves query heads j*n_rep .. (j+1)*n_rep-1."""
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


def _flash_varlen(q, k, v, cu_q, cu_k, max_q, max_k, causal, scale, dropout):
    from flash_attn import flash_attn_varlen_func

    cu_q = cu_q.to(device=q.device, dtype=torch.int32)
    cu_k = cu_k.to(device=q.device, dtype=torch.int32)
    return flash_attn_varlen_func(q, k, v, cu_q, cu_k, max_q, max_k, dropout_p=dropout,
                                  softmax_scale=scale, causal=causal)          # [T, Hq, D]


def _bottom_right_causal(q_len: int, k_len: int, device) -> torch.Tensor:
    """bool [q_len, k_len]: query i sees key j <= i + k_len - q_len (the last query sees every key)."""
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril_(diagonal=k_len - q_len)


def _sdpa_segments(q, k, v, cu_q, cu_k, causal, scale, dropout):
    """One SDPA call per sequence (batching equal-length windows measured slower on CPU: the gathers cost more)."""
    n_rep = q.shape[1] // k.shape[1]
    k, v = _repeat_kv_heads(k, n_rep), _repeat_kv_heads(v, n_rep)             # [Tk, Hq, D]
    outs = []
    for (qs_, qe), (ks_, ke) in zip(zip(cu_q.tolist()[:-1], cu_q.tolist()[1:]),
                                    zip(cu_k.tolist()[:-1], cu_k.tolist()[1:])):
        if qe == qs_:
            continue
        # 4-D [1, Hq, L, D]: CPU SDPA takes its fused kernel only with a batch dimension (10x faster)
        qs = q[qs_:qe].transpose(0, 1)[None]
        ks, vs = (t[ks_:ke].transpose(0, 1)[None] for t in (k, v))
        if causal and qe - qs_ != ke - ks_:              # SDPA's is_causal aligns top-left; keys lead here
            o = F.scaled_dot_product_attention(qs, ks, vs, attn_mask=_bottom_right_causal(qe - qs_, ke - ks_, q.device),
                                               dropout_p=dropout, scale=scale)
        else:
            o = F.scaled_dot_product_attention(qs, ks, vs, dropout_p=dropout, is_causal=causal, scale=scale)
        outs.append(o[0].transpose(0, 1))                                   # [L, Hq, D]
    return torch.cat(outs, dim=0) if outs else q.new_zeros(q.shape)


def _sdpa_block_mask(q, k, v, cu_seqlens, causal, scale, dropout):
    n_rep = q.shape[1] // k.shape[1]
    k, v = _repeat_kv_heads(k, n_rep), _repeat_kv_heads(v, n_rep)
    mask = block_diagonal_mask(cu_seqlens.to(q.device), causal)              # [T, T]
    o = F.scaled_dot_product_attention(q.transpose(0, 1)[None], k.transpose(0, 1)[None], v.transpose(0, 1)[None],
                                       attn_mask=mask, dropout_p=dropout, scale=scale)  # [1, Hq, T, D]
    return o[0].transpose(0, 1)


def varlen_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                     max_seqlen: int | None = None, *, causal: bool, scale: float | None = None,
                     dropout: float = 0.0, backend: VarlenBackend = "auto", cu_seqlens_k: torch.Tensor | None = None,
                     max_seqlen_k: int | None = None) -> torch.Tensor:
    """Attention of packed sequences, each attending only to itself (or to its own keys).

    q: [T, Hq, D]; k, v: [T, Hkv, D] with Hq a multiple of Hkv (grouped-query attention);
    cu_seqlens: int [n + 1] from 0 to T; max_seqlen: longest sequence (computed when None);
    causal: lower-triangular within each sequence (language model) or full (vision tower);
    scale: softmax scale, 1/sqrt(D) when None. Returns [T, Hq, D] in q's dtype; differentiable.

    cu_seqlens_k: separate boundaries [n + 1] of the keys/values (k, v then [Tk, Hkv, D]): query
    sequence i attends key sequence i; with `causal` the mask is aligned bottom-right, as in
    flash-attn (a query segment shorter than its keys sees every leading key, e.g. a shared prompt).
    """
    cu_k = cu_seqlens if cu_seqlens_k is None else cu_seqlens_k
    _check_shapes(q, k, v, cu_seqlens, cu_k)
    chosen = choose_backend(q, backend)
    if chosen == "flash_attn":
        if max_seqlen is None:
            max_seqlen = int((cu_seqlens[1:] - cu_seqlens[:-1]).max())
        if max_seqlen_k is None:
            max_seqlen_k = max_seqlen if cu_seqlens_k is None else int((cu_k[1:] - cu_k[:-1]).max())
        return _flash_varlen(q, k, v, cu_seqlens, cu_k, int(max_seqlen), int(max_seqlen_k), causal, scale, dropout)
    if chosen == "sdpa_block_mask":
        if cu_seqlens_k is not None:
            raise ValueError("varlen backend 'sdpa_block_mask' needs the keys laid out like the queries")
        return _sdpa_block_mask(q, k, v, cu_seqlens, causal, scale, dropout)
    return _sdpa_segments(q, k, v, cu_seqlens, cu_k, causal, scale, dropout)


def varlen_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                               *, causal: bool, scale: float | None = None) -> torch.Tensor:
    """Naive oracle: explicit softmax(q k^T * scale) v per sequence, computed and returned in fp32.

    Same shapes as varlen_attention; differentiable (autograd through the explicit softmax).
    """
    n_rep = q.shape[1] // k.shape[1]
    qf, kf, vf = q.float(), _repeat_kv_heads(k, n_rep).float(), _repeat_kv_heads(v, n_rep).float()
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    outs = []
    bounds = cu_seqlens.tolist()
    for start, end in zip(bounds[:-1], bounds[1:]):
        scores = torch.einsum("qhd,khd->hqk", qf[start:end], kf[start:end]) * scale  # [Hq, L, L]
        if causal:
            length = end - start
            future = torch.ones(length, length, dtype=torch.bool, device=q.device).triu_(1)
            scores = scores.masked_fill(future, float("-inf"))
        outs.append(torch.einsum("hqk,khd->qhd", scores.softmax(-1), vf[start:end]))  # [L, Hq, D]
    return torch.cat(outs, dim=0) if outs else qf.new_zeros(qf.shape)
