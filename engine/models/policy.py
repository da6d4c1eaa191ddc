"""The policy as the trainers see it: backbone hidden states plus a loss head that owns lm_head.

The full [tokens x vocab] logits never exist: the backbone stops at the final norm, and the
fused kernels (videorft.kernels) take the hidden states and the lm_head weight directly. The
loss head holds the lm_head Parameter itself (shared, not copied), so ZeRO-3 gathers it when the
head runs. Each prompt's video goes through the vision tower once and its features are reused by
all G completions of the group (a completion differs from its siblings only in its suffix).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from videorft.engine.models.attention import VARLEN_ATTENTION, attention_of
from videorft.engine.models.frozen_vision import MediaFeatures
from videorft.engine.models.prefix_sharing import SharedPrefixBatch
from videorft.kernels import fused_linear_grpo_loss, linear_logprob
from videorft.loaders.family import family_of

VISION_KEYS = ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts")


@dataclass
class GRPOLossInputs:
    """Per-row tensors of the GRPO objective and its scalar options, for one micro-batch."""

    mask: torch.Tensor
    """float [B, C]: 1 on completion tokens that count in the loss."""
    advantages: torch.Tensor
    """float [B]: group-relative advantage of each completion."""
    old_logp: torch.Tensor | None = None
    """float [B, C] behaviour-policy log-probs (None: on-policy)."""
    ref_logp: torch.Tensor | None = None
    """float [B, C] reference log-probs for the KL term (None: no KL)."""
    rollout_logp: torch.Tensor | None = None
    """float [B, C] the sampler's log-probs, for the sampler-vs-trainer correction (options rollout_is)."""
    num_tokens: torch.Tensor | None = None
    """0-d divisor of the "token-mean" aggregation (the step's token count, see grpo_step)."""
    options: dict = field(default_factory=dict)
    """Scalar options of videorft.kernels.fused_linear_grpo_loss (beta, clip_low, clip_high,
    temperature, loss_agg, ...), derived once per run from the GRPO settings."""


class LossHead(nn.Module):
    """Holds the lm_head weight [V, H] and runs the fused log-prob / loss kernels on it."""

    def __init__(self, weight: nn.Parameter, backend: str):
        super().__init__()
        self.weight = weight
        self.backend = backend

    def forward(self, hidden: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None,
                temperature: float = 1.0, grpo: GRPOLossInputs | None = None):
        """hidden [B, C, H], targets [B, C] -> log-probs [B, C], or (loss, metrics) with `grpo`.

        Called as a module (not through its methods) so that ZeRO-3 gathers the lm_head weight,
        which this module shares with the model's own (never run) lm_head.
        """
        if grpo is not None:
            return self._grpo_loss(hidden, targets, grpo)
        return self._logprobs(hidden, targets, mask, temperature)

    def _logprobs(self, hidden: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None,
                  temperature: float) -> torch.Tensor:
        """fp32 log-probs [B, C]. With `mask` [B, C] the head runs on the masked-in positions only
        (the others are padding or prompt, and get log-prob 0): the [V x H] GEMM is the costliest
        part of the head."""
        if mask is None:
            return linear_logprob(hidden, self.weight, targets, temperature=temperature, backend=self.backend)
        keep = mask.reshape(-1) > 0                                             # [B*C]
        picked = linear_logprob(hidden.reshape(-1, hidden.shape[-1])[keep], self.weight,
                                targets.reshape(-1)[keep], temperature=temperature, backend=self.backend)  # [N]
        out = torch.zeros(keep.shape, dtype=picked.dtype, device=picked.device)
        return out.masked_scatter(keep, picked).view(targets.shape)

    def _grpo_loss(self, hidden: torch.Tensor, targets: torch.Tensor, grpo: GRPOLossInputs):
        """(loss, metrics) of the fused lm_head + GRPO loss."""
        return fused_linear_grpo_loss(hidden, self.weight, targets, grpo.mask, grpo.advantages,
                                      old_logp=grpo.old_logp, ref_logp=grpo.ref_logp, rollout_logp=grpo.rollout_logp,
                                      num_tokens=grpo.num_tokens, backend=self.backend, **grpo.options)


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

    def hidden_states(self, inputs: dict[str, torch.Tensor], video_index: torch.Tensor | None = None,
                      features: MediaFeatures | None = None) -> torch.Tensor:
        """Final-norm hidden states [B, T, H] of the backbone; the lm_head is not applied.

        inputs: input_ids [B, T], attention_mask [B, T], mm_token_type_ids [B, T] (always: without it
        Qwen2.5-VL silently loses its 3-D positions) and, per distinct video, pixel_values_videos
        [N, D], video_grid_thw [V, 3], second_per_grid_ts [V]. video_index [B] maps each row to its
        video when several rows share one (a GRPO group): the tower then runs once per video.
        features: the media already encoded by a frozen tower (engine/models/frozen_vision.py), in
        place of the pixel inputs.
        """
        kwargs = {k: v for k, v in inputs.items() if k not in VISION_KEYS}
        if "mm_token_type_ids" not in kwargs:
            raise ValueError("mm_token_type_ids is required: without it Qwen2.5-VL drops M-RoPE")
        pixels = inputs.get("pixel_values_videos")
        if features is not None:
            kwargs["mm_encoder_outputs"] = features.encoder_outputs(video_index)
            has_videos = bool(features.videos)
        else:
            has_videos = pixels is not None and pixels.numel() > 0
        if has_videos:
            grid = inputs["video_grid_thw"]                                    # [V, 3]
            seconds = inputs.get("second_per_grid_ts")                         # [V]
            if features is None and video_index is None:
                kwargs["pixel_values_videos"] = pixels
            elif features is None:                                             # the tower once per video
                kwargs["mm_encoder_outputs"] = {"video": _rows_of(self.encode_videos(pixels, grid), video_index)}
            if video_index is not None:                                        # one grid row per batch row
                grid = grid[video_index]
                seconds = seconds[video_index] if seconds is not None else None
            kwargs["video_grid_thw"] = grid
            if seconds is not None and self.family.takes_seconds:
                kwargs["second_per_grid_ts"] = seconds
        kwargs.setdefault("use_cache", False)
        return self.model.model(**kwargs).last_hidden_state

    def shared_prefix_states(self, shared: SharedPrefixBatch) -> torch.Tensor:
        """Hidden states [1, T, H] of a shared-prefix row (engine/models/prefix_sharing.py).

        The media of each prompt go through the vision tower once; the language model runs the row
        with the engine's attention, which reads the layout (each prompt once, every completion
        attending to its prompt and itself).
        """
        implementation = attention_of(self.model).get("text_config", attention_of(self.model)[""])
        if implementation != VARLEN_ATTENTION:
            raise ValueError(f"prefix sharing needs the language model on attention {VARLEN_ATTENTION!r}, "
                             f"not {implementation!r} (model.attention)")
        inputs = shared.inputs
        encoder = shared.features.encoder_outputs() if shared.features is not None else {}
        if "pixel_values_videos" in inputs:
            encoder["video"] = self.encode_videos(inputs["pixel_values_videos"], inputs["video_grid_thw"])
        if "pixel_values" in inputs:
            encoder["image"] = self.model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"],
                                                                   return_dict=True)
        return self.model.model(input_ids=inputs["input_ids"], position_ids=inputs["position_ids"],
                                mm_token_type_ids=inputs["mm_token_type_ids"], mm_encoder_outputs=encoder,
                                use_cache=False, prefix_layout=shared.layout).last_hidden_state

    def forward(self, inputs: dict[str, torch.Tensor] | None, targets: torch.Tensor, target_start: int = 1,
                video_index: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                temperature: float = 1.0, grpo: GRPOLossInputs | None = None,
                shared: SharedPrefixBatch | None = None, features: MediaFeatures | None = None):
        """Run the backbone, then the loss head on the positions that predict `targets`.

        targets [B, C] are the tokens at columns target_start .. target_start+C-1 of input_ids, so
        the hidden states at target_start-1 .. target_start+C-2 predict them; with `shared` (a
        shared-prefix row of whole GRPO groups; `inputs` unused) they are its completions, predicted
        from the positions `shared.predictors`. Without `grpo` it returns fp32 log-probs [B, C] at
        `temperature` (0 where `mask` [B, C] is 0, computed only where it is 1); with `grpo` the
        fused GRPO (loss, metrics); `features`: media encoded by a frozen tower, in place of the
        pixels of `inputs` (a shared row carries its own). One entry point, so that a DeepSpeed engine wrapping this module
        runs every path through its own forward.
        """
        if shared is not None:
            hidden = self.shared_prefix_states(shared)[0, shared.predictors]      # [B, C, H]
        else:
            hidden = self.hidden_states(inputs, video_index, features)         # [B, T, H]
            c = targets.shape[1]
            hidden = hidden[:, target_start - 1:target_start - 1 + c]          # [B, C, H]
        return self.head(hidden, targets, mask, temperature, grpo)


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
