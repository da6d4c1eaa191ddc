"""One training interface over plain PyTorch (a single process) and DeepSpeed ZeRO-1/2/3.

The trainers own the optimizer-step boundary: they call `engine(...)` for each micro-batch's
forward, `engine.backward(loss)` with the loss already weighted by that micro-batch's share of
the step, and `engine.optimizer_step()` once when the step's micro-batches are done. Nothing
here counts micro-batches, so a step with fewer rows than configured (a sample lost to bad media)
or a skipped step can never shift a later step's boundary. DeepSpeed runs with its
caller-owned accumulation (`managed_gradient_accumulation: false`): backward only accumulates,
and each `step()` is a boundary. Clipping, the schedule and mixed precision live here.
"""

from __future__ import annotations

import math

import torch

from videorft.engine.config import DistributedConfig, OptimConfig
from videorft.engine.models.policy import PolicyModel
from videorft.engine.trainers.distributed import DistInfo
from videorft.engine.trainers.optim import build_optimizer, build_scheduler


def deepspeed_config(dist_cfg: DistributedConfig, optim_cfg: OptimConfig, dtype: torch.dtype) -> dict:
    """The DeepSpeed JSON config the engine is initialised with (the caller owns accumulation)."""
    zero = {"stage": dist_cfg.zero_stage, "overlap_comm": False, "contiguous_gradients": True}
    if dist_cfg.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if dist_cfg.zero_stage == 3:
        zero.update(stage3_gather_16bit_weights_on_model_save=True)
    return {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "managed_gradient_accumulation": False,
        "gradient_clipping": optim_cfg.max_grad_norm if optim_cfg.max_grad_norm > 0 else 0.0,
        "zero_optimization": zero,
        "bf16": {"enabled": dtype == torch.bfloat16},
        "fp16": {"enabled": dtype == torch.float16},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


class TrainEngine:
    """Forward/backward/optimizer step over the policy, with or without DeepSpeed."""

    def __init__(self, policy: PolicyModel, optim_cfg: OptimConfig, dist_cfg: DistributedConfig,
                 info: DistInfo, total_steps: int, dtype: torch.dtype = torch.float32):
        self.info = info
        self.optim_cfg = optim_cfg
        self.uses_deepspeed = dist_cfg.zero_stage > 0
        self.step_lr = optim_cfg.lr
        """Learning rate the latest optimizer step applied (`lr` already shows the next step's)."""
        optimizer = build_optimizer(policy.named_parameters(), optim_cfg)
        scheduler = build_scheduler(optimizer, total_steps, optim_cfg)
        if self.uses_deepspeed:
            import deepspeed

            self.module, self.optimizer, _, self.scheduler = deepspeed.initialize(
                model=policy, optimizer=optimizer, lr_scheduler=scheduler,
                config=deepspeed_config(dist_cfg, optim_cfg, dtype))
        else:
            self.module, self.optimizer, self.scheduler = policy, optimizer, scheduler

    @property
    def policy(self) -> PolicyModel:
        """The PolicyModel itself (unwrapped from DeepSpeed)."""
        return self.module.module if self.uses_deepspeed else self.module

    @property
    def zero3(self) -> bool:
        """Whether the parameters are partitioned over ranks (each rank holds a shard)."""
        return self.uses_deepspeed and self.module.zero_optimization_stage() == 3

    def __call__(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def train(self, mode: bool = True) -> None:
        """Switch dropout etc. (the tiny and Qwen models have none, but keep it honest)."""
        self.module.train(mode)

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate the gradients of one micro-batch's (already weighted) loss."""
        if self.uses_deepspeed:
            self.module.backward(loss, scale_wrt_gas=False)
        else:
            loss.backward()

    def optimizer_step(self) -> float:
        """Clip, update and move the schedule on; returns the gradient norm before clipping."""
        self.step_lr = self.lr                         # the schedule moves on inside the step
        if self.uses_deepspeed:
            self.module.step()
            norm = self.module.get_global_grad_norm()
            return float(norm) if norm is not None else math.nan
        params = [p for p in self.policy.parameters() if p.grad is not None]
        max_norm = self.optim_cfg.max_grad_norm if self.optim_cfg.max_grad_norm > 0 else float("inf")
        norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    def zero_loss(self) -> torch.Tensor:
        """A loss of exactly 0 with a (zero) gradient path, standing in for a skipped micro-batch."""
        return self.policy.head.weight.sum() * 0.0

    def discard_gradients(self) -> None:
        """Drop everything accumulated since the last optimizer step (a skipped step).

        Afterwards the engine is in the state a completed optimizer step leaves it in, minus the
        update: the next backward starts a fresh accumulation (under ZeRO the optimizer's own
        zero_grad also resets its partitioned accumulation).
        """
        self.optimizer.zero_grad(set_to_none=True)
        if self.uses_deepspeed:
            self.module.zero_grad()
            _drop_zero_accumulators(self.optimizer)

    @property
    def lr(self) -> float:
        """Current learning rate."""
        return float(self.optimizer.param_groups[0]["lr"])


def _drop_zero_accumulators(optimizer) -> None:
    """Empty the fp32 accumulators in which DeepSpeed's ZeRO-1/2 optimizer (0.19) sums the reduced
    gradients of a step's backward passes until its step consumes them, as that step would.

    ZeRO-3 restarts its partitions from the next backward after `zero_grad`; ZeRO-1/2 do not, and no
    public call resets them. tests/integration/test_grpo_step.py shows an engine that dropped a step
    updates exactly like one that never saw it, for ZeRO-2 and ZeRO-3.
    """
    for name in ("all_grad_tensors", "averaged_gradients"):
        store = getattr(optimizer, name, None)
        if isinstance(store, dict):
            for key in store:
                store[key] = None
