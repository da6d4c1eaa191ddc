"""Per-rank parameter digests: evidence that data-parallel ranks end a run with the same weights.

Off unless the environment sets VIDEORFT_PARAM_DIGEST=1 (the distributed tests do). Each rank
then writes `param-digest-rank<r>.json` into the run directory at the end of training: one
SHA-256 per parameter of the policy, computed from that rank's own copy. Under ZeRO-3 a rank holds
a shard only, so the full tensors are gathered first (a collective: every rank takes part).
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import nullcontext
from pathlib import Path

import torch

from videorft.engine.trainers.train_engine import TrainEngine

DIGEST_ENV = "VIDEORFT_PARAM_DIGEST"


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes."""
    t = tensor.detach().to("cpu").contiguous()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _gathered(engine: TrainEngine, params: list[torch.nn.Parameter]):
    """A context in which every parameter is whole on this rank (gathers under ZeRO-3)."""
    if engine.uses_deepspeed and engine.module.zero_optimization_stage() == 3:
        import deepspeed

        return deepspeed.zero.GatheredParameters(params, modifier_rank=None)
    return nullcontext()


def param_digests(engine: TrainEngine) -> dict[str, str]:
    """{parameter name: digest} of the policy model as this rank holds it (collective under ZeRO-3)."""
    named = list(engine.policy.model.named_parameters())
    with _gathered(engine, [p for _, p in named]):
        return {name: tensor_digest(p) for name, p in named}


def maybe_write_param_digests(engine: TrainEngine, run_dir: Path) -> Path | None:
    """Write this rank's digests when VIDEORFT_PARAM_DIGEST=1; every rank must call it."""
    if os.environ.get(DIGEST_ENV) != "1":
        return None
    path = Path(run_dir) / f"param-digest-rank{engine.info.rank}.json"
    path.write_text(json.dumps(param_digests(engine), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path
