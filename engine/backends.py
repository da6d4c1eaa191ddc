"""Resolve "auto" backend settings once, at start-up, into one frozen `Backends` record.

The record is logged and written to the run directory (backends.json), and its values are handed
to whatever runs on them: the kernel backend to the policy, the rollout engine to build_rollout,
the attention implementation to the model loader, and the video decoder (with its fallback) and
preprocessing path to the dataset. Nothing downstream resolves "auto" again.

GPU-only packages (vllm, flash_attn, DALI) are probed without importing them. A choice that
cannot run here is a ConfigError naming the field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Optional

import torch

from videorft.engine.config import RunConfig
from videorft.engine.config_loader import ConfigError
from videorft.loaders.packages import has_package


@dataclass(frozen=True)
class Backends:
    """Every backend choice of a run, with "auto" resolved."""

    device: str
    """"cpu" or "cuda"."""
    kernels: str
    """Fused lm_head kernels: "triton", "torch" or "reference" (videorft.kernels.resolve_backend)."""
    rollout: str
    """Rollout engine: "hf" or "vllm"."""
    attention: str
    """The model's attention implementation (sdpa, flash_attention_2, videorft_varlen, ...)."""
    video_decoder: str
    """Video decoder name (loaders.video.DECODERS)."""
    video_decoder_fallback: Optional[str]
    """CPU decoder for codecs the decoder cannot read here ("auto" choosing DALI only), else None."""
    video_preprocess: str
    """Resize/normalise/patchify path: "torch", "native" or "gpu"."""

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)

    def as_dict(self) -> dict[str, Optional[str]]:
        """The record as backends.json holds it."""
        return asdict(self)


def resolve_device(setting: str) -> torch.device:
    """"auto" -> cuda when available, else cpu; "cuda" without a GPU is an error."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device is 'cuda' but no CUDA device is visible")
    return torch.device(setting)


def resolve_kernel_backend(setting: str, device: torch.device) -> str:
    """videorft.kernels.resolve_backend (the one rule: "auto" is triton on CUDA, torch elsewhere;
    triton on a CPU only under TRITON_INTERPRET=1), with errors naming kernels.backend."""
    from videorft.kernels import resolve_backend

    try:
        return resolve_backend(setting, device)
    except ValueError as err:
        raise ConfigError(f"kernels.backend: {err}") from None


def resolve_rollout_backend(setting: str, device: torch.device) -> str:
    """"auto" -> colocated vLLM on CUDA when installed, else HF generate."""
    if setting == "auto":
        return "vllm" if device.type == "cuda" and has_package("vllm") else "hf"
    if setting == "vllm" and not (device.type == "cuda" and has_package("vllm")):
        raise ConfigError("rollout.backend 'vllm' needs CUDA and `pip install .[gpu]`")
    return setting


def resolve_attention(setting: str, device: torch.device) -> str:
    """"auto" -> flash_attention_2 on CUDA when flash_attn is installed, else sdpa.

    "videorft_varlen" runs on every device (it picks flash-attn varlen itself where it can);
    apply it to a model with videorft.engine.models.attention.apply_attention.
    """
    if setting == "auto":
        return "flash_attention_2" if device.type == "cuda" and has_package("flash_attn") else "sdpa"
    if setting == "flash_attention_2" and not (device.type == "cuda" and has_package("flash_attn")):
        raise ConfigError("model.attention 'flash_attention_2' needs CUDA and flash-attn installed")
    return setting


def _as_config_error(resolve: Callable[[], tuple], field: str) -> tuple:
    """resolve(), with a loaders error (which names the field) raised as a ConfigError."""
    try:
        return resolve()
    except (ValueError, RuntimeError) as err:
        message = str(err)
        raise ConfigError(message if field in message else f"{field}: {message}") from None


def resolve_backends(cfg: RunConfig) -> Backends:
    """Every backend choice of `cfg` with "auto" resolved for the run's device."""
    from videorft.loaders.video import resolve_video_backends

    device = resolve_device(cfg.run.device)
    decoder, fallback, preprocess = _as_config_error(
        lambda: resolve_video_backends(cfg.video.backend, cfg.video.preprocess, device), "video")
    return Backends(device=str(device), kernels=resolve_kernel_backend(cfg.kernels.backend, device),
                    rollout=resolve_rollout_backend(cfg.rollout.backend, device),
                    attention=resolve_attention(cfg.model.attention, device), video_decoder=decoder,
                    video_decoder_fallback=fallback, video_preprocess=preprocess)
