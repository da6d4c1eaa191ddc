"""Model FLOPs of a training step and the model FLOPs utilisation (MFU) a lab reads next to tokens/s.

Counted from the model config and the tokens each pass really processed: a dense matmul over P
parameters costs 2P FLOPs per token forward and 4P backward; attention costs 4 * heads * head_dim
per (query, key) pair forward; the lm_head runs only on the positions the loss reads (the fused
kernels skip the rest). A prompt shared by its group (prefix sharing) is counted once, which is
the point: MFU is model work per second, so sharing raises tokens/s, not the FLOPs of a token.
The peak is the device's dense bf16 tensor-core rate; on other devices MFU is not reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

PEAK_TFLOPS = {"H200": 989.4, "H100": 989.4, "A100": 312.0}
"""Dense bf16 peak (TFLOP/s, SXM parts, vendor datasheets) by the name in torch.cuda.get_device_name()."""


def device_peak_flops(device: torch.device) -> float | None:
    """FLOP/s of the device's dense bf16 peak, or None when it is not a GPU of the table."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((t * 1e12 for key, t in PEAK_TFLOPS.items() if key in name), None)


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a Qwen-VL model that its FLOPs depend on."""

    layer_params: int
    """Matmul parameters of one language-model layer (attention projections and MLP)."""
    layers: int
    attention_width: int
    """query heads x head dim."""
    head_params: int
    """hidden x vocabulary (the lm_head)."""
    vision_params_per_patch: int
    """Matmul parameters of the vision tower a patch goes through (blocks and merger, roughly)."""

    @classmethod
    def of(cls, config) -> "ModelShape":
        text = getattr(config, "text_config", config)
        hidden, heads = text.hidden_size, text.num_attention_heads
        head_dim = getattr(text, "head_dim", None) or hidden // heads
        kv = text.num_key_value_heads * head_dim
        layer = hidden * heads * head_dim * 2 + hidden * kv * 2 + 3 * hidden * text.intermediate_size
        vision = config.vision_config
        width = getattr(vision, "hidden_size", None) or getattr(vision, "embed_dim")
        mlp = getattr(vision, "intermediate_size", None) or width * getattr(vision, "mlp_ratio", 4)
        vision_params = vision.depth * (4 * width * width + 2 * width * mlp)
        return cls(layer, text.num_hidden_layers, heads * head_dim, hidden * text.vocab_size, vision_params)

    def forward(self, tokens: int, pairs: int, head_tokens: int, patches: int = 0) -> float:
        """FLOPs of one forward: `tokens` through the language model, `pairs` (query, key) attention
        pairs in all, `head_tokens` through the lm_head, `patches` through the vision tower."""
        return (2 * self.layers * self.layer_params * tokens + 4 * self.layers * self.attention_width * pairs
                + 2 * self.head_params * head_tokens + 2 * self.vision_params_per_patch * patches)


def attention_pairs(prompt: int, completions: Sequence[int], shared: bool) -> tuple[int, int]:
    """(tokens, causal attention pairs) of one group: a prompt and its completions' lengths."""
    prefix = prompt * (prompt + 1) // 2
    own = sum(prompt * c + c * (c + 1) // 2 for c in completions)
    if shared:
        return prompt + sum(completions), prefix + own
    return len(completions) * prompt + sum(completions), len(completions) * prefix + own


def grpo_step_flops(shape: ModelShape, prompts: Sequence[int], completions: Sequence[Sequence[int]],
                    patches: Sequence[int], shared: bool, passes_forward: int, updates: int) -> float:
    """Model FLOPs of the log-prob and update passes of a GRPO step (rollout generation excluded).

    prompts: tokens of each group's prompt; completions: each group's completion lengths; patches:
    vision patches of each group's media; passes_forward: forward-only passes (reference, old
    policy); updates: forward + backward passes (inner updates). Backward costs twice the forward.
    """
    total = 0.0
    for prompt, lengths, patch in zip(prompts, completions, patches):
        tokens, pairs = attention_pairs(prompt, lengths, shared)
        total += shape.forward(tokens, pairs, sum(lengths), patch)
    return total * (passes_forward + 3 * updates)


def utilisation(flops: float, seconds: float, device: torch.device) -> dict[str, float]:
    """{"model_tflops_per_s", and "mfu" on a GPU of the peak table} for `flops` done in `seconds`."""
    if seconds <= 0:
        return {}
    out = {"model_tflops_per_s": flops / seconds / 1e12}
    peak = device_peak_flops(device)
    if peak is not None:
        out["mfu"] = flops / seconds / peak
    return out
