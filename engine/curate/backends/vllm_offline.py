"""The `vllm` backend: offline vLLM in this process, on the node's GPUs, for batch curation.

The requests that are waiting are handed to `LLM.chat` together (vLLM schedules them with
continuous batching), with the video as image parts in the same OpenAI message format the `openai`
backend sends. vLLM is imported only when this backend is chosen; without it the stage stops with
a clear error before any request is made.
"""

from __future__ import annotations

import time

from videorft.engine.config import CurateModelConfig
from videorft.engine.config_loader import ConfigError
from videorft.engine.curate.backends.base import BatchingBackend
from videorft.engine.curate.backends.openai_http import render_messages
from videorft.engine.curate.requests import ChatRequest, Completion


class VLLMBackend(BatchingBackend):
    """Batches of chat requests through one vLLM engine."""

    name = "vllm"

    def __init__(self, stage: str, cfg: CurateModelConfig):
        super().__init__(cfg.concurrency)
        try:
            import vllm
        except ImportError as err:
            raise ConfigError(f"curate.{stage}.backend is 'vllm' but vLLM cannot be imported ({err}); install "
                              "the gpu extra on a CUDA node, or use the openai backend against `vllm serve`") from None
        if not cfg.model:
            raise ConfigError(f"curate.{stage}.model: give the checkpoint for the vllm backend")
        self._vllm = vllm
        self.cfg = cfg
        self.llm = vllm.LLM(model=cfg.model, dtype=cfg.dtype, tensor_parallel_size=cfg.tensor_parallel_size,
                            gpu_memory_utilization=cfg.gpu_memory_utilization,
                            limit_mm_per_prompt={"image": cfg.max_frames, "video": 1})

    def generate_batch(self, requests: list[ChatRequest]) -> list[Completion]:
        start = time.perf_counter()
        s = requests[0].sampling
        params = self._vllm.SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
                                           seed=s.seed)
        outputs = self.llm.chat([render_messages(r) for r in requests], params, use_tqdm=False)
        latency = time.perf_counter() - start
        return [Completion(text=o.outputs[0].text, tokens_in=len(o.prompt_token_ids or []),
                           tokens_out=len(o.outputs[0].token_ids), latency_s=latency) for o in outputs]
