"""Shapes and the measuring loop shared by the fused lm_head benchmarks.

Shapes: on CPU a small case always runs (fp32), and the target case of the kernels issue
(N=2048, H=896, V=151,936, fp32; several seconds per call on 2 cores) runs when
VIDEORFT_BENCH_FULL=1. On CUDA: H=3584, V=151,936, N in {4096, 16384}, bf16.

Each measurement makes one untimed probe call first (it warms up, and it is where peak
memory is read, see bench/peak_memory.py), then `benchmark.pedantic` times fresh calls.
Figures: tokens_per_s = N / median time; tflops counts 2*N*H*V for a forward and 8*N*H*V for
forward+backward (the logits GEMM, its recompute, dHidden, dWeight) for every provider, so
the column compares speed at equal work; peak_mem_mib is the probe's peak above the
pre-call baseline and extra_mem_mib that peak minus the gradient buffers it returns.

On a shared CPU machine, record with one thread and CPU time, which measures the work itself
rather than the neighbours' load (the recorded results in bench/results/cpu-2core/ were made so):
    OMP_NUM_THREADS=1 VIDEORFT_BENCH_FULL=1 pytest bench/bench_grpo_loss.py \
        --benchmark-timer=time.process_time --benchmark-json=bench/results/cpu-2core/grpo_loss-<date>.json
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import pytest
import torch

from bench.conftest import HAS_CUDA, stamp
from bench.peak_memory import measure_peak_mib

FULL = os.environ.get("VIDEORFT_BENCH_FULL") == "1"
MODES = ("forward", "forward+backward")


@dataclass(frozen=True)
class HeadCase:
    """One benchmark shape: its name, N tokens, hidden size, vocabulary, dtype, device, timing rounds."""

    name: str
    n_tokens: int
    hidden: int
    vocab: int
    dtype: torch.dtype
    device: str
    rounds: int
    warmup: int

    @property
    def shape(self) -> dict:
        return {"N": self.n_tokens, "H": self.hidden, "V": self.vocab, "dtype": str(self.dtype).split(".")[-1]}

    def flops(self, mode: str) -> float:
        return (8 if mode == "forward+backward" else 2) * self.n_tokens * self.hidden * self.vocab


def head_cases() -> list:
    """pytest params: the CPU cases (target one behind VIDEORFT_BENCH_FULL) and the CUDA ones."""
    skip_full = pytest.mark.skipif(not FULL, reason="target shape: set VIDEORFT_BENCH_FULL=1")
    cases = [
        (HeadCase("cpu-small", 512, 256, 32768, torch.float32, "cpu", 3, 0), ()),
        (HeadCase("cpu-target", 2048, 896, 151936, torch.float32, "cpu", 2, 0), skip_full),
        (HeadCase("cuda-4k", 4096, 3584, 151936, torch.bfloat16, "cuda", 5, 1), pytest.mark.gpu),
        (HeadCase("cuda-16k", 16384, 3584, 151936, torch.bfloat16, "cuda", 5, 1), pytest.mark.gpu),
    ]
    return [pytest.param(case, id=case.name, marks=marks) for case, marks in cases]


def skip_if_cpu_only(case: HeadCase) -> None:
    if case.device == "cuda" and not HAS_CUDA:
        pytest.skip("needs a CUDA device")


def measure(benchmark, case: HeadCase, provider: str, mode: str,
            make_args: Callable[[], tuple], call: Callable[..., object]) -> None:
    """Probe memory once, time `call(*make_args())` with pytest-benchmark, stamp the figures.

    make_args builds fresh inputs (leaves that need grad included) outside the timing; call
    runs one forward or forward+backward and leaves gradients on those leaves.
    """
    device = torch.device(case.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def timed(*args):
        out = call(*args)
        sync()
        return out

    args = make_args()
    _, peak_mib, method = measure_peak_mib(lambda: timed(*args), device)
    grad_mib = sum(a.grad.numel() * a.grad.element_size() for a in args
                   if isinstance(a, torch.Tensor) and a.grad is not None) / 2**20
    del args
    benchmark.pedantic(timed, setup=lambda: (make_args(), {}), rounds=case.rounds, warmup_rounds=case.warmup)
    median = benchmark.stats.stats.median if benchmark.stats is not None else None  # None: --benchmark-disable
    stamp(benchmark, provider, case.shape | {"mode": mode},
          tokens_per_s=case.n_tokens / median if median else None,
          tflops=case.flops(mode) / median / 1e12 if median else None,
          peak_mem_mib=peak_mib, extra_mem_mib=None if peak_mib is None else peak_mib - grad_mib,
          mem_method=method)
