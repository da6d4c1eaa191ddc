"""Process-group set-up for torchrun / the DeepSpeed launcher, on GPUs (nccl) or CPUs (gloo)."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from videorft.engine.config import DistributedConfig


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs, metrics and checkpoints' shared files."""
        return self.rank == 0


def init_distributed(cfg: DistributedConfig, device: torch.device) -> DistInfo:
    """Join the process group when launched with WORLD_SIZE > 1 (or when DeepSpeed is on).

    On CUDA each rank takes the GPU of its LOCAL_RANK. DeepSpeed needs a process group even for
    one process, so a single-rank group is created then (MASTER_ADDR/PORT default to loopback).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    if (world > 1 or cfg.zero_stage > 0) and not dist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
        os.environ.setdefault("RANK", str(rank))
        os.environ.setdefault("WORLD_SIZE", str(world))
        os.environ.setdefault("LOCAL_RANK", str(local_rank))
        backend = cfg.backend if cfg.backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every RNG state a resumed run needs to continue exactly."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what rng_state() captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


SUMMED_METRICS = ("tokens_per_s",)
"""Metrics that add up over ranks (throughput of the whole job)."""
MAX_METRICS = ("peak_mem_mb",)
"""Metrics whose worst rank is the one that matters."""


def reduce_metrics(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Combine one step's scalar metrics over ranks (identity in a single process).

    Most metrics are averaged over the ranks that report them (a rank leaves out a metric that
    is undefined for its rows, e.g. NaN-filtered ones); tokens_per_s is summed and peak_mem_mb is
    the maximum. The dictionaries are exchanged whole, so ranks whose key sets differ still line up
    and no collective can deadlock on a length mismatch. Every rank must call it.
    """
    if info.world_size == 1:
        return values
    gathered: list[dict[str, float]] = [{} for _ in range(info.world_size)]
    dist.all_gather_object(gathered, {k: float(v) for k, v in values.items()})
    out: dict[str, float] = {}
    for key in sorted({k for rank in gathered for k in rank}):
        reported = [rank[key] for rank in gathered if key in rank]
        if key in SUMMED_METRICS:
            out[key] = sum(reported)
        elif key in MAX_METRICS:
            out[key] = max(reported)
        else:
            out[key] = sum(reported) / len(reported)
    return out


def all_ranks_true(flag: bool, info: DistInfo) -> bool:
    """True only when `flag` holds on every rank (e.g. a finite loss), so all ranks act alike."""
    if info.world_size == 1 or not dist.is_initialized():
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int32,
                     device=info.device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def all_ranks_max(value: int, info: DistInfo) -> int:
    """The largest `value` over ranks (e.g. the micro-batch count every rank must run)."""
    if info.world_size == 1 or not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.int64, device=info.device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a single process)."""
    if info.world_size > 1 and dist.is_initialized():
        dist.barrier()
