"""Backends are resolved once into a frozen record; its values are what the data path runs on."""

import dataclasses
import re

import pytest
import torch

from videorft import kernels
from videorft.engine.backends import resolve_backends
from videorft.engine.config import load_config
from videorft.engine.config_loader import ConfigError
from videorft.engine.datasets import build_dataset
from videorft.loaders.records import RecordSet

CPU = torch.device("cpu")


def test_kernel_backend_follows_the_kernels_rule(monkeypatch):
    cfg = load_config(None, ["run.device=cpu", "kernels.backend=triton"])
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert resolve_backends(cfg).kernels == kernels.resolve_backend("triton", CPU) == "triton"
    monkeypatch.delenv("TRITON_INTERPRET")
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        kernels.resolve_backend("triton", CPU)
    with pytest.raises(ConfigError, match=r"kernels.backend: .*TRITON_INTERPRET"):
        resolve_backends(cfg)


@pytest.mark.skipif(torch.cuda.is_available(), reason="every choice below can run on a CUDA machine")
@pytest.mark.parametrize("override, field", [
    ("run.device=cuda", "run.device"),
    ("rollout.backend=vllm", "rollout.backend"),
    ("model.attention=flash_attention_2", "model.attention"),
    ("video.preprocess=gpu", "video.preprocess"),
])
def test_a_backend_that_cannot_run_here_is_a_config_error_naming_the_field(override, field):
    with pytest.raises(ConfigError, match=re.escape(field)):
        resolve_backends(load_config(None, ["run.device=cpu", override]))


def test_the_dataset_gets_the_resolved_video_backends(bpe_tokenizer):
    cfg = load_config(None, ["run.device=cpu", "video.preprocess=torch"])
    backends = resolve_backends(cfg)
    assert (backends.video_decoder, backends.video_decoder_fallback, backends.video_preprocess) == ("pyav", None,
                                                                                                   "torch")
    with pytest.raises(dataclasses.FrozenInstanceError):
        backends.video_decoder = "opencv"
    chosen = dataclasses.replace(backends, video_decoder="opencv", video_preprocess="native")
    dataset = build_dataset(cfg, chosen, bpe_tokenizer, RecordSet(records=[]), "prompt")
    assert (dataset.video_decoder, dataset.decoder_fallback, dataset.preprocess) == ("opencv", None, "native")
