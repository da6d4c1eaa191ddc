"""Rollouts with HF `generate`: the CPU backend, and the fallback on GPUs without vLLM."""

from __future__ import annotations

import torch
import torch.distributed as dist
from transformers import PreTrainedModel

from videorft.engine.config import RolloutConfig
from videorft.engine.models.frozen_vision import MediaFeatures, without_pixels
from videorft.engine.rollout.hf_sampling import NEUTRAL_SAMPLING, SampledTokenLogprobs, sampling_processors
from videorft.engine.rollout.types import (PromptSource, Rollouts, completion_mask, decode_completions,
                                            suppressed_token_ids)


PER_TOKEN = ("input_ids", "attention_mask", "mm_token_type_ids")
"""Prompt inputs with one entry per token (the others are per video or image)."""


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
                 temperature: float | None = None, top_p: float | None = None,
                 features: MediaFeatures | None = None) -> Rollouts:
        """G completions for each of the P prompts, rows grouped by prompt, with sampler log-probs.

        features: the prompts' media already encoded by the frozen vision tower; the tower then
        does not run here.
        """
        inputs = prompts.model_inputs() if features is None else without_pixels(prompts.model_inputs())
        prompt_inputs = {k: v.to(self.model.device) for k, v in inputs.items()}     # no pixels copied for nothing
        if features is not None:
            prompt_inputs["mm_encoder_outputs"] = features.encoder_outputs()
        g = group_size or self.cfg.group_size
        width = prompt_inputs["input_ids"].shape[1]
        recorder = SampledTokenLogprobs(width)
        chain = sampling_processors(recorder, greedy, temperature or self.cfg.temperature, self.cfg.top_k,
                                    top_p or self.cfg.top_p)
        was_training = self.model.training
        self.model.eval()
        if self.cfg.prefill_once and g > 1 and width > 1:
            prompt_inputs = self._prefilled(prompt_inputs, g)          # the G rows share one prompt pass
            repeats = 1
        else:
            repeats = g
        out = self.model.generate(
            **prompt_inputs, num_return_sequences=repeats, max_new_tokens=max_new_tokens or self.cfg.max_new_tokens,
            min_new_tokens=self.cfg.min_new_tokens, do_sample=not greedy, pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id, suppress_tokens=suppressed_token_ids(self.tokenizer),
            logits_processor=chain, use_cache=True, synced_gpus=_zero3_sharded(self.model), **NEUTRAL_SAMPLING)
        self.model.train(was_training)
        completion_ids = out[:, width:].cpu()                                   # [P*G, C]
        mask = completion_mask(completion_ids, self.tokenizer.eos_token_id)
        logprobs = torch.where(mask.bool(), recorder.finish(out).cpu(), 0.0)     # [P*G, C]
        return Rollouts(completion_ids, mask, decode_completions(self.tokenizer, completion_ids, mask), g,
                        logprobs=logprobs)

    def _prefilled(self, inputs: dict[str, torch.Tensor], group_size: int) -> dict[str, torch.Tensor]:
        """generate() inputs for P*G rows whose cache already holds each prompt, run once.

        The P prompts but their last token go through the model once (media included); the cache is
        repeated G times along the batch, and generate starts from the last prompt token of each of
        the P*G rows. The prefill leaves each prompt's M-RoPE offset in the model's `rope_deltas`
        (the state a Qwen-VL model keeps between its generation steps); it is repeated per row like
        the cache, so every row decodes at the positions a G-fold prefill gives it.
        """
        head = {k: (v[:, :-1] if k in PER_TOKEN else v) for k, v in inputs.items()}       # [P, L-1] text
        cache = self.model(**head, use_cache=True, logits_to_keep=1).past_key_values
        cache.batch_repeat_interleave(group_size)
        backbone = self.model.model
        if getattr(backbone, "rope_deltas", None) is not None:
            backbone.rope_deltas = backbone.rope_deltas.repeat_interleave(group_size, dim=0)   # [P*G, 1]
        return {"input_ids": inputs["input_ids"].repeat_interleave(group_size, dim=0),
                "attention_mask": inputs["attention_mask"].repeat_interleave(group_size, dim=0),
                "past_key_values": cache}

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
