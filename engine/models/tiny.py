"""Tiny random-weight Qwen-VL models built from configs, fully offline.

They are the real transformers classes (Qwen2_5_VLForConditionalGeneration and its siblings)
at toy widths, so every code path that runs on Qwen2.5-VL-7B runs on them on a CPU in seconds.
"""

from __future__ import annotations

import torch
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from videorft.engine.config import TinyModelConfig
from videorft.loaders.family import family_named


def _special_ids(tok: PreTrainedTokenizerBase) -> dict[str, int]:
    names = {
        "image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
        "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>",
    }
    return {key: tok.convert_tokens_to_ids(tok_name) for key, tok_name in names.items()}


def tiny_config(cfg: TinyModelConfig, tok: PreTrainedTokenizerBase) -> PretrainedConfig:
    """A transformers config of family `cfg.family` at the widths of `cfg`, ids from `tok`."""
    return family_named(cfg.family).tiny_config(cfg, _special_ids(tok), vocab_size=len(tok),
                                                eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


def build_tiny_model(cfg: TinyModelConfig, tok: PreTrainedTokenizerBase, seed: int = 0,
                     dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """Random-weight model of `cfg.family` (seeded), in eval mode, on CPU."""
    from transformers import AutoModelForImageTextToText

    config = tiny_config(cfg, tok)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config, dtype=dtype)
    return model.eval()
