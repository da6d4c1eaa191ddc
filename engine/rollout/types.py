"""What a rollout engine takes and returns, the engine contract, and the completion-mask rule.

Sampler log-probs: every engine reports, for each sampled token, its log-probability under the
distribution the token was actually drawn from: the logits after the suppression of vision
placeholders, divided by the temperature, with the top-k / top-p cut applied and renormalised
(vLLM's `logprobs_mode="processed_logprobs"`, which TRL and verl also request for their
importance-sampling corrections; HF generate's processed scores are the same quantity). It equals
the trainer's log-prob at the same temperature when top_p is 1 and top_k is 0, up to the mass of
the suppressed placeholders (zero for a trained model); with a nucleus cut it is larger by
-log(kept mass). Greedy decoding reports the untempered log-softmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from videorft.loaders.clip import VideoClip


class PromptSource(Protocol):
    """What a rollout engine needs of a prompt batch (the data loader's batch provides it)."""

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """Left-padded prompt ids, attention/type masks and video tensors for P prompts."""
    prompt_texts: list[str]
    """Chat-templated prompts with the video placeholder not yet expanded (for vLLM)."""
    clips: list[VideoClip]
    """The decoded clip of each prompt."""
    records: list
    """The record of each prompt (`data_type` says whether the clip is a video or one image)."""


@dataclass
class Rollouts:
    """G sampled completions for each of P prompts, rows grouped by prompt (p*G .. p*G+G-1)."""

    completion_ids: torch.Tensor
    """long [P*G, C]: sampled tokens, right-padded."""
    completion_mask: torch.Tensor
    """long [P*G, C]: 1 up to and including the first end-of-turn token, 0 after."""
    texts: list[str]
    """Decoded completions (special tokens removed), as the rewards read them."""
    group_size: int
    """G."""
    logprobs: torch.Tensor | None = None
    """float32 [P*G, C]: each sampled token's log-prob under the sampler (0 on padding), for the
    sampler-vs-trainer correction; None when the engine does not report it."""

    @property
    def lengths(self) -> torch.Tensor:
        """long [P*G]: completion tokens, the end-of-turn token included."""
        return self.completion_mask.sum(dim=1)


@runtime_checkable
class RolloutEngine(Protocol):
    """What the trainers need of a rollout engine (HF generate and colocated vLLM both satisfy it).

    Call order in GRPO: generate -> sleep -> (update) -> sync_weights(model) -> generate ...;
    sync_weights(model) also right after a resume, so the first rollout samples the resumed policy.
    """

    name: str
    """"hf" or "vllm"."""

    def generate(self, prompts: PromptSource, group_size: int | None = None, greedy: bool = False,
                 max_new_tokens: int | None = None, temperature: float | None = None,
                 top_p: float | None = None, features=None) -> Rollouts:
        """G completions for each of the P prompts, rows grouped by prompt, with sampler log-probs.

        features (engine/models/frozen_vision.MediaFeatures): the prompts' media already encoded
        by a frozen vision tower, for engines that run the training model (HF); an engine with its
        own copy of the weights (vLLM) encodes the pixels itself and ignores them."""

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Make the engine sample from `model`'s current weights (the plain transformers model,
        possibly ZeRO-3 partitioned; collective then). Safe to call at any time."""

    def sleep(self) -> None:
        """Release accelerator memory for the policy update (a no-op where nothing is held)."""

    def wake(self) -> None:
        """Undo sleep() (generate and sync_weights also do it themselves)."""


VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
"""Placeholders the model must never sample: in a completion they would be taken for media slots."""


def suppressed_token_ids(tokenizer) -> list[int]:
    """Ids of VISION_TOKENS that the tokenizer knows."""
    ids = [tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS]
    return [i for i in ids if i is not None and i != tokenizer.unk_token_id]


def completion_mask(completion_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """long [N, C]: ones through the first `eos_token_id` of each row (all ones if none)."""
    is_eos = completion_ids == eos_token_id                                 # [N, C]
    n, c = completion_ids.shape
    first = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1), torch.full((n,), c - 1))
    return (torch.arange(c).unsqueeze(0) <= first.unsqueeze(1)).long()


def decode_completions(tokenizer, completion_ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
    """Text of each completion's masked-in tokens, special tokens removed."""
    return [tokenizer.decode(row[m.bool()].tolist(), skip_special_tokens=True)
            for row, m in zip(completion_ids.cpu(), mask.cpu())]
