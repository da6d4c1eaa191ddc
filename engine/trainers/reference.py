"""The frozen reference policy of the KL term, placed so it does not cost a full model per GPU.

A 7B reference in bf16 is 15.4 GiB. Three placements:
  * ZeRO-3 (`distributed.zero_stage: 3`): the reference is partitioned over the ranks like the
    policy (a DeepSpeed inference engine without an optimizer); each forward gathers one layer at
    a time, so a rank holds 1/world of it.
  * `grpo.ref_offload: true` on a GPU: the weights live in pinned CPU memory and visit the GPU only
    for the step's reference forward.
  * otherwise a plain copy on the device (the CPU path and small models).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from videorft.engine.config import RunConfig
from videorft.engine.models.loading import load_model_and_tokenizer
from videorft.engine.models.policy import PolicyModel
from videorft.engine.run_dir import log
from videorft.engine.trainers.distributed import DistInfo


def inference_zero3_config(dtype: torch.dtype) -> dict:
    """DeepSpeed config of a ZeRO-3 partitioned model used for forward passes only."""
    return {"train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 3},
            "bf16": {"enabled": dtype == torch.bfloat16}, "fp16": {"enabled": dtype == torch.float16},
            "steps_per_print": 10**9}


class ReferencePolicy:
    """Forward-only log-probs of the frozen reference: called like PolicyModel (mask, temperature)."""

    def __init__(self, module, device: torch.device, offload: bool = False):
        self.module = module
        """A PolicyModel, or a DeepSpeed engine wrapping one."""
        self.device = device
        self.offload = offload

    @contextmanager
    def _resident(self) -> Iterator[None]:
        """Bring offloaded weights to the device for the duration of the block.

        The pinned CPU copies stay allocated; the device copies are dropped afterwards, so the
        reference costs GPU memory only during its own forward.
        """
        if not self.offload:
            yield
            return
        tensors = list(self.module.parameters()) + list(self.module.buffers())
        host = [t.data for t in tensors]
        for t in tensors:
            t.data = t.data.to(self.device, non_blocking=True)
        try:
            yield
        finally:
            for t, h in zip(tensors, host):
                t.data = h
            torch.cuda.empty_cache()

    @torch.no_grad()
    def __call__(self, *args, **kwargs) -> torch.Tensor:
        with self._resident():
            return self.module(*args, **kwargs)


def build_reference(cfg: RunConfig, info: DistInfo, attention: str, kernels: str) -> ReferencePolicy | None:
    """The reference for `cfg.grpo.beta > 0` (None without the KL term), placed as the module says."""
    if cfg.grpo.beta <= 0:
        return None
    dtype = getattr(torch, cfg.model.dtype)
    zero3 = cfg.distributed.zero_stage == 3
    offload = cfg.grpo.ref_offload and info.device.type == "cuda" and not zero3
    if cfg.grpo.ref_offload and not offload:
        log.info("grpo.ref_offload has no effect here (%s)", "ZeRO-3 already partitions the reference"
                 if zero3 else "the run is on the CPU")
    load_on = torch.device("cpu") if (offload or zero3) else info.device
    model, _ = load_model_and_tokenizer(cfg.model, load_on, attention, seed=cfg.run.seed)
    model.requires_grad_(False).eval()
    policy = PolicyModel(model, kernels)
    if zero3:
        import deepspeed

        engine, *_ = deepspeed.initialize(model=policy, config=inference_zero3_config(dtype))
        engine.eval()
        return ReferencePolicy(engine, info.device)
    if offload:
        for tensor in list(policy.parameters()) + list(policy.buffers()):
            tensor.data = tensor.data.pin_memory()
    return ReferencePolicy(policy, info.device, offload=offload)
