"""`model.liger_kernels`: the language model's RMSNorm and SwiGLU MLP on Liger-Kernel's fused Triton kernels.

Module instances are swapped, nothing is patched: every RMSNorm of the language model becomes a
LigerRMSNorm holding the very same weight Parameter, and every SwiGLU MLP a LigerSwiGLUMLP holding
the same three Linear modules, so checkpoints, ZeRO partitioning and the optimizer see the same
parameters under the same names. Liger's RMSNorm computes in fp32 and casts back as Qwen2's does
("llama" casting); its SwiGLU fuses silu(gate) * up.

Rotary embeddings stay transformers' own: in transformers 5.x the M-RoPE sections are folded into
the cos/sin that the rotary module computes once per forward, and what remains is a plain
function call inside the attention forward, which only patching could replace.
"""

from __future__ import annotations

import torch
from torch import nn


def _is_rms_norm(module: nn.Module) -> bool:
    return type(module).__name__.endswith("RMSNorm") and hasattr(module, "variance_epsilon")


def _is_swiglu(module: nn.Module) -> bool:
    return all(isinstance(getattr(module, name, None), nn.Linear) for name in ("gate_proj", "up_proj", "down_proj")) \
        and getattr(module, "act_fn", None) is not None


def use_liger_kernels(model: nn.Module) -> dict[str, int]:
    """Swap the language model's RMSNorm and SwiGLU MLP instances for Liger's; returns the counts swapped."""
    from liger_kernel.transformers.rms_norm import LigerRMSNorm
    from liger_kernel.transformers.swiglu import LigerSwiGLUMLP

    text = model.model.language_model
    config = getattr(model.config, "text_config", model.config)
    swapped = {"rms_norm": 0, "swiglu": 0}
    for parent in list(text.modules()):
        for name, child in list(parent.named_children()):
            if _is_rms_norm(child):
                with torch.device("meta"):                           # no throw-away weights are allocated
                    fused = LigerRMSNorm(child.weight.shape[0], eps=child.variance_epsilon, in_place=False)
                fused.weight = child.weight                          # the same Parameter
                setattr(parent, name, fused)
                swapped["rms_norm"] += 1
            elif _is_swiglu(child):
                with torch.device("meta"):
                    fused = LigerSwiGLUMLP(config, intermediate_size=child.gate_proj.out_features)
                fused.gate_proj, fused.up_proj, fused.down_proj = child.gate_proj, child.up_proj, child.down_proj
                setattr(parent, name, fused)
                swapped["swiglu"] += 1
    return swapped
