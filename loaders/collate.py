"""Collate samples into model batches: left-padded prompts or padded SFT rows.

Every batch carries the model inputs (input_ids, attention_mask, mm_token_type_ids and the
vision tensors in sample order) and what trainers and rewards need besides: the records, the
decoded clips, prompt texts, solutions and problem types, and the samples that were skipped.

Labels follow the Hugging Face convention: labels[b, t] is the token at position t (-100 where
no loss is taken); the model predicts it from positions < t. Vision placeholder tokens are
never trained on; prompts are masked unless loss_on is "all".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Sequence

import torch

from videorft.loaders.dataset import Sample, SkippedSample
from videorft.loaders.qwen_inputs import IMAGE_PAD, VIDEO_PAD, VISION_END, VISION_START, left_pad, token_type_ids

IGNORE = -100
"""Label of positions without loss."""


@dataclass(frozen=True)
class SpecialIds:
    """Token ids the collators need."""

    pad: int
    image: int
    video: int
    vision_start: int
    vision_end: int

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "SpecialIds":
        """Look the ids up in a Qwen-VL tokenizer."""
        ids = tokenizer.convert_tokens_to_ids([IMAGE_PAD, VIDEO_PAD, VISION_START, VISION_END])
        if tokenizer.pad_token_id is None or any(i is None or i == tokenizer.unk_token_id for i in ids):
            raise ValueError("the tokenizer lacks a pad token or Qwen-VL vision tokens")
        return cls(tokenizer.pad_token_id, *ids)

    @property
    def vision(self) -> tuple[int, ...]:
        return (self.image, self.video, self.vision_start, self.vision_end)


@dataclass
class Batch:
    """Samples collated for the model; see the subclasses for the layout of the token tensors."""

    samples: list[Sample]
    skipped: list[SkippedSample]
    input_ids: Optional[torch.Tensor] = None
    """long [B, T]."""
    attention_mask: Optional[torch.Tensor] = None
    """long [B, T]: 1 on real tokens."""
    mm_token_type_ids: Optional[torch.Tensor] = None
    """long [B, T]: 0 text, 1 image pad, 2 video pad (Qwen2.5-VL needs it for M-RoPE)."""
    vision: dict[str, torch.Tensor] = field(default_factory=dict)
    """pixel_values_videos [Nv, D], video_grid_thw [V, 3], second_per_grid_ts [V] (Qwen2.5-VL only),
    pixel_values [Ni, D], image_grid_thw [I, 3]: whichever the batch has, in sample order."""

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def decode_seconds(self) -> float:
        """Media decoding time of the batch's samples (spent in data-loader workers)."""
        return sum(s.decode_seconds for s in self.samples)

    @property
    def preprocess_seconds(self) -> float:
        """Resize/normalise/patchify time of the batch's samples."""
        return sum(s.preprocess_seconds for s in self.samples)

    @property
    def records(self):
        return [s.record for s in self.samples]

    @property
    def clips(self):
        """The decoded clips, one per sample (the frames the rewards score against)."""
        return [s.clip for s in self.samples]

    @property
    def prompt_texts(self) -> list[str]:
        return [s.prompt_text for s in self.samples]

    @property
    def solutions(self) -> list[str]:
        return [s.record.solution for s in self.samples]

    @property
    def problem_types(self) -> list[str]:
        return [s.record.problem_type for s in self.samples]

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments for a Qwen-VL forward or generate call."""
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "mm_token_type_ids": self.mm_token_type_ids, **self.vision}

    def to(self, device: torch.device | str) -> "Batch":
        """Move every tensor field (not the clips) to `device`; returns self."""
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(device, non_blocking=True))
        self.vision = {k: v.to(device, non_blocking=True) for k, v in self.vision.items()}
        return self


@dataclass
class PromptBatch(Batch):
    """Prompts left-padded to a common length, ready for generation."""

    prompt_lengths: Optional[torch.Tensor] = None
    """long [B]: real tokens per prompt."""


@dataclass
class SFTBatch(Batch):
    """Prompt + target rows, right-padded, with labels."""

    labels: Optional[torch.Tensor] = None
    """long [B, T]: target tokens, IGNORE elsewhere."""


def vision_tensors(samples: Sequence[Sample]) -> dict[str, torch.Tensor]:
    """Concatenate the vision inputs of the samples, videos and images separately, in order."""
    videos = [s for s in samples if s.is_video]
    images = [s for s in samples if not s.is_video]
    out = {}
    if videos:
        out["pixel_values_videos"] = torch.cat([s.pixel_values for s in videos])          # [Nv, D]
        out["video_grid_thw"] = torch.stack([s.grid_thw for s in videos])                  # [V, 3]
        if all(s.second_per_grid_t is not None for s in videos):     # only families whose forward takes it
            out["second_per_grid_ts"] = torch.tensor([s.second_per_grid_t for s in videos], dtype=torch.float32)
    if images:
        out["pixel_values"] = torch.cat([s.pixel_values for s in images])                  # [Ni, D]
        out["image_grid_thw"] = torch.stack([s.grid_thw for s in images])                  # [I, 3]
    return out


def sequence_labels(sample: Sample, ids: SpecialIds, loss_on: Literal["response", "all"] = "response"
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens [P+R], labels [P+R]) of one SFT sample; vision tokens always get IGNORE."""
    if sample.response_ids is None:
        raise ValueError(f"sample {sample.index} has no target tokens (dataset mode must be 'sft')")
    tokens = torch.cat([sample.prompt_ids, sample.response_ids])
    if loss_on == "response":
        labels = torch.cat([torch.full_like(sample.prompt_ids, IGNORE), sample.response_ids])
    elif loss_on == "all":
        labels = tokens.clone()
    else:
        raise ValueError(f"sft.loss_on must be 'response' or 'all', got {loss_on!r}")
    labels[torch.isin(tokens, torch.tensor(ids.vision))] = IGNORE
    return tokens, labels


def split_skipped(items: Sequence[Sample | SkippedSample]) -> tuple[list[Sample], list[SkippedSample]]:
    """Separate usable samples from skipped ones."""
    return ([x for x in items if isinstance(x, Sample)], [x for x in items if isinstance(x, SkippedSample)])


def collate_prompts(items: Sequence[Sample | SkippedSample], ids: SpecialIds) -> PromptBatch:
    """Left-padded prompt batch (generation continues every row at the same column)."""
    samples, skipped = split_skipped(items)
    if not samples:
        return PromptBatch(samples, skipped)
    input_ids, mask = left_pad([s.prompt_ids for s in samples], ids.pad)                     # [B, T]
    return PromptBatch(samples, skipped, input_ids, mask, token_type_ids(input_ids, ids.image, ids.video),
                       vision_tensors(samples), prompt_lengths=mask.sum(1))


def collate_sft(items: Sequence[Sample | SkippedSample], ids: SpecialIds,
                loss_on: Literal["response", "all"] = "response") -> SFTBatch:
    """Right-padded prompt + target rows with labels."""
    samples, skipped = split_skipped(items)
    if not samples:
        return SFTBatch(samples, skipped)
    pairs = [sequence_labels(s, ids, loss_on) for s in samples]
    width = max(int(t.numel()) for t, _ in pairs)
    input_ids = torch.full((len(pairs), width), ids.pad, dtype=torch.long)                   # [B, T]
    labels = torch.full((len(pairs), width), IGNORE, dtype=torch.long)                       # [B, T]
    mask = torch.zeros((len(pairs), width), dtype=torch.long)                                # [B, T]
    for b, (tokens, lab) in enumerate(pairs):
        n = tokens.numel()
        input_ids[b, :n], labels[b, :n], mask[b, :n] = tokens, lab, 1
    return SFTBatch(samples, skipped, input_ids, mask, token_type_ids(input_ids, ids.image, ids.video),
                    vision_tensors(samples), labels=labels)
