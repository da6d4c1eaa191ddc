"""The trainers' data: record splits -> VideoQADataset -> a resumable, rank-sharded batch stream.

Batch k of a run is a pure function of (run.seed, k, rank), so a resumed run starts exactly
where the interrupted one stopped (see ResumableSampler).
"""

from __future__ import annotations

from typing import Iterator

from videorft.engine.backends import Backends
from videorft.engine.config import RunConfig
from videorft.engine.rewards import check_solution
from videorft.engine.trainers.distributed import DistInfo
from videorft.engine.trainers.sampler import ResumableSampler
from videorft.engine.datasets import build_dataset, read_split
from videorft.loaders.collate import Batch
from videorft.loaders.dataloader import build_loader


def _stream(cfg: RunConfig, backends: Backends, tokenizer, model_config, info: DistInfo, mode: str, layout: str,
            batch_size: int, start_batch: int) -> Iterator[Batch]:
    records = read_split(cfg, "train", require_process=(mode == "sft"), validate=check_solution)
    dataset = build_dataset(cfg, backends, tokenizer, records, mode, model_config)
    sampler = ResumableSampler(len(dataset), seed=cfg.run.seed, rank=info.rank, world_size=info.world_size,
                               start=start_batch * batch_size)
    stream = build_loader(dataset, batch_size, layout, sampler=sampler, seed=cfg.run.seed + info.rank,
                          num_workers=cfg.data.num_workers,
                          prefetch=cfg.data.prefetch, loss_on=cfg.sft.loss_on)
    return iter(stream)


def build_prompt_loader(cfg: RunConfig, backends: Backends, tokenizer, model_config, info: DistInfo,
                        start_batch: int = 0) -> Iterator[Batch]:
    """Endless left-padded prompt batches of grpo.prompts_per_step, starting at batch `start_batch`."""
    return _stream(cfg, backends, tokenizer, model_config, info, "prompt", "prompt", cfg.grpo.prompts_per_step,
                   start_batch)


def build_sft_loader(cfg: RunConfig, backends: Backends, tokenizer, model_config, info: DistInfo,
                     start_batch: int = 0) -> Iterator[Batch]:
    """Endless padded SFT batches starting at micro-batch `start_batch` (the trainer packs them
    into one varlen row when sft.packing)."""
    return _stream(cfg, backends, tokenizer, model_config, info, "sft", "sft", cfg.sft.batch_size, start_batch)


def sft_steps_per_epoch(cfg: RunConfig, info: DistInfo) -> int:
    """Optimizer steps in one pass over the SFT records on this many ranks."""
    n = len(read_split(cfg, "train", require_process=True, validate=check_solution).records)
    per_step = cfg.sft.batch_size * cfg.sft.grad_accum * info.world_size
    return max(1, -(-n // per_step))
