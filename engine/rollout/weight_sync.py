"""Stream a policy's weights, one module at a time, by their transformers names.

Under DeepSpeed ZeRO-3 every rank holds a flat shard of each parameter and `param.data` is an
empty `(0,)` tensor, so handing `named_parameters()` to vLLM would load nothing (or fail on the
shape check). `module_weight_chunks` gathers the parameters of one module, yields them whole,
and releases them before the next module: peak extra memory is one module's weights, never the
whole model (15 GiB for a 7B policy in bf16). Without ZeRO-3 it yields the plain parameters.

The yielded tensors are views of the gathered storage: consume them (e.g. vLLM's `load_weights`
copies them) before asking for the next chunk.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Iterator

import torch

WeightChunk = list[tuple[str, torch.Tensor]]
"""(transformers name, full tensor) pairs of one module's own parameters."""


def is_zero3_partitioned(param: torch.nn.Parameter) -> bool:
    """True when DeepSpeed ZeRO-3 manages `param` (it carries a `ds_id` and a `ds_shape`)."""
    return hasattr(param, "ds_id")


def _gathered(params: list[torch.nn.Parameter]):
    """A context in which `params` are whole on this rank (a collective under ZeRO-3)."""
    if params and is_zero3_partitioned(params[0]):
        import deepspeed

        return deepspeed.zero.GatheredParameters(params, modifier_rank=None)
    return nullcontext()


def module_weight_chunks(model: torch.nn.Module) -> Iterator[WeightChunk]:
    """Each module's own parameters, whole and detached, under `model.named_parameters()` names.

    Modules are visited in `named_modules()` order and a parameter shared by two modules (tied
    embeddings) is yielded once, under its first name, exactly as named_parameters() lists it.
    Under ZeRO-3 every rank must iterate to the end (each chunk is a collective gather).
    """
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        own = [(name, p) for name, p in module.named_parameters(recurse=False) if id(p) not in seen]
        if not own:
            continue
        seen.update(id(p) for _, p in own)
        prefix = f"{module_name}." if module_name else ""
        with torch.no_grad(), _gathered([p for _, p in own]):
            yield [(prefix + name, p.detach()) for name, p in own]
