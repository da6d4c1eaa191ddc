"""Build the datasets and loaders of a stage from its RunConfig, in one call each.

    records = read_split(cfg, "train", require_process=True, validate=check_solution)
    dataset = build_dataset(cfg, resolve_backends(cfg), tokenizer, records, mode="sft", model_config=model.config)
    stream = build_stream(cfg, dataset, batch_size=cfg.sft.batch_size, layout="sft", shuffle=True)
    for batch in stream: ...          # stream.skipped counts unreadable media

The model's own config fixes the prompt layout family (qwen2_vl / qwen2_5_vl / qwen3_vl) and
the patch geometry, so the data always matches the model it feeds.
"""

from __future__ import annotations

from typing import Literal, Optional

from videorft.engine.backends import Backends
from videorft.engine.config import RunConfig
from videorft.loaders.dataloader import DataStream, Layout, build_loader
from videorft.loaders.dataset import VideoQADataset
from videorft.loaders.family import family_named, family_of
from videorft.loaders.records import RecordSet, SolutionCheck, read_records


def read_split(cfg: RunConfig, split: Literal["train", "eval"], require_process: bool = False,
               validate: Optional[SolutionCheck] = None) -> RecordSet:
    """Records of data.train_file or data.eval_file, with data.on_bad_record and data.max_samples.

    validate: the scorer's solution check (the engine passes its rewards' check_solution), so a
    record that could not be scored is rejected now rather than in the middle of a run.
    """
    path = cfg.data.train_file if split == "train" else cfg.data.eval_file
    if not path:
        raise ValueError(f"data.{split}_file is empty; point it at a JSON or JSONL record file")
    return read_records(path, cfg.data.on_bad_record, cfg.data.max_samples, require_process, validate)


def build_dataset(cfg: RunConfig, backends: Backends, tokenizer, records: RecordSet, mode: Literal["prompt", "sft"],
                  model_config=None) -> VideoQADataset:
    """A VideoQADataset over `records` with cfg.video, cfg.data and the run's resolved video backends.

    model_config: the policy's transformers config (family and patch geometry are read from it);
    None means Qwen2.5-VL's. SFT datasets drop samples longer than sft.max_length.
    """
    family = family_of(model_config) if model_config is not None else family_named("qwen2_5_vl")
    max_length: Optional[int] = cfg.sft.max_length if mode == "sft" else None
    return VideoQADataset(records.records, tokenizer, cfg.video, cfg.data, mode, family=family, max_length=max_length,
                          video_decoder=backends.video_decoder, decoder_fallback=backends.video_decoder_fallback,
                          preprocess=backends.video_preprocess)


def build_stream(cfg: RunConfig, dataset: VideoQADataset, batch_size: int, layout: Layout,
                 shuffle: bool = False, drop_last: bool = False) -> DataStream:
    """A DataStream with data.num_workers / data.prefetch, run.seed and sft.loss_on."""
    return build_loader(dataset, batch_size, layout, shuffle=shuffle, seed=cfg.run.seed,
                        num_workers=cfg.data.num_workers, prefetch=cfg.data.prefetch, drop_last=drop_last,
                        loss_on=cfg.sft.loss_on)
