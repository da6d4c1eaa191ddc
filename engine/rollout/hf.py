"""Rollouts with HF `generate`: the CPU backend, and the fallback on GPUs without vLLM."""

from __future__ import annotations

import torch
import torch.distributed as dist
from transformers import PreTrainedModel

from videorft.engine.config import RolloutConfig
from videorft.engine.rollout.hf_sampling import NEUTRAL_SAMPLING, SampledTokenLogprobs, sampling_processors
from videorft.engine.rollout.types import (PromptSource, Rollouts, completion_mask, decode_completions,
                                            suppressed_token_ids)


class HFRollout:
    """Samples `group_size` completions per prompt from the live policy weights (no sync needed)."""

    name = "hf"

    def __init__(self, model: PreTrainedModel, tokenizer, cfg: RolloutConfig):
        self.model = model
        self.tokenizer = tokenizer
        self.cfg = cfg

    @torch.no_grad()
    def generate(self, prompts: PromptSource, group_size: int | None = None,
                 greedy: bool = False, max_new_tokens: int | None = None,
                 temperature: float | None = None, top_p: float | None = None) -> Rollouts:
        """G completions for each of the P prompts, rows grouped by prompt, with sampler log-probs."""
        prompt_inputs = {k: v.to(self.model.device) for k, v in prompts.model_inputs().items()}
        g = group_size or self.cfg.group_size
        width = prompt_inputs["input_ids"].shape[1]
        recorder = SampledTokenLogprobs(width)
        chain = sampling_processors(recorder, greedy, temperature or self.cfg.temperature, self.cfg.top_k,
                                    top_p or self.cfg.top_p)
        was_training = self.model.training
        self.model.eval()
        out = self.model.generate(
            **prompt_inputs, num_return_sequences=g, max_new_tokens=max_new_tokens or self.cfg.max_new_tokens,
            do_sample=not greedy, pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id, suppress_tokens=suppressed_token_ids(self.tokenizer),
            logits_processor=chain, use_cache=True, synced_gpus=_zero3_sharded(self.model), **NEUTRAL_SAMPLING)
        self.model.train(was_training)
        completion_ids = out[:, width:].cpu()                                   # [P*G, C]
        mask = completion_mask(completion_ids, self.tokenizer.eos_token_id)
        logprobs = torch.where(mask.bool(), recorder.finish(out).cpu(), 0.0)     # [P*G, C]
        return Rollouts(completion_ids, mask, decode_completions(self.tokenizer, completion_ids, mask), g,
                        logprobs=logprobs)

    def sync_weights(self, model: torch.nn.Module | None = None) -> None:
        """Nothing to do: HF generate samples from the training weights themselves."""

    def sleep(self) -> None:
        """Nothing to release."""

    def wake(self) -> None:
        """Nothing to restore."""


def _zero3_sharded(model: torch.nn.Module) -> bool:
    """True when DeepSpeed ZeRO-3 shards `model` over several ranks.

    Every forward then gathers parameters collectively, so all ranks must run the same number of
    decoding steps: generate keeps a rank that has finished decoding in step with the others
    (`synced_gpus`). transformers only turns that on by itself when the model was set up through
    its own DeepSpeed integration, which the trainers do not use.
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return False
    return hasattr(next(model.parameters()), "ds_id")
