"""Curation backends by name: openai (HTTP), vllm (offline), hf (in-process), world (synthetic oracle)."""

from __future__ import annotations

from videorft.engine.config import RunConfig
from videorft.engine.curate.backends.base import Backend


def make_backend(stage: str, cfg: RunConfig, device: str) -> Backend:
    """The backend that `curate.<stage>.backend` names, set up for that stage."""
    stage_cfg = getattr(cfg.curate, stage)
    if stage_cfg.backend == "openai":
        from videorft.engine.curate.backends.openai_http import OpenAIBackend
        return OpenAIBackend(stage, stage_cfg)
    if stage_cfg.backend == "vllm":
        from videorft.engine.curate.backends.vllm_offline import VLLMBackend
        return VLLMBackend(stage, stage_cfg)
    if stage_cfg.backend == "hf":
        from videorft.engine.curate.backends.hf_local import HFBackend
        return HFBackend(stage, stage_cfg, device)
    from videorft.engine.curate.backends.world import WorldBackend
    return WorldBackend(stage, cfg.data.media_root, cfg.curate.world)
