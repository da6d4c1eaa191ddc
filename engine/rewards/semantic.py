"""The semantic-consistency reward R_s: how well a completion's reasoning describes the video.

A SigLIP encoder (any `SiglipModel` checkpoint in save_pretrained layout: the real
siglip-so400m-patch14-384 on GPU nodes, the project's tiny one on CPU) embeds the reasoning text
after its first sentence and the frames of the clip the policy saw. The reward is
min(1, w * max(cos, 0)) with w = 2 by default, SigLIP's logit scale and bias left out.

Pooling over frames, chosen by config:
- "mean-embedding" (paper): the cosine between the text and the mean of the normalised frame
  embeddings (cosine is scale-free, so the mean's length does not matter);
- "per-frame" (released code): the mean over frames of the per-frame clipped reward.

The video is embedded once per prompt (`embed_video`) and reused for all G completions
(`score`), whose texts are encoded in one batch on the encoder's device. Frames are the decoded
uint8 clip with its true colours (the released code fed SigLIP float frames that ToPILImage
scaled by 255 a second time).
"""

from __future__ import annotations

import re
from typing import Literal, Sequence

import numpy as np
import torch

from videorft.engine.rewards.frame_transform import FrameTransform
from videorft.engine.rewards.sentences import reasoning_span
from videorft.loaders.clip import VideoClip

Pooling = Literal["mean-embedding", "per-frame"]


_WORD = re.compile(r"\S+")


def head_words(text: str, count: int) -> str:
    """`text` cut after its first `count` whitespace-separated words (unchanged when shorter).

    Tokenizers never merge across whitespace, so each word gives at least one token and the
    first `count` tokens of the head equal those of the whole text: cutting first spares
    tokenizing hundreds of words only to truncate them to 64 tokens.
    """
    for i, match in enumerate(_WORD.finditer(text), start=1):
        if i == count:
            return text[:match.end()]
    return text


def sample_frame_indices(total: int, num_frames: int) -> torch.Tensor:
    """`num_frames` indices spread evenly over `total` frames (all of them when total <= num_frames)."""
    if total <= num_frames:
        return torch.arange(total)
    return torch.linspace(0, total - 1, num_frames).round().long()


class SemanticScorer:
    """SigLIP-based semantic-consistency reward for groups of completions about one video."""

    def __init__(self, encoder_path: str, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, weight: float = 2.0,
                 pooling: Pooling = "mean-embedding", num_frames: int = 16,
                 frame_preprocess: Literal["torch", "processor"] = "torch"):
        from transformers import AutoImageProcessor, AutoTokenizer, SiglipModel

        if weight <= 0:
            raise ValueError(f"rewards.semantic.weight must be positive, got {weight}")
        if pooling not in ("mean-embedding", "per-frame"):
            raise ValueError(f"rewards.semantic.pooling must be 'mean-embedding' or 'per-frame', got {pooling!r}")
        if num_frames < 1:
            raise ValueError(f"rewards.semantic.num_frames must be at least 1, got {num_frames}")
        self.device = torch.device(device)
        self.dtype = dtype
        self.weight = float(weight)
        self.pooling = pooling
        self.num_frames = num_frames
        self.frame_preprocess = frame_preprocess
        self.model = SiglipModel.from_pretrained(encoder_path, dtype=dtype).to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(encoder_path)
        self.image_processor = AutoImageProcessor.from_pretrained(encoder_path)
        self.transform = FrameTransform.from_image_processor(self.image_processor)
        text_limit = self.model.config.text_config.max_position_embeddings
        self.max_text_tokens = min(int(self.tokenizer.model_max_length), text_limit)

    def pixel_values(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 [F, H, W, 3] -> encoder pixel inputs [F, 3, S, S] on the encoder's device and dtype."""
        if self.frame_preprocess == "processor":
            images = list(frames.cpu().numpy().astype(np.uint8))
            out = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
            return out.to(self.device, self.dtype)
        return self.transform(frames.to(self.device), dtype=self.dtype)

    @torch.inference_mode()
    def embed_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Unit-norm fp32 embeddings [F, D] of uint8 frames [F, H, W, 3]."""
        feats = self.model.get_image_features(pixel_values=self.pixel_values(frames)).pooler_output  # [F, D]
        return torch.nn.functional.normalize(feats.float(), dim=-1)

    def embed_video(self, clip: VideoClip | torch.Tensor) -> torch.Tensor:
        """The clip's embedding: [D] for "mean-embedding" pooling, [F, D] (unit rows) for "per-frame".

        Takes a VideoClip or its uint8 frames [T, H, W, 3]; `num_frames` of them are spread
        evenly over the clip (all when it has fewer).
        """
        frames = clip.frames if isinstance(clip, VideoClip) else clip
        if frames.shape[0] == 0:
            raise ValueError("cannot embed a clip without frames")
        frames = frames[sample_frame_indices(frames.shape[0], self.num_frames).to(frames.device)]
        per_frame = self.embed_frames(frames)  # [F, D]
        if self.pooling == "per-frame":
            return per_frame
        return torch.nn.functional.normalize(per_frame.mean(dim=0), dim=-1)  # [D]

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit-norm fp32 embeddings [N, D]; each text is cut to the encoder's token limit.

        Texts are padded to that limit, as SigLIP's text tower was trained (it pools the last
        position), and encoded in one batch; only their first words are tokenized (`head_words`).
        """
        heads = [head_words(t, self.max_text_tokens + 1) for t in texts]
        ids = self.tokenizer(heads, padding="max_length", truncation=True,
                             max_length=self.max_text_tokens, return_tensors="pt")["input_ids"]
        feats = self.model.get_text_features(input_ids=ids.to(self.device)).pooler_output  # [N, D]
        return torch.nn.functional.normalize(feats.float(), dim=-1)

    def rewards_from_embeddings(self, text_emb: torch.Tensor, video_embedding: torch.Tensor) -> torch.Tensor:
        """fp32 rewards [N] from text embeddings [N, D] and a video embedding [D] or [F, D]."""
        video = video_embedding.to(text_emb.device, torch.float32)
        if video.dim() == 1:
            cos = text_emb @ torch.nn.functional.normalize(video, dim=-1)  # [N]
            return (self.weight * cos).clamp(0.0, 1.0)
        cos = text_emb @ video.t()  # [N, F]
        return (self.weight * cos).clamp(0.0, 1.0).mean(dim=-1)

    def score(self, texts: Sequence[str], video_embedding: torch.Tensor) -> list[float]:
        """Semantic reward in [0, 1] of each text (already the span to embed) against the video."""
        if len(texts) == 0:
            return []
        return self.rewards_from_embeddings(self.embed_texts(texts), video_embedding).tolist()

    def score_completions(self, completions: Sequence[str], video_embedding: torch.Tensor) -> list[float]:
        """`score` of each completion's reasoning after its first sentence (`reasoning_span`)."""
        return self.score([reasoning_span(c) for c in completions], video_embedding)
