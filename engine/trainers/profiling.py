"""`run.profile_steps=N`: a torch.profiler trace of N training steps, with the step's phases labelled.

The trace skips the first step (compilation, autotuning, cache warm-up) and lands in
<run_dir>/profile/ as Chrome-trace JSON, which Perfetto (ui.perfetto.dev) and TensorBoard's profiler
plugin open. PhaseTimer labels every phase (rollout, reward, logprob, update, sync) with
`record_function`, so the timeline reads like the step.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch


class NoProfiler:
    """Stands in when profiling is off."""

    def step(self) -> None:
        """Nothing to advance."""


@contextmanager
def step_profiler(run_dir: Path, steps: int, device: torch.device) -> Iterator:
    """A profiler over `steps` steps after the first (call .step() after each step), or NoProfiler."""
    if steps <= 0:
        yield NoProfiler()
        return
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    trace_dir = Path(run_dir) / "profile"
    with torch.profiler.profile(activities=activities,
                                schedule=torch.profiler.schedule(wait=0, warmup=1, active=steps, repeat=1),
                                on_trace_ready=torch.profiler.tensorboard_trace_handler(str(trace_dir))) as prof:
        yield prof
