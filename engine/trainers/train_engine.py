"""One training interface over plain PyTorch (a single process) and DeepSpeed ZeRO-1/2/3.

The trainers call `engine(...)` for the forward, `engine.backward(loss)` and `engine.step()`;
gradient accumulation, clipping, the schedule and mixed precision live here.
"""

from __future__ import annotations

import math

import torch

from videorft.engine.config import DistributedConfig, OptimConfig
from videorft.engine.models.policy import PolicyModel
from videorft.engine.trainers.distributed import DistInfo
from videorft.engine.trainers.optim import build_optimizer, build_scheduler


def deepspeed_config(dist_cfg: DistributedConfig, optim_cfg: OptimConfig, grad_accum: int,
                     micro_batch: int, dtype: torch.dtype) -> dict:
    """The DeepSpeed JSON config the engine is initialised with."""
    zero = {"stage": dist_cfg.zero_stage, "overlap_comm": False, "contiguous_gradients": True}
    if dist_cfg.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if dist_cfg.zero_stage == 3:
        zero.update(stage3_gather_16bit_weights_on_model_save=True)
    return {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": grad_accum,
        "gradient_clipping": optim_cfg.max_grad_norm if optim_cfg.max_grad_norm > 0 else 0.0,
        "zero_optimization": zero,
        "bf16": {"enabled": dtype == torch.bfloat16},
        "fp16": {"enabled": dtype == torch.float16},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


class TrainEngine:
    """Forward/backward/step over the policy, with or without DeepSpeed."""

    def __init__(self, policy: PolicyModel, optim_cfg: OptimConfig, dist_cfg: DistributedConfig,
                 info: DistInfo, total_steps: int, grad_accum: int = 1, micro_batch: int = 1,
                 dtype: torch.dtype = torch.float32):
        self.info = info
        self.optim_cfg = optim_cfg
        self.grad_accum = grad_accum
        self.uses_deepspeed = dist_cfg.zero_stage > 0
        self._micro = 0
        self.step_lr = optim_cfg.lr
        """Learning rate the latest optimizer step applied (`lr` already shows the next step's)."""
        optimizer = build_optimizer(policy.parameters(), optim_cfg)
        scheduler = build_scheduler(optimizer, total_steps, optim_cfg)
        if self.uses_deepspeed:
            import deepspeed

            ds_cfg = deepspeed_config(dist_cfg, optim_cfg, grad_accum, micro_batch, dtype)
            self.module, self.optimizer, _, self.scheduler = deepspeed.initialize(
                model=policy, optimizer=optimizer, lr_scheduler=scheduler, config=ds_cfg)
        else:
            self.module, self.optimizer, self.scheduler = policy, optimizer, scheduler

    @property
    def policy(self) -> PolicyModel:
        """The PolicyModel itself (unwrapped from DeepSpeed)."""
        return self.module.module if self.uses_deepspeed else self.module

    def __call__(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def train(self, mode: bool = True) -> None:
        """Switch dropout etc. (the tiny and Qwen models have none, but keep it honest)."""
        self.module.train(mode)

    def backward(self, loss: torch.Tensor) -> None:
        """Accumulate gradients of one micro-batch (scaled by 1/grad_accum)."""
        if self.uses_deepspeed:
            self.module.backward(loss)
        else:
            (loss / self.grad_accum).backward()

    def step(self) -> float | None:
        """Finish a micro-batch; on an accumulation boundary clip, update and return the grad norm."""
        self._micro += 1
        boundary = self._micro % self.grad_accum == 0
        if boundary:
            self.step_lr = self.lr                   # the schedule moves on inside the step
        if self.uses_deepspeed:
            self.module.step()
            if not boundary:
                return None
            norm = self.module.get_global_grad_norm()
            return float(norm) if norm is not None else math.nan
        if not boundary:
            return None
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
        """Drop accumulated gradients (used when a step is skipped for a non-finite loss)."""
        self._micro = 0
        if self.uses_deepspeed:
            self.module.zero_grad()
        else:
            self.optimizer.zero_grad(set_to_none=True)

    @property
    def lr(self) -> float:
        """Current learning rate."""
        return float(self.optimizer.param_groups[0]["lr"])
