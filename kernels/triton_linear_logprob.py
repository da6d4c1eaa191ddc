"""The "triton" backend: lm_head GEMM tiles fused with an online log-sum-exp over the vocabulary.

Forward (`triton_forward`): one program per (token block, vocabulary split). It sweeps its
split in BLOCK_N-wide tiles; each tile is a [BLOCK_M, BLOCK_N] GEMM over the hidden size with
fp32 accumulation, followed by the online max / sum-exp / target-logit / entropy update. Only
four fp32 partials per (token, split) reach memory; `streaming.combine_vocab_partials` merges
them. Programs are numbered in groups of GROUP_M token blocks, token block fastest, so the
programs in flight at any time cover a rectangle of about GROUP_M token blocks x a few splits:
their hidden blocks and weight tiles both stay in L2, and the weight is read from HBM about
N / (GROUP_M * BLOCK_M) times instead of once per token block (docs/design.md §6).

Backward (`triton_backward`): `streaming.streamed_backward` walks [token chunk, vocab slab]
blocks; `_dlogits_kernel` recomputes the block's logits tile by tile and writes
g * (onehot - softmax) / T in the operand dtype, and two cuBLAS GEMMs turn the block into
dHidden and dWeight. With the defaults (4096 tokens x 32768 columns, bf16) the workspace is
256 MiB whatever N is.

Interpreter mode (TRITON_INTERPRET=1, CPU tensors, used by the tests): bf16 operands are
upcast to fp32 before tl.dot (the interpreter's bf16 dot is wrong) and a single autotune
config is used (autotuning several needs a GPU).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from videorft.kernels.streaming import combine_vocab_partials, streamed_backward

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"
SPLIT_ALIGN = 32 if INTERPRET else 256
"""Vocabulary splits are multiples of this, so every BLOCK_N of the configs divides them."""
SPLIT_TARGET = 4096
"""Widest vocabulary split of the forward, in columns."""
BACKWARD_TOKEN_CHUNK = 4096
BACKWARD_VOCAB_CHUNK = 32768


def _configs(interpret_cfg: dict, gpu_cfgs: list[tuple]) -> list[triton.Config]:
    if INTERPRET:
        return [triton.Config(interpret_cfg, num_warps=4, num_stages=1)]
    return [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, **extra}, num_warps=w, num_stages=s)
            for bm, bn, bk, w, s, extra in gpu_cfgs]


# Forward configs that compile without register spills on sm_90 (ptxas -v: 128x256x64 with 8 warps
# and 3 stages, and 128x128x64 with 4 warps, spill 348 and 520 bytes in bf16, and cost autotuning
# time on every rank).
_FWD_CONFIGS = _configs(
    {"BLOCK_M": 16, "BLOCK_N": 32, "BLOCK_K": 16, "GROUP_M": 2},
    [(128, 128, 64, 8, 4, {"GROUP_M": 16}), (64, 256, 64, 8, 4, {"GROUP_M": 32})],
)
_BWD_CONFIGS = _configs(
    {"BLOCK_M": 16, "BLOCK_N": 32, "BLOCK_K": 16, "GROUP_M": 2},
    [(128, 256, 64, 8, 3, {"GROUP_M": 8}), (128, 128, 64, 8, 4, {"GROUP_M": 8}),
     (128, 128, 64, 4, 4, {"GROUP_M": 8}), (256, 128, 64, 8, 3, {"GROUP_M": 8})],
)


@triton.jit
def _logits_tile(h_ptr, w_ptr, rows, cols, n_rows, n_cols, hidden_size,
                 stride_hn, stride_hk, stride_wv, stride_wk,
                 BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                 UPCAST: tl.constexpr, PRECISION: tl.constexpr):
    """[BLOCK_M, BLOCK_N] fp32 tile of hidden[rows] @ weight[cols].T (no temperature)."""
    ks = tl.arange(0, BLOCK_K)
    row_ok = rows[:, None] < n_rows
    col_ok = cols[None, :] < n_cols
    h_ptrs = h_ptr + rows[:, None].to(tl.int64) * stride_hn + ks[None, :] * stride_hk  # [BM, BK]
    w_ptrs = w_ptr + cols[None, :].to(tl.int64) * stride_wv + ks[:, None] * stride_wk  # [BK, BN]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, hidden_size, BLOCK_K):
        k_ok = (k0 + ks) < hidden_size
        a = tl.load(h_ptrs, mask=row_ok & k_ok[None, :], other=0.0)
        b = tl.load(w_ptrs, mask=col_ok & k_ok[:, None], other=0.0)
        if UPCAST:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        acc = tl.dot(a, b, acc, input_precision=PRECISION)
        h_ptrs += BLOCK_K * stride_hk
        w_ptrs += BLOCK_K * stride_wk
    return acc


@triton.jit
def _grouped_ids(pid, num_m, num_n, GROUP_M: tl.constexpr):
    """(pid_m, pid_n) of program `pid` when GROUP_M token blocks sweep all num_n column blocks
    together, group after group, so the weight tiles they share stay in L2."""
    per_group = GROUP_M * num_n
    first_m = (pid // per_group) * GROUP_M
    group_rows = tl.minimum(num_m - first_m, GROUP_M)
    return first_m + (pid % per_group) % group_rows, (pid % per_group) // group_rows


@triton.autotune(configs=_FWD_CONFIGS, key=["hidden_size", "WITH_ENTROPY"])
@triton.jit
def _logprob_fwd_kernel(h_ptr, w_ptr, t_ptr, m_ptr, s_ptr, zt_ptr, e_ptr,
                        n_rows, vocab, hidden_size, split_size,
                        stride_hn, stride_hk, stride_wv, stride_wk, inv_temp,
                        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                        GROUP_M: tl.constexpr, WITH_ENTROPY: tl.constexpr, UPCAST: tl.constexpr,
                        PRECISION: tl.constexpr):
    """Partials (max, sum-exp, target logit, sum exp*z) of one token block over one split."""
    pid = tl.program_id(0)
    num_m = tl.cdiv(n_rows, BLOCK_M)
    pid_m, split = _grouped_ids(pid, num_m, tl.cdiv(vocab, split_size), GROUP_M)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    targets = tl.load(t_ptr + rows, mask=rows < n_rows, other=-1)
    run_max = tl.full((BLOCK_M,), float("-inf"), tl.float32)
    run_sum = tl.zeros((BLOCK_M,), tl.float32)
    run_tgt = tl.zeros((BLOCK_M,), tl.float32)
    run_ez = tl.zeros((BLOCK_M,), tl.float32)
    start = split * split_size
    stop = tl.minimum(start + split_size, vocab)
    for n0 in range(start, stop, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        z = _logits_tile(h_ptr, w_ptr, rows, cols, n_rows, vocab, hidden_size,
                         stride_hn, stride_hk, stride_wv, stride_wk,
                         BLOCK_M, BLOCK_N, BLOCK_K, UPCAST, PRECISION) * inv_temp
        valid = cols[None, :] < stop
        z = tl.where(valid, z, float("-inf"))
        new_max = tl.maximum(run_max, tl.max(z, axis=1))
        alpha = tl.exp(run_max - new_max)
        p = tl.exp(z - new_max[:, None])  # [BM, BN]; 0 on invalid columns
        run_sum = run_sum * alpha + tl.sum(p, axis=1)
        if WITH_ENTROPY:
            run_ez = run_ez * alpha + tl.sum(p * tl.where(valid, z, 0.0), axis=1)
        hit = (cols[None, :] == targets[:, None]) & valid
        run_tgt += tl.sum(tl.where(hit, z, 0.0), axis=1)
        run_max = new_max
    out = split * n_rows + rows
    row_ok = rows < n_rows
    tl.store(m_ptr + out, run_max, mask=row_ok)
    tl.store(s_ptr + out, run_sum, mask=row_ok)
    tl.store(zt_ptr + out, run_tgt, mask=row_ok)
    if WITH_ENTROPY:
        tl.store(e_ptr + out, run_ez, mask=row_ok)


@triton.autotune(configs=_BWD_CONFIGS, key=["hidden_size"])
@triton.jit
def _dlogits_kernel(h_ptr, w_ptr, t_ptr, lse_ptr, g_ptr, out_ptr,
                    n_rows, n_cols, hidden_size, col_start,
                    stride_hn, stride_hk, stride_wv, stride_wk, stride_on, inv_temp,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                    GROUP_M: tl.constexpr, UPCAST: tl.constexpr, PRECISION: tl.constexpr):
    """One [BLOCK_M, BLOCK_N] tile of g * (onehot(target) - softmax(z)) / T for a slab."""
    pid = tl.program_id(0)
    num_m = tl.cdiv(n_rows, BLOCK_M)
    pid_m, pid_n = _grouped_ids(pid, num_m, tl.cdiv(n_cols, BLOCK_N), GROUP_M)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    z = _logits_tile(h_ptr, w_ptr, rows, cols, n_rows, n_cols, hidden_size,
                     stride_hn, stride_hk, stride_wv, stride_wk,
                     BLOCK_M, BLOCK_N, BLOCK_K, UPCAST, PRECISION) * inv_temp
    row_ok = rows < n_rows
    lse = tl.load(lse_ptr + rows, mask=row_ok, other=0.0)
    scale = tl.load(g_ptr + rows, mask=row_ok, other=0.0) * inv_temp
    targets = tl.load(t_ptr + rows, mask=row_ok, other=-1) - col_start
    p = tl.exp(z - lse[:, None])
    hit = cols[None, :] == targets[:, None]
    dz = scale[:, None] * (tl.where(hit, 1.0, 0.0) - p)
    out = out_ptr + rows[:, None].to(tl.int64) * stride_on + cols[None, :]
    tl.store(out, dz.to(out_ptr.dtype.element_ty), mask=row_ok[:, None] & (cols[None, :] < n_cols))


def _precision(dtype: torch.dtype) -> str:
    """fp32 operands get exact fp32 products (like torch's default); 16-bit ones use MMA."""
    return "ieee" if dtype == torch.float32 else "tf32"


def _num_programs_target(device: torch.device) -> int:
    """Enough programs for a few waves on the GPU; a handful under the interpreter."""
    if device.type != "cuda":
        return 8
    return 4 * torch.cuda.get_device_properties(device).multi_processor_count


def choose_split_size(n_rows: int, vocab: int, device: torch.device, nominal_block_m: int = 128) -> int:
    """Vocabulary columns per split, a multiple of SPLIT_ALIGN (every BLOCK_N divides it).

    At most SPLIT_TARGET columns, so the grouped ordering always has several splits to spread
    over the programs in flight, and narrower when N is small so that there are enough
    programs to fill the GPU. Partials cost 16 bytes per (token, split).
    """
    token_blocks = triton.cdiv(n_rows, nominal_block_m)
    splits = max(triton.cdiv(vocab, SPLIT_TARGET), triton.cdiv(_num_programs_target(device), token_blocks))
    splits = max(1, min(splits, triton.cdiv(vocab, SPLIT_ALIGN)))
    return triton.cdiv(triton.cdiv(vocab, splits), SPLIT_ALIGN) * SPLIT_ALIGN


def triton_forward(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                   temperature: float, with_entropy: bool, split_size: int | None = None):
    """hidden [N, H], weight [V, H], targets [N] -> logp [N], lse [N], entropy [N] or None (fp32)."""
    n_rows, hidden_size = hidden.shape
    vocab = weight.shape[0]
    split = split_size or choose_split_size(n_rows, vocab, hidden.device)
    num_splits = triton.cdiv(vocab, split)
    parts = torch.empty((4 if with_entropy else 3, num_splits, n_rows), dtype=torch.float32, device=hidden.device)
    m, s, t = parts[0], parts[1], parts[2]
    e = parts[3] if with_entropy else None
    grid = lambda meta: (triton.cdiv(n_rows, meta["BLOCK_M"]) * num_splits,)  # noqa: E731
    _logprob_fwd_kernel[grid](
        hidden, weight, targets, m, s, t, e if e is not None else m,
        n_rows, vocab, hidden_size, split,
        hidden.stride(0), hidden.stride(1), weight.stride(0), weight.stride(1), 1.0 / temperature,
        WITH_ENTROPY=with_entropy, UPCAST=INTERPRET, PRECISION=_precision(hidden.dtype),
    )
    return combine_vocab_partials(m, s, t, e)


def triton_dlogits(h_c: torch.Tensor, w_v: torch.Tensor, t_c: torch.Tensor, lse_c: torch.Tensor,
                   g_c: torch.Tensor, start: int, temperature: float) -> torch.Tensor:
    """g * (onehot - softmax) / T for a [n, v] block, in the operand dtype (see streaming.DlogitsFn)."""
    n_rows, hidden_size = h_c.shape
    n_cols = w_v.shape[0]
    out = torch.empty((n_rows, n_cols), dtype=h_c.dtype, device=h_c.device)
    grid = lambda meta: (triton.cdiv(n_rows, meta["BLOCK_M"]) * triton.cdiv(n_cols, meta["BLOCK_N"]),)  # noqa: E731
    _dlogits_kernel[grid](
        h_c, w_v, t_c, lse_c, g_c, out,
        n_rows, n_cols, hidden_size, start,
        h_c.stride(0), h_c.stride(1), w_v.stride(0), w_v.stride(1), out.stride(0), 1.0 / temperature,
        UPCAST=INTERPRET, PRECISION=_precision(h_c.dtype),
    )
    return out


def triton_backward(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                    lse: torch.Tensor, grad_logp: torch.Tensor, temperature: float,
                    need_hidden: bool, need_weight: bool, token_chunk: int = BACKWARD_TOKEN_CHUNK,
                    vocab_chunk: int = BACKWARD_VOCAB_CHUNK):
    """(dHidden [N, H] or None, dWeight [V, H] or None) for the upstream grad_logp [N]."""
    return streamed_backward(hidden, weight, targets, lse, grad_logp.to(torch.float32).contiguous(),
                             temperature, need_hidden, need_weight, token_chunk, vocab_chunk, triton_dlogits)
