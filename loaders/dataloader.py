"""A DataLoader over VideoQADataset that decodes ahead in workers and counts what it skips.

Workers (data.num_workers) decode and preprocess `prefetch` batches ahead of the trainer; the
collator turns their samples into a PromptBatch (rollouts, evaluation) or an SFTBatch (packing
into varlen rows happens in the trainer, engine/models/packing.py, which needs the model).
Samples whose media could not be read arrive as SkippedSample; `DataStream` counts them, logs
each one, drops batches left empty, and the run goes on.
"""

from __future__ import annotations

import logging
from typing import Iterator, Literal, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Sampler

from videorft.loaders.collate import Batch, SpecialIds, collate_prompts, collate_sft
from videorft.loaders.dataset import Sample, SkippedSample, VideoQADataset

log = logging.getLogger("videorft")

Layout = Literal["prompt", "sft"]


class Collator:
    """Picklable collate function for one batch layout (worker processes receive a copy)."""

    def __init__(self, ids: SpecialIds, layout: Layout, loss_on: Literal["response", "all"] = "response"):
        if layout not in ("prompt", "sft"):
            raise ValueError(f"layout must be 'prompt' or 'sft', got {layout!r}")
        self.ids, self.layout, self.loss_on = ids, layout, loss_on

    def __call__(self, items: Sequence[Sample | SkippedSample]) -> Batch:
        if self.layout == "prompt":
            return collate_prompts(items, self.ids)
        return collate_sft(items, self.ids, self.loss_on)


class DataStream:
    """Iterate batches; skipped samples are counted (`skipped`) and logged, empty batches dropped."""

    def __init__(self, loader: DataLoader):
        self.loader = loader
        self.skipped = 0
        """Samples skipped so far (unreadable media, over-long samples)."""
        self.reasons: list[str] = []
        """The first 100 skip messages, for the run summary."""

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        for batch in self.loader:
            for item in batch.skipped:
                self.skipped += 1
                message = f"{item.origin or item.index}: {item.reason}"
                if len(self.reasons) < 100:
                    self.reasons.append(message)
                log.warning("skipped sample %s (%d skipped so far)", message, self.skipped)
            if len(batch):
                yield batch


def _uses_the_gpu(dataset: VideoQADataset) -> bool:
    """Whether the dataset's resolved decoder or preprocessing path works on CUDA tensors."""
    from videorft.loaders.video import frames_device

    return frames_device(dataset.video_decoder).type == "cuda" or dataset.preprocess == "gpu"


def build_loader(dataset: VideoQADataset, batch_size: int, layout: Layout, *, shuffle: bool = False, seed: int = 0,
                 num_workers: int = 0, prefetch: int = 2, drop_last: bool = False,
                 loss_on: Literal["response", "all"] = "response", sampler: Optional[Sampler] = None) -> DataStream:
    """A DataStream of `layout` batches over `dataset` (num_workers/prefetch as in DataConfig).

    shuffle draws a new order each pass from a generator seeded with `seed`; a `sampler` (e.g. the
    trainers' resumable, rank-sharded one) replaces both. GPU decoding (DALI on CUDA) and GPU
    preprocessing run in the main process, since CUDA cannot be used from forked workers.
    """
    if num_workers > 0 and _uses_the_gpu(dataset):
        log.info("video decoder %s / preprocessing %s work on the GPU: decoding in the main process "
                 "(data.num_workers ignored)", dataset.video_decoder, dataset.preprocess)
        num_workers = 0
    # A private generator even when `sampler` orders the data: DataLoader draws its worker base seed
    # from it each time iteration starts, and drawing from the global RNG instead would shift the
    # training RNG stream (rollout sampling) by however late the loader first starts (a resume).
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, generator=generator,
                        sampler=sampler,
                        num_workers=num_workers, prefetch_factor=prefetch if num_workers > 0 else None,
                        persistent_workers=num_workers > 0, drop_last=drop_last,
                        collate_fn=Collator(SpecialIds.from_tokenizer(dataset.tokenizer), layout, loss_on))
    return DataStream(loader)
