"""The in-process backends: transformers on CPU (text and Qwen-VL video), and vLLM's clean absence."""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml

from videorft.engine.config import TinyModelConfig, load_config
from videorft.engine.config_loader import ConfigError
from videorft.engine.curate.stage import curate


@pytest.fixture(scope="module")
def tiny_vl_dir(tmp_path_factory, bpe_tokenizer):
    """A saved tiny random-weight Qwen2.5-VL with the BPE tokenizer."""
    from videorft.engine.models.tiny import build_tiny_model

    path = tmp_path_factory.mktemp("tiny_vl")
    build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=1, intermediate_size=64, vision_depth=1,
                                     vision_hidden_size=32), bpe_tokenizer).save_pretrained(path)
    bpe_tokenizer.save_pretrained(path)
    return path


def test_hf_backend_reasons_on_cpu(easy_world, tiny_lm_dir, tmp_path):
    cfg = {"run": {"output_dir": str(tmp_path), "progress": False, "device": "cpu"},
           "data": {"media_root": str(easy_world)},
           "curate": {"input_file": str(easy_world / "train.jsonl"), "output_dir": str(tmp_path), "max_samples": 3,
                      "stages": ["represent", "reason"],
                      "represent": {"backend": "world", "max_pixels": 12544},
                      "reason": {"backend": "hf", "model": str(tiny_lm_dir), "max_tokens": 8, "concurrency": 3}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    stats = curate(load_config(tmp_path / "c.yaml"))["stages"]["reason"]
    assert stats["requests"] == 3 and stats["tokens_out"] > 0 and stats["failures"] == 0
    rows = [json.loads(line) for line in (tmp_path / "reason.jsonl").read_text().splitlines()]
    # a random model writes no <think>/<answer> blocks: every sample is finished, as unusable
    assert len(rows) == 3 and {r["status"] for r in rows} == {"invalid"} and all("text" in r for r in rows)


def test_hf_backend_sends_the_video_to_a_qwen_vl_model(easy_world, tiny_vl_dir, tmp_path):
    import asyncio

    from videorft.engine.curate import prompts
    from videorft.engine.curate.backends.hf_local import HFBackend
    from videorft.engine.curate.frames import load_frames
    from videorft.engine.curate.pool import read_pool
    from videorft.engine.curate.requests import ChatRequest, Sampling

    cfg = load_config(None, [f"curate.revise.model={tiny_vl_dir}", "curate.revise.backend=hf",
                             "curate.revise.max_pixels=12544", "curate.revise.max_frames=4"]).curate.revise
    record = read_pool(str(easy_world / "train.jsonl")).samples[0].record
    frames = load_frames(record, str(easy_world), cfg)
    request = ChatRequest(stage="revise", model=cfg.model, prompt_version="t", record=record, frames=frames,
                          messages=prompts.revise_messages(record, "<think>I see a circle.</think>"),
                          sampling=Sampling(temperature=0.0, top_p=1.0, max_tokens=6))
    backend = HFBackend("revise", cfg, "cpu")
    out = asyncio.run(backend.complete(request))
    video_tokens = (4 // 2) * (112 // 28) ** 2                 # temporal patches x merged patches per frame
    assert out.tokens_in > video_tokens and 0 < out.tokens_out <= 6


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_is_a_clear_error():
    from videorft.engine.curate.backends.vllm_offline import VLLMBackend

    cfg = load_config(None, ["curate.revise.backend=vllm", "curate.revise.model=x"]).curate.revise
    with pytest.raises(ConfigError, match="vLLM cannot be imported"):
        VLLMBackend("revise", cfg)
