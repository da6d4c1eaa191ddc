"""Load the policy (and its tokenizer) that a config names, on the resolved device and attention."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoTokenizer, PreTrainedModel

from videorft.engine.config import ModelConfig
from videorft.engine.models.attention import apply_attention
from videorft.engine.models.liger import use_liger_kernels
from videorft.engine.run_dir import log
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.models.tokenizer import build_tokenizer


def load_model_and_tokenizer(cfg: ModelConfig, device: torch.device, attention: str,
                             seed: int = 0) -> tuple[PreTrainedModel, object]:
    """(model, tokenizer): a saved checkpoint (`source: pretrained`) or a fresh tiny model.

    The model is moved to `device` in `cfg.dtype`, with gradient checkpointing (non-reentrant)
    when asked. Checkpoints are safetensors folders written by save_pretrained.
    """
    dtype = getattr(torch, cfg.dtype)
    if cfg.source == "tiny":
        tokenizer = build_tokenizer(cfg.tiny.tokenizer)
        model = build_tiny_model(cfg.tiny, tokenizer, seed=seed, dtype=dtype)
    else:
        path = Path(cfg.path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model.path {path} is not a saved model (no config.json)")
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, attn_implementation="sdpa")
    apply_attention(model, attention)
    if cfg.liger_kernels:
        swapped = use_liger_kernels(model)
        log.info("model.liger_kernels: %d RMSNorm and %d SwiGLU MLP modules on Liger's kernels",
                 swapped["rms_norm"], swapped["swiglu"])
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    tokenizer.padding_side = "left"
    return model.to(device), tokenizer
