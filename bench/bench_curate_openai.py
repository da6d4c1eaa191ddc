"""Throughput of the curation `openai` backend against a loopback OpenAI-compatible server.

`transformers serve` runs a tiny random-weight Qwen2 model on this machine (sequential generation,
or continuous batching with `--continuous-batching`); the backend sends N short text-only requests
(the reasoning stage's shape) at concurrency 1 and 16. The figure is requests per second of the
whole batch, client overhead included.

    pytest bench/bench_curate_openai.py --benchmark-json=bench/results/<hardware>/curate_openai-<date>.json
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench.conftest import stamp

REQUESTS = 32
MAX_TOKENS = 16


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from videorft.engine.models.tokenizer import build_tokenizer

    tok = build_tokenizer("bpe")
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    path = tmp_path_factory.mktemp("bench_lm")
    Qwen2ForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module", params=["sequential", "continuous-batching"])
def server(request, tiny_lm, tmp_path_factory):
    port = _port()
    args = [str(Path(sys.executable).parent / "transformers"), "serve", str(tiny_lm), "--host", "127.0.0.1",
            "--port", str(port), "--device", "cpu", "--dtype", "float32"]
    if request.param == "continuous-batching":
        args.append("--continuous-batching")
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "HF_HUB_OFFLINE": "1"})
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
            break
        except OSError:
            time.sleep(0.3)
    url = f"http://127.0.0.1:{port}/v1"
    import openai

    with openai.OpenAI(base_url=url, api_key="EMPTY") as warm:       # first request sets up generation
        warm.chat.completions.create(model=str(tiny_lm), messages=[{"role": "user", "content": "warm up"}],
                                     max_tokens=MAX_TOKENS, temperature=0.0)
    yield request.param, url, str(tiny_lm)
    proc.terminate()
    proc.wait(timeout=20)


def _requests(model: str):
    from videorft.engine.curate.requests import ChatRequest, Sampling
    from videorft.loaders.records import Record

    out = []
    for i in range(REQUESTS):
        record = Record(problem_id=i, problem=f"What colour is shape {i}?", problem_type="free-form",
                        data_type="video", path="./x.mp4", solution="<answer>red</answer>")
        out.append(ChatRequest(stage="reason", model=model, prompt_version="bench", record=record,
                               messages=[{"role": "user", "content": f"Question {i}: what colour is the shape?"}],
                               sampling=Sampling(temperature=0.0, top_p=1.0, max_tokens=MAX_TOKENS)))
    return out


@pytest.mark.parametrize("concurrency", [1, 16])
def test_openai_backend_requests_per_second(benchmark, server, concurrency):
    from videorft.engine.config import CurateModelConfig
    from videorft.engine.curate.backends.openai_http import OpenAIBackend

    mode, url, model = server
    cfg = CurateModelConfig(backend="openai", model=model, base_url=[url], concurrency=concurrency, timeout_s=120)

    async def batch() -> list:
        backend = OpenAIBackend("reason", cfg)
        try:
            return await asyncio.gather(*(backend.complete(r) for r in _requests(model)))
        finally:
            await backend.aclose()

    start = time.perf_counter()
    results = benchmark.pedantic(lambda: asyncio.run(batch()), rounds=1, iterations=1)
    seconds = time.perf_counter() - start
    assert len(results) == REQUESTS and all(r.retries == 0 for r in results)
    stamp(benchmark, f"openai-backend/transformers-serve-{mode}", {"requests": REQUESTS, "concurrency": concurrency,
                                                                  "max_tokens": MAX_TOKENS},
          requests_per_s=round(REQUESTS / seconds, 2),
          tokens_per_s=round(sum(r.tokens_out for r in results) / seconds, 1))
