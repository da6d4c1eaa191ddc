"""Per-phase wall-clock timing and peak memory of a training step."""

from __future__ import annotations

import resource
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator

import torch


class PhaseTimer:
    """Accumulates seconds per named phase (decode, preprocess, rollout, reward, logprob, update, sync).

    On CUDA the device is synchronised at phase boundaries so each phase is charged its own
    kernels, not the previous phase's queue.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the enclosed block as `name`."""
        self._sync()
        start = time.perf_counter()
        try:
            with torch.profiler.record_function(name):        # the phase's label in a profiler trace
                yield
        finally:
            self._sync()
            self.seconds[name] += time.perf_counter() - start

    def add(self, name: str, seconds: float) -> None:
        """Charge time measured elsewhere (e.g. decode time reported by data-loader workers)."""
        self.seconds[name] += seconds

    def pop(self) -> dict[str, float]:
        """{"time/<phase>": seconds} since the last pop, then reset."""
        out = {f"time/{k}": v for k, v in self.seconds.items()}
        self.seconds = defaultdict(float)
        return out


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory window (CUDA), so each logged step reports its own peak."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated CUDA memory since the last reset_peak_memory, or the process's peak resident set
    size on CPU, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
