"""Tiny random-weight Qwen-VL models built from configs, fully offline.

They are the real transformers classes (Qwen2_5_VLForConditionalGeneration and its siblings)
at toy widths, so every code path that runs on Qwen2.5-VL-7B runs on them on a CPU in seconds.
"""

from __future__ import annotations

import torch
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from videorft.engine.config import TinyModelConfig


def _special_ids(tok: PreTrainedTokenizerBase) -> dict[str, int]:
    names = {
        "image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
        "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>",
    }
    return {key: tok.convert_tokens_to_ids(tok_name) for key, tok_name in names.items()}


def _mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary frequencies over (time, height, width) in Qwen's 2:3:3 proportion."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


def _text_config(cfg: TinyModelConfig, tok: PreTrainedTokenizerBase, head_dim: int) -> dict:
    return dict(
        vocab_size=len(tok), hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads, max_position_embeddings=8192, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )


def tiny_config(cfg: TinyModelConfig, tok: PreTrainedTokenizerBase) -> PretrainedConfig:
    """A transformers config of family `cfg.family` at the widths of `cfg`, ids from `tok`."""
    head_dim = cfg.hidden_size // cfg.num_heads
    text = _text_config(cfg, tok, head_dim)
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": _mrope_section(head_dim)}
    ids = _special_ids(tok)
    vision_heads = max(1, cfg.vision_hidden_size // 16)
    if cfg.family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        vision = dict(depth=cfg.vision_depth, hidden_size=cfg.vision_hidden_size,
                      intermediate_size=2 * cfg.vision_hidden_size, num_heads=vision_heads,
                      out_hidden_size=cfg.hidden_size, patch_size=14, spatial_merge_size=2,
                      temporal_patch_size=2, window_size=56,
                      fullatt_block_indexes=[cfg.vision_depth - 1], tokens_per_second=2)
        return Qwen2_5_VLConfig(text_config={**text, "rope_parameters": rope}, vision_config=vision, **ids)
    if cfg.family == "qwen2_vl":
        from transformers import Qwen2VLConfig

        vision = dict(depth=cfg.vision_depth, embed_dim=cfg.vision_hidden_size, hidden_size=cfg.hidden_size,
                      mlp_ratio=2, num_heads=vision_heads, patch_size=14, spatial_merge_size=2,
                      temporal_patch_size=2)
        return Qwen2VLConfig(text_config={**text, "rope_parameters": rope}, vision_config=vision, **ids)
    if cfg.family == "qwen3_vl":
        from transformers import Qwen3VLConfig

        text.update(head_dim=head_dim, rope_parameters={**rope, "mrope_interleaved": True})
        vision = dict(depth=cfg.vision_depth, hidden_size=cfg.vision_hidden_size,
                      intermediate_size=2 * cfg.vision_hidden_size, num_heads=vision_heads,
                      out_hidden_size=cfg.hidden_size, patch_size=16, spatial_merge_size=2,
                      temporal_patch_size=2, num_position_embeddings=64,
                      deepstack_visual_indexes=[cfg.vision_depth - 1])
        return Qwen3VLConfig(text_config=text, vision_config=vision, **ids)
    raise ValueError(f"unknown tiny model family {cfg.family!r}")


def build_tiny_model(cfg: TinyModelConfig, tok: PreTrainedTokenizerBase, seed: int = 0,
                     dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """Random-weight model of `cfg.family` (seeded), in eval mode, on CPU."""
    from transformers import AutoModelForImageTextToText

    config = tiny_config(cfg, tok)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype)
    return model.eval()
