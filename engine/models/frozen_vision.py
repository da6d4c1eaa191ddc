"""A frozen vision tower (`grpo.freeze_vision`): each prompt's media encoded once per step.

With the tower frozen its output for a prompt does not change during a step, and the reference
model's tower (the same frozen weights) gives the same output too. So the step encodes each
prompt's video or image once, without gradient, before the rollout, and hands the features to
every pass that would otherwise run the tower again: HF generate, the old-policy and reference
log-probs and the update (forward and backward). The language model reads them through
transformers' `mm_encoder_outputs`, which Qwen2-VL, Qwen2.5-VL and Qwen3-VL all accept in place of
pixels.

Features travel beside the tensors they replace: a `MediaFeatures` holds one `Encoded` per video
(in the order of `video_grid_thw`) and one per image (in the order of `image_grid_thw`); the
pixel tensors are then left out of the model inputs, while the grids stay (positions need them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Sequence

import torch
from torch import nn

from videorft.loaders.qwen_inputs import IMAGE_TYPE, VIDEO_TYPE

PIXEL_KEYS = {"video": "pixel_values_videos", "image": "pixel_values"}
"""The pixel input each modality's features replace."""


@dataclass(frozen=True)
class Encoded:
    """The vision tower's output for one video or image."""

    tokens: torch.Tensor
    """[n, H]: the merged visual tokens the language model places at the medium's placeholders."""
    deepstack: tuple[torch.Tensor, ...] | None = None
    """Qwen3-VL: one [n, H] tensor per deepstack layer (None for the other families)."""


@dataclass(frozen=True)
class MediaFeatures:
    """Encoded media of a batch: videos and images, each in the order of its grid rows."""

    videos: tuple[Encoded, ...] = ()
    images: tuple[Encoded, ...] = ()
    prompt_video: tuple[int, ...] = field(default=())
    """Per prompt of the encoded batch: its index in `videos`, or -1 (lets groups be regrouped)."""
    prompt_image: tuple[int, ...] = field(default=())
    """Per prompt: its index in `images`, or -1."""

    def pick(self, videos: Sequence[int] = (), images: Sequence[int] = ()) -> "MediaFeatures":
        """The features of the given videos and images (indices may repeat), in that order."""
        return MediaFeatures(tuple(self.videos[int(v)] for v in videos), tuple(self.images[int(i)] for i in images))

    def of_prompts(self, prompts: Sequence[int]) -> "MediaFeatures":
        """The features of some of the encoded batch's prompts, as a batch of those prompts would hold them."""
        videos = [self.prompt_video[p] for p in prompts if self.prompt_video[p] >= 0]
        images = [self.prompt_image[p] for p in prompts if self.prompt_image[p] >= 0]
        return MediaFeatures(tuple(self.videos[v] for v in videos), tuple(self.images[i] for i in images),
                             _ordinals([self.prompt_video[p] >= 0 for p in prompts]),
                             _ordinals([self.prompt_image[p] >= 0 for p in prompts]))

    @staticmethod
    def join(parts: Sequence["MediaFeatures"]) -> "MediaFeatures":
        """The features of several batches' prompts, one batch after the other."""
        videos = tuple(v for part in parts for v in part.videos)
        images = tuple(i for part in parts for i in part.images)
        return MediaFeatures(videos, images,
                             _ordinals([v >= 0 for part in parts for v in part.prompt_video]),
                             _ordinals([i >= 0 for part in parts for i in part.prompt_image]))

    def encoder_outputs(self, video_index: torch.Tensor | None = None) -> dict[str, SimpleNamespace]:
        """transformers' `mm_encoder_outputs` for a forward or generate call.

        video_index [rows with a video]: which video each such row shows, when rows share videos
        (GRPO groups); None: the videos in order. Images are already one per image row.
        """
        videos = self.videos if video_index is None else self.pick(videos=video_index.tolist()).videos
        out = {}
        for modality, items in (("video", videos), ("image", self.images)):
            if items:
                out[modality] = _encoder_output(items)
        return out


def _ordinals(has: Sequence[bool]) -> tuple[int, ...]:
    """k for the k-th True, -1 for False."""
    out, k = [], 0
    for flag in has:
        out.append(k if flag else -1)
        k += int(flag)
    return tuple(out)


def _encoder_output(items: Sequence[Encoded]) -> SimpleNamespace:
    """What transformers reads from a vision output: pooler_output (one [n, H] per medium) and,
    for Qwen3-VL, deepstack_features (per layer, one [n, H] per medium)."""
    out = SimpleNamespace(pooler_output=tuple(e.tokens for e in items))
    if items[0].deepstack is not None:
        out.deepstack_features = [tuple(e.deepstack[layer] for e in items) for layer in range(len(items[0].deepstack))]
    return out


def freeze_vision_tower(model: nn.Module) -> None:
    """Stop training the vision tower of a Qwen-VL ForConditionalGeneration model (before the
    optimizer is built, so it holds no state for it)."""
    model.model.visual.requires_grad_(False)


@torch.no_grad()
def encode_media(model: nn.Module, inputs: dict[str, torch.Tensor]) -> MediaFeatures:
    """Encode the videos and images of a prompt batch's model inputs once, without gradient.

    model: a Qwen-VL ForConditionalGeneration; inputs: a batch's model_inputs() (pixel_values_videos
    [N, D] with video_grid_thw [V, 3]; pixel_values with image_grid_thw; mm_token_type_ids [P, L]).
    """
    backbone = model.model
    found = {}
    for modality, pixel_key in PIXEL_KEYS.items():
        pixels = inputs.get(pixel_key)
        if pixels is None or pixels.numel() == 0:
            found[modality] = ()
            continue
        encode = backbone.get_video_features if modality == "video" else backbone.get_image_features
        out = encode(pixels.to(model.device), inputs[f"{modality}_grid_thw"].to(model.device), return_dict=True)
        deepstack = getattr(out, "deepstack_features", None)
        found[modality] = tuple(
            Encoded(tokens, None if deepstack is None else tuple(layer[k] for layer in deepstack))
            for k, tokens in enumerate(out.pooler_output))
    types = inputs["mm_token_type_ids"]                                                     # [P, L]
    return MediaFeatures(found["video"], found["image"], _ordinals((types == VIDEO_TYPE).any(dim=1).tolist()),
                         _ordinals((types == IMAGE_TYPE).any(dim=1).tolist()))


def without_pixels(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Model inputs with the pixel tensors left out (their features are passed instead)."""
    return {k: v for k, v in inputs.items() if k not in PIXEL_KEYS.values()}
