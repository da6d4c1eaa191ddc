"""Rollouts with vLLM colocated in the training process (CUDA only).

The engine shares the GPU with training: it sleeps (releasing its KV cache and weights) while
the policy updates, wakes for the next rollout, and receives the new weights in place after each
optimizer step through vLLM's public `LLM.apply_model`. vLLM runs in-process
(VLLM_ENABLE_V1_MULTIPROCESSING=0) so the weight hand-over is a device-to-device copy, not IPC.
vllm is imported only when this backend is chosen.
"""

from __future__ import annotations

import os
from typing import Iterator

import torch

from videorft.engine.config import RolloutConfig
from videorft.engine.rollout.types import (PromptSource, Rollouts, completion_mask, decode_completions,
                                            suppressed_token_ids)


class VLLMRollout:
    """Samples G completions per prompt with vLLM; prompts carry the decoded clip's frames."""

    name = "vllm"

    def __init__(self, model_path: str, tokenizer, cfg: RolloutConfig, max_model_len: int,
                 dtype: str = "bfloat16", seed: int = 0):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from vllm import LLM

        self.tokenizer = tokenizer
        self.cfg = cfg
        self.llm = LLM(model=model_path, dtype=dtype, gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
                       max_model_len=max_model_len, enable_sleep_mode=cfg.vllm_sleep, enable_prefix_caching=True,
                       limit_mm_per_prompt={"video": 1, "image": 1}, seed=seed)
        self._asleep = False

    def _sampling(self, n: int, greedy: bool, max_new_tokens: int | None, temperature: float | None,
                  top_p: float | None):
        from vllm import SamplingParams

        common = dict(n=n, max_tokens=max_new_tokens or self.cfg.max_new_tokens,
                      logit_bias={i: -100.0 for i in suppressed_token_ids(self.tokenizer)})
        if greedy:
            return SamplingParams(temperature=0.0, **common)
        return SamplingParams(temperature=temperature or self.cfg.temperature, top_p=top_p or self.cfg.top_p,
                              top_k=self.cfg.top_k if self.cfg.top_k > 0 else -1, **common)

    @torch.no_grad()
    def generate(self, prompts: PromptSource, group_size: int | None = None, greedy: bool = False,
                 max_new_tokens: int | None = None, temperature: float | None = None,
                 top_p: float | None = None) -> Rollouts:
        """G completions for each of the P prompts; vLLM gets each prompt's text with one video
        placeholder and the clip's frames (already sampled and resized) with their sampling fps."""
        g = group_size or self.cfg.group_size
        self.wake()
        requests = [{
            "prompt": text,
            "multi_modal_data": {"video": clip.frames.cpu().numpy()},
            "mm_processor_kwargs": {"fps": clip.sample_fps, "do_sample_frames": False},
        } for text, clip in zip(prompts.prompt_texts, prompts.clips)]
        outputs = self.llm.generate(requests, self._sampling(g, greedy, max_new_tokens, temperature, top_p),
                                    use_tqdm=False)
        rows = [list(c.token_ids) for out in outputs for c in out.outputs]         # P*G lists
        width = max(1, max(len(r) for r in rows))
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask = completion_mask(ids, self.tokenizer.eos_token_id)
        lengths = torch.tensor([max(1, len(r)) for r in rows])
        mask = mask * (torch.arange(width)[None] < lengths[:, None]).long()           # no pad past the end
        return Rollouts(ids, mask, decode_completions(self.tokenizer, ids, mask), g)

    def sync_weights(self, named_weights: Iterator[tuple[str, torch.Tensor]]) -> None:
        """Copy the policy's current weights (HF names) into the engine, in place."""
        self.wake()
        weights = list(named_weights)
        self.llm.apply_model(lambda model: model.load_weights(iter(weights)))
        self.llm.reset_prefix_cache()

    def sleep(self) -> None:
        """Release the KV cache and offload weights while the trainer uses the GPU."""
        if self.cfg.vllm_sleep and not self._asleep:
            self.llm.sleep(level=1)
            self._asleep = True

    def wake(self) -> None:
        """Restore memory before generation or a weight sync."""
        if self._asleep:
            self.llm.wake_up()
            self._asleep = False
