"""HF generate's sampling chain, made explicit so the sampler's log-probs can be read off it.

transformers appends its own temperature / top-k / top-p warpers after any processor passed to
`generate`, so a processor that wants to see the final distribution must bring the warpers
itself. `sampling_processors` builds [temperature, top-k, top-p, recorder] in vLLM's order
(logit bias / suppression first, then temperature, then top-k and top-p); generate is then called
with temperature 1, top_k 0 and top_p 1 so that it adds no warper of its own.

The recorder keeps one step's log-softmax of the processed scores ([N, V], float32) and, at the
next step, reads the log-prob of the token that was sampled from it (the last column of
input_ids). Memory stays at one [N, V] row block instead of C of them (`output_scores`).
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor, LogitsProcessorList
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper


class SampledTokenLogprobs(LogitsProcessor):
    """Last processor of the chain: records log p(sampled token) under the processed scores."""

    def __init__(self, prompt_width: int):
        self.prompt_width = prompt_width
        self._columns: list[torch.Tensor] = []           # C tensors of [N]
        self._last: torch.Tensor | None = None          # [N, V]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._read_sampled(input_ids)
        self._last = torch.log_softmax(scores.float(), dim=-1)                  # [N, V]
        return scores

    def _read_sampled(self, input_ids: torch.Tensor) -> None:
        """Log-prob of the token appended since the last call (if any) under that call's scores."""
        if self._last is not None and input_ids.shape[1] > self.prompt_width + len(self._columns):
            self._columns.append(self._last.gather(1, input_ids[:, -1:]).squeeze(1))   # [N]
        self._last = None

    def finish(self, sequences: torch.Tensor) -> torch.Tensor:
        """float32 [N, C] for the C generated columns of `sequences` (prompt + completion)."""
        self._read_sampled(sequences)
        n, c = sequences.shape[0], sequences.shape[1] - self.prompt_width
        if len(self._columns) != c:
            raise RuntimeError(f"recorded {len(self._columns)} sampling steps for {c} generated tokens")
        if c == 0:
            return torch.zeros(n, 0)
        return torch.stack(self._columns, dim=1).float()                         # [N, C]


def sampling_processors(recorder: SampledTokenLogprobs, greedy: bool, temperature: float, top_k: int,
                        top_p: float) -> LogitsProcessorList:
    """The warpers of one rollout followed by the recorder (greedy: the recorder alone)."""
    chain = LogitsProcessorList()
    if not greedy:
        if temperature != 1.0:
            chain.append(TemperatureLogitsWarper(temperature))
        if top_k > 0:
            chain.append(TopKLogitsWarper(top_k=top_k))
        if top_p < 1.0:
            chain.append(TopPLogitsWarper(top_p=top_p))
    chain.append(recorder)
    return chain


NEUTRAL_SAMPLING = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "repetition_penalty": 1.0}
"""generate() settings that keep transformers from adding warpers or penalties of its own (the
checkpoint's generation_config.json, e.g. Qwen2.5-VL's repetition_penalty 1.05, would otherwise
apply; vLLM with explicit SamplingParams applies none of them either)."""
