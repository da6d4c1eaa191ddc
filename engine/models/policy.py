"""The policy as the trainers see it: backbone hidden states plus a loss head that owns lm_head.

The full [tokens x vocab] logits never exist: the backbone stops at the final norm, and the
fused kernels (videorft.kernels) take the hidden states and the lm_head weight directly. The
loss head holds the lm_head Parameter itself (shared, not copied), so ZeRO-3 gathers it when the
head runs. Each prompt's video goes through the vision tower once and its features are reused by
all G completions of the group (a completion differs from its siblings only in its suffix).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from videorft.kernels import fused_linear_grpo_loss, linear_logprob
from videorft.loaders.family import family_of

VISION_KEYS = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")


@dataclass
class GRPOLossSettings:
    """Scalars of the GRPO objective (see videorft.kernels.fused_linear_grpo_loss)."""

    beta: float = 0.04
    clip_low: float = 0.2
    clip_high: float = 0.2
    temperature: float = 1.0
    loss_agg: str = "seq-mean-token-mean"


class LossHead(nn.Module):
    """Holds the lm_head weight [V, H] and runs the fused log-prob / loss kernels on it."""

    def __init__(self, weight: nn.Parameter, backend: str):
        super().__init__()
        self.weight = weight
        self.backend = backend

    def forward(self, hidden: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None,
                advantages: torch.Tensor | None = None, old_logp: torch.Tensor | None = None,
                ref_logp: torch.Tensor | None = None, settings: GRPOLossSettings | None = None,
                entropy: bool = False):
        """hidden [B, C, H], targets [B, C] -> GRPO (loss, metrics) when `advantages` is given,
        else fp32 token log-probs [B, C] (and entropies [B, C] when `entropy`)."""
        if advantages is None:
            return linear_logprob(hidden, self.weight, targets,
                                  temperature=settings.temperature if settings else 1.0,
                                  backend=self.backend, return_entropy=entropy)
        s = settings or GRPOLossSettings()
        return fused_linear_grpo_loss(
            hidden, self.weight, targets, mask, advantages, old_logp=old_logp, ref_logp=ref_logp,
            beta=s.beta, clip_low=s.clip_low, clip_high=s.clip_high, temperature=s.temperature,
            loss_agg=s.loss_agg, backend=self.backend)


class PolicyModel(nn.Module):
    """A Qwen-VL ForConditionalGeneration model seen as backbone + fused loss head.

    `model` stays an ordinary transformers model (generate, save_pretrained, vLLM weight sync
    all use it); this wrapper only adds the fused paths.
    """

    def __init__(self, model: PreTrainedModel, kernel_backend: str = "auto"):
        super().__init__()
        self.model = model
        self.head = LossHead(model.lm_head.weight, kernel_backend)
        self.family = family_of(model.config)

    @property
    def config(self):
        """The transformers config of the wrapped model."""
        return self.model.config

    def encode_videos(self, pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor) -> ModelOutput:
        """The vision tower's output for the videos: pooler_output is a tuple of [tokens_k, H], one
        per grid row (Qwen3-VL adds deepstack_features, one such tuple per deepstack layer)."""
        return self.model.model.get_video_features(pixel_values_videos, video_grid_thw, return_dict=True)

    def hidden_states(self, inputs: dict[str, torch.Tensor], video_index: torch.Tensor | None = None
                      ) -> torch.Tensor:
        """Final-norm hidden states [B, T, H] of the backbone; the lm_head is not applied.

        inputs: input_ids [B, T], attention_mask [B, T], mm_token_type_ids [B, T] (always: without it
        Qwen2.5-VL silently loses its 3-D positions) and, per distinct video, pixel_values_videos
        [N, D], video_grid_thw [V, 3], second_per_grid_ts [V]. video_index [B] maps each row to its
        video when several rows share one (a GRPO group): the tower then runs once per video.
        """
        kwargs = {k: v for k, v in inputs.items() if k not in VISION_KEYS}
        if "mm_token_type_ids" not in kwargs:
            raise ValueError("mm_token_type_ids is required: without it Qwen2.5-VL drops M-RoPE")
        pixels = inputs.get("pixel_values_videos")
        if pixels is not None and pixels.numel() > 0:
            grid = inputs["video_grid_thw"]
            seconds = inputs.get("second_per_grid_ts")
            if video_index is not None:
                kwargs["mm_encoder_outputs"] = {"video": _rows_of(self.encode_videos(pixels, grid), video_index)}
                grid = grid[video_index]
                seconds = seconds[video_index] if seconds is not None else None
            else:
                kwargs["pixel_values_videos"] = pixels
            kwargs["video_grid_thw"] = grid
            if seconds is not None and self.family.takes_seconds:
                kwargs["second_per_grid_ts"] = seconds
        kwargs.setdefault("use_cache", False)
        return self.model.model(**kwargs).last_hidden_state

    def forward(self, inputs: dict[str, torch.Tensor], targets: torch.Tensor, target_start: int,
                video_index: torch.Tensor | None = None, **head_kwargs):
        """Run the backbone, then the loss head on the positions that predict `targets`.

        targets [B, C] are the tokens at columns target_start .. target_start+C-1 of input_ids, so
        the hidden states at target_start-1 .. target_start+C-2 predict them. head_kwargs go to
        LossHead (mask/advantages/old_logp/ref_logp/settings for the GRPO loss; none for log-probs).
        """
        hidden = self.hidden_states(inputs, video_index)                   # [B, T, H]
        c = targets.shape[1]
        hidden = hidden[:, target_start - 1:target_start - 1 + c]          # [B, C, H]
        return self.head(hidden, targets, **head_kwargs)


def _rows_of(features: ModelOutput, video_index: torch.Tensor) -> ModelOutput:
    """The vision output with its per-video entries repeated in row order (video_index [B]).

    pooler_output (and Qwen3-VL's deepstack_features, a list of such tuples) hold one entry per
    video; the rows that share a video share its tensors, so gradients from every row add up in
    one vision-tower backward.
    """
    picks = [int(k) for k in video_index]
    out = replace(features, pooler_output=tuple(features.pooler_output[k] for k in picks))
    if getattr(features, "deepstack_features", None) is not None:
        out.deepstack_features = [tuple(layer[k] for k in picks) for layer in features.deepstack_features]
    return out
