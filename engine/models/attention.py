"""The engine's attention implementation for transformers models, registered, not patched.

transformers looks attention functions up by name (`AttentionInterface`) and attention-mask
builders likewise (`AttentionMaskInterface`); `apply_attention(model, VARLEN_ATTENTION)` registers
ours under two names and switches the model's configs to them with `set_attn_implementation`.
No class or forward method is replaced.

How sequence boundaries reach the function:
  * Language model: a packed row carries position ids [4, 1, T] whose first row restarts at 0 for
    every sample (see engine/models/packing.py). The Qwen-VL text models hand that row to the
    attention function as `position_ids`; boundaries are where it does not step by one.
  * Vision tower: Qwen2/2.5/3-VL compute cu_seqlens from grid_thw for their window and full
    attention blocks, but hand them to the attention function in a single call only when the
    implementation name contains "flash" (transformers' `is_flash_attention_requested`); otherwise
    they loop over windows in Python. The vision config therefore gets VARLEN_ATTENTION_VISION.
    A "flash" name cannot be set on the top-level config (transformers would try to load a flash
    kernel package for it), so the plan sets the sub-configs individually.
The mask builder returns only a 2-D padding mask (or None), as for flash-attn: no [T, T] mask is
ever built by the model; the function derives what it needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from videorft.engine.models.prefix_sharing import SharedPrefixLayout, shared_prefix_attention
from videorft.engine.models.varlen_attention import (
    cu_seqlens_from_lengths,
    cu_seqlens_from_position_ids,
    varlen_attention,
)

VARLEN_ATTENTION = "videorft_varlen"
"""Name of the engine's implementation for the language model (and the config value)."""
VARLEN_ATTENTION_VISION = "videorft_varlen_flash"
"""The same function, registered under a name that makes vision towers pass cu_seqlens (see above)."""
STOCK_ATTENTIONS = ("sdpa", "eager", "flash_attention_2")


def _tokens_major(x: torch.Tensor) -> torch.Tensor:
    """[B, H, T, D] -> [B*T, H, D]."""
    batch, heads, length, dim = x.shape
    return x.transpose(1, 2).reshape(batch * length, heads, dim)


def _dense_attention(query, key, value, mask, causal, scale, dropout):
    """Fallback for a query shorter than the keys (decoding with a cache) or a prepared 4-D mask.

    query [B, Hq, T, D]; key, value [B, Hkv, S, D]; mask: None, bool [B, S] (keys to keep) or a
    ready [B, 1, T, S] mask used as given. Causality is aligned to the last query (bottom-right),
    as in flash-attn. Returns [B, T, Hq, D].
    """
    q_len, kv_len = query.shape[2], key.shape[2]
    if mask is None or mask.dim() == 2:
        keys = mask
        mask = torch.ones(q_len, kv_len, dtype=torch.bool, device=query.device)     # [T, S]
        if causal:
            mask = mask.tril(diagonal=kv_len - q_len)
        mask = mask[None, None]                                                     # [1, 1, T, S]
        if keys is not None:
            mask = mask & keys[:, None, None, :].bool()                             # [B, 1, T, S]
        # A query with nothing to attend to (left padding) would produce NaN; let it see itself.
        empty = ~mask.any(-1, keepdim=True)                                         # [B, 1, T, 1]
        rows = torch.arange(q_len, device=query.device)
        own = torch.zeros(q_len, kv_len, dtype=torch.bool, device=query.device)
        own[rows, rows + kv_len - q_len] = True                                     # query's own key
        mask = mask | (empty & own)
    # grouped-query heads read their shared key/value head in place (no copy of the cache per step)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout, scale=scale,
                                         enable_gqa=query.shape[1] != key.shape[1])
    return out.transpose(1, 2)


def _padded_varlen(query, key, value, padding, causal, scale, dropout):
    """Rows with a 2-D padding mask [B, T]: keep the real tokens, run them packed, scatter back."""
    batch, heads, length, dim = query.shape
    keep = padding.reshape(-1).nonzero().squeeze(1)                                # [N]
    cu = cu_seqlens_from_lengths(padding.sum(-1), device=query.device)
    q, k, v = (_tokens_major(t).index_select(0, keep) for t in (query, key, value))  # [N, H, D]
    packed = varlen_attention(q, k, v, cu, causal=causal, scale=scale, dropout=dropout)
    out = packed.new_zeros(batch * length, heads, dim).index_copy(0, keep, packed)  # [B*T, Hq, D]
    return out.view(batch, length, heads, dim)


def varlen_attention_forward(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor,
                             value: torch.Tensor, attention_mask: torch.Tensor | None,
                             dropout: float = 0.0, scaling: float | None = None,
                             is_causal: bool | None = None, position_ids: torch.Tensor | None = None,
                             cu_seq_lens_q: torch.Tensor | None = None,
                             cu_seq_lens_k: torch.Tensor | None = None, max_length_q: int | None = None,
                             sliding_window: int | None = None, prefix_layout: SharedPrefixLayout | None = None,
                             **kwargs) -> tuple[torch.Tensor, None]:
    """transformers attention function: query [B, Hq, T, D], key/value [B, Hkv, S, D] -> ([B, T, Hq, D], None).

    Boundaries come from, in order: `prefix_layout` (a shared-prefix row of GRPO groups, B = 1,
    engine/models/prefix_sharing.py), `cu_seq_lens_q` (vision towers; B must be 1), a 2-D padding
    mask, or `position_ids` [B, T] (packed rows restart at 0). With none of them each row is one
    sequence. Causal unless `is_causal` or `module.is_causal` says otherwise.
    """
    if sliding_window is not None:
        raise NotImplementedError(f"{VARLEN_ATTENTION} does not implement sliding-window attention")
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    batch, heads, q_len, dim = query.shape
    kv_len = key.shape[2]
    if prefix_layout is not None:
        if batch != 1 or q_len != kv_len or not causal:
            raise ValueError("a shared-prefix layout needs one causal row without a cache")
        out = shared_prefix_attention(_tokens_major(query), _tokens_major(key), _tokens_major(value), prefix_layout,
                                      scaling, dropout)
        return out.view(batch, q_len, heads, dim), None
    if cu_seq_lens_q is not None:
        different_keys = cu_seq_lens_k is not None and cu_seq_lens_k is not cu_seq_lens_q and not torch.equal(
            cu_seq_lens_q, cu_seq_lens_k)
        if batch != 1 or different_keys:
            raise ValueError("cu_seq_lens_q needs one packed row (B=1) with identical key boundaries")
        out = varlen_attention(_tokens_major(query), _tokens_major(key), _tokens_major(value), cu_seq_lens_q,
                               max_length_q, causal=causal, scale=scaling, dropout=dropout)
        return out.view(batch, q_len, heads, dim), None
    if q_len != kv_len or (attention_mask is not None and attention_mask.dim() == 4):
        return _dense_attention(query, key, value, attention_mask, causal, scaling, dropout), None
    if attention_mask is not None:
        return _padded_varlen(query, key, value, attention_mask.bool(), causal, scaling, dropout), None
    if position_ids is not None:
        cu = cu_seqlens_from_position_ids(position_ids.expand(batch, -1))
    else:
        cu = cu_seqlens_from_lengths([q_len] * batch, device=query.device)
    out = varlen_attention(_tokens_major(query), _tokens_major(key), _tokens_major(value), cu,
                           causal=causal, scale=scaling, dropout=dropout)
    return out.view(batch, q_len, heads, dim), None


def varlen_attention_mask(batch_size: int, q_length: int, kv_length: int, q_offset: int = 0,
                          kv_offset: int = 0, attention_mask: torch.Tensor | None = None, **kwargs):
    """transformers mask builder: the bool padding mask [B, S] when any key is padding, else None."""
    from transformers.masking_utils import flash_attention_mask

    return flash_attention_mask(batch_size, q_length, kv_length, q_offset, kv_offset,
                                attention_mask=attention_mask)


def register_varlen_attention() -> None:
    """Register the function and mask builder under both names (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    for name in (VARLEN_ATTENTION, VARLEN_ATTENTION_VISION):
        AttentionInterface.register(name, varlen_attention_forward)
        AttentionMaskInterface.register(name, varlen_attention_mask)


def attention_plan(model, name: str) -> str | dict[str, str]:
    """What `set_attn_implementation` receives for `name`: a per-sub-config dict for ours."""
    if name != VARLEN_ATTENTION:
        return name
    plan = {"": VARLEN_ATTENTION}
    for key in getattr(model.config, "sub_configs", {}):
        plan[key] = VARLEN_ATTENTION_VISION if key == "vision_config" else VARLEN_ATTENTION
    return plan


def attention_of(model) -> dict[str, str]:
    """The implementation each config of `model` uses: {"": top level, "<sub_config>": ...}."""
    found = {"": model.config._attn_implementation}
    for key in getattr(model.config, "sub_configs", {}):
        sub = getattr(model.config, key, None)
        if sub is not None:
            found[key] = sub._attn_implementation
    return found


def apply_attention(model, name: str) -> dict[str, str]:
    """Switch `model` (and its vision and text sub-models) to attention `name`; returns attention_of(model).

    name: VARLEN_ATTENTION ("videorft_varlen") or a stock transformers name ("sdpa", "eager",
    "flash_attention_2"). Uses only `model.set_attn_implementation`, so it works on any model
    built on transformers' AttentionInterface and can be called again to switch back.
    """
    if name not in (VARLEN_ATTENTION,) + STOCK_ATTENTIONS:
        raise ValueError(f"model.attention must be one of {(VARLEN_ATTENTION,) + STOCK_ATTENTIONS}, got {name!r}")
    if name == VARLEN_ATTENTION:
        register_varlen_attention()
    model.set_attn_implementation(attention_plan(model, name))
    return attention_of(model)
