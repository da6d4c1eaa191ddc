"""`videorft init-model`: write a tiny random-weight model and its tokenizer as a checkpoint.

The result is an ordinary save_pretrained folder (safetensors) with the processor files of its
family, so every later stage, vLLM and AutoProcessor load it with `model.source: pretrained`
exactly as they would load Qwen2.5-VL-7B-Instruct.
"""

from __future__ import annotations

from typing import Any

import torch

from videorft.engine.config import RunConfig
from videorft.engine.models.processor_files import write_processor_files
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.models.tokenizer import build_tokenizer
from videorft.engine.run_dir import RunDir, log


def run(cfg: RunConfig) -> dict[str, Any]:
    """Build `cfg.model.tiny` (seeded by run.seed); save model, tokenizer and processor files to run.output_dir."""
    run_dir = RunDir(cfg, "init-model")
    tok = build_tokenizer(cfg.model.tiny.tokenizer)
    model = build_tiny_model(cfg.model.tiny, tok, seed=cfg.run.seed,
                             dtype=getattr(torch, cfg.model.dtype))
    model.save_pretrained(run_dir.path, safe_serialization=True)
    tok.save_pretrained(run_dir.path)
    write_processor_files(run_dir.path, model.config, tok)
    params = sum(p.numel() for p in model.parameters())
    log.info("saved a %s model with %.2fM parameters to %s", cfg.model.tiny.family, params / 1e6, run_dir.path)
    run_dir.close()
    return {"path": str(run_dir.path), "parameters": params}
