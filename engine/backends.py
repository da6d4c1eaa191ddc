"""Resolve "auto" backend settings to concrete choices, by device and installed packages.

GPU-only packages (vllm, flash_attn, DALI) are probed with importlib.util.find_spec and never
imported here. Every resolved choice is logged and written to the run directory.
"""

from __future__ import annotations

import importlib.util

import torch

from videorft.engine.config import RunConfig


def has_package(name: str) -> bool:
    """Whether `name` is importable, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def resolve_device(setting: str) -> torch.device:
    """"auto" -> cuda when available, else cpu; "cuda" without a GPU is an error."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("run.device is 'cuda' but no CUDA device is visible")
    return torch.device(setting)


def resolve_kernel_backend(setting: str, device: torch.device) -> str:
    """"auto" -> triton on CUDA, torch elsewhere."""
    if setting == "auto":
        return "triton" if device.type == "cuda" else "torch"
    if setting == "triton" and device.type != "cuda":
        raise RuntimeError("kernels.backend 'triton' needs CUDA (tests use the interpreter explicitly)")
    return setting


def resolve_rollout_backend(setting: str, device: torch.device) -> str:
    """"auto" -> colocated vLLM on CUDA when installed, else HF generate."""
    if setting == "auto":
        return "vllm" if device.type == "cuda" and has_package("vllm") else "hf"
    if setting == "vllm" and not (device.type == "cuda" and has_package("vllm")):
        raise RuntimeError("rollout.backend 'vllm' needs CUDA and `pip install .[gpu]`")
    return setting


def resolve_attention(setting: str, device: torch.device) -> str:
    """"auto" -> flash_attention_2 on CUDA when flash_attn is installed, else sdpa."""
    if setting == "auto":
        return "flash_attention_2" if device.type == "cuda" and has_package("flash_attn") else "sdpa"
    if setting == "flash_attention_2" and not (device.type == "cuda" and has_package("flash_attn")):
        raise RuntimeError("model.attention 'flash_attention_2' needs CUDA and flash-attn installed")
    return setting


def resolve_video_decoder(setting: str, device: torch.device) -> str:
    """"auto" -> DALI on CUDA when installed, else the fastest installed CPU decoder."""
    from videorft.loaders.video import resolve_decoder

    return resolve_decoder(setting, device)


def resolve_video_preprocess(setting: str, device: torch.device) -> str:
    """"auto" -> gpu on CUDA, native when videorft._native is built, else torch."""
    from videorft.loaders.preprocess import resolve_preprocess

    return resolve_preprocess(setting, device)


def resolve_backends(cfg: RunConfig) -> dict[str, str]:
    """Every backend choice of `cfg` with "auto" resolved, as strings for backends.json."""
    device = resolve_device(cfg.run.device)
    return {
        "device": str(device),
        "kernels": resolve_kernel_backend(cfg.kernels.backend, device),
        "rollout": resolve_rollout_backend(cfg.rollout.backend, device),
        "attention": resolve_attention(cfg.model.attention, device),
        "video_decoder": resolve_video_decoder(cfg.video.backend, device),
        "video_preprocess": resolve_video_preprocess(cfg.video.preprocess, device),
    }
