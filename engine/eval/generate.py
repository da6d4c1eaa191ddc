"""Generating an evaluation's completions for one rank's share of the records.

HF generate (the CPU backend) answers batches of eval.batch_size padded prompts, greedily. vLLM
loads the checkpoint itself, so the HF model is never loaded next to it (only the tokenizer and
the model config, which fix the prompt layout); the data loader decodes one clip at a time ahead
of it and eval.batch_size prompts go to each generate call, where vLLM's continuous batching
keeps the GPU busy. vLLM samples with eval.temperature and eval.top_p, as VideoRFT's evaluation
did (0.1 and 0.001: near-greedy).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

import torch

from videorft.engine.backends import Backends
from videorft.engine.config import EvalConfig, RunConfig
from videorft.engine.eval.predictions import PredictionSink
from videorft.engine.models.loading import load_model_and_tokenizer
from videorft.engine.rewards import SemanticScorer, reasoning_span
from videorft.engine.rollout import build_rollout
from videorft.engine.datasets import build_dataset
from videorft.loaders.collate import PromptBatch
from videorft.loaders.dataloader import DataStream, build_loader
from videorft.loaders.records import Record, RecordSet

log = logging.getLogger("videorft")


@dataclass(frozen=True)
class Decoding:
    """How completions are decoded (written into eval.json)."""

    backend: str
    """Rollout engine: "hf" or "vllm"."""
    greedy: bool
    """Argmax decoding (HF always; vLLM when eval.temperature is 0)."""
    temperature: float
    """vLLM sampling temperature (unused when greedy)."""
    top_p: float
    """vLLM nucleus threshold (unused when greedy)."""
    max_new_tokens: int
    """Longest completion."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decoding_for(cfg: EvalConfig, backend: str) -> Decoding:
    """The decoding of `backend` under eval.temperature / eval.top_p (see the module doc)."""
    greedy = backend != "vllm" or cfg.temperature <= 0
    return Decoding(backend, greedy, cfg.temperature, cfg.top_p, cfg.max_new_tokens)


def load_policy(cfg: RunConfig, backends: Backends, device: torch.device):
    """(model or None, tokenizer, model config). With vLLM only the tokenizer and config are read."""
    if backends.rollout != "vllm":
        model, tokenizer = load_model_and_tokenizer(cfg.model, device, backends.attention, seed=cfg.run.seed)
        return model, tokenizer, model.config
    if cfg.model.source != "pretrained" or not cfg.model.path:
        raise ValueError("rollout.backend vllm evaluates a saved checkpoint: set model.source: pretrained and "
                         "model.path")
    from transformers import AutoConfig, AutoTokenizer

    return None, AutoTokenizer.from_pretrained(cfg.model.path), AutoConfig.from_pretrained(cfg.model.path)


def _vllm_chunks(stream: DataStream, size: int) -> Iterator[PromptBatch]:
    """Samples decoded one at a time, handed on `size` at a time without their patch rows (vLLM
    preprocesses the decoded frames itself, and a few hundred clips of patch rows would not fit)."""
    chunk = []
    for batch in stream:
        for sample in batch.samples:
            sample.pixel_values = sample.pixel_values[:0]
            chunk.append(sample)
        if len(chunk) >= size:
            yield PromptBatch(chunk, [])
            chunk = []
    if chunk:
        yield PromptBatch(chunk, [])


_DONE = object()


def one_ahead(batches: Iterable[PromptBatch]) -> Iterator[PromptBatch]:
    """`batches`, with the next one assembled in a background thread while the caller works on the
    current one (vLLM generates a chunk while the data loader decodes the next). An error raised while
    assembling is raised here, in the caller's thread."""
    slot: queue.Queue = queue.Queue(maxsize=1)

    def fill() -> None:
        try:
            for batch in batches:
                slot.put(batch)
            slot.put(_DONE)
        except BaseException as err:                       # handed to the consumer below
            slot.put(err)

    threading.Thread(target=fill, name="eval-prefetch", daemon=True).start()
    while (item := slot.get()) is not _DONE:
        if isinstance(item, BaseException):
            raise item
        yield item


def prompt_batches(cfg: RunConfig, dataset, backend: str) -> tuple[DataStream, Iterable[PromptBatch], int]:
    """(stream, the batches to generate for, their number)."""
    n = len(dataset)
    if backend != "vllm":
        stream = build_loader(dataset, cfg.eval.batch_size, "prompt", num_workers=cfg.data.num_workers,
                              prefetch=cfg.data.prefetch)
        return stream, stream, len(stream)
    stream = build_loader(dataset, 1, "prompt", num_workers=cfg.data.num_workers, prefetch=cfg.data.prefetch)
    return stream, one_ahead(_vllm_chunks(stream, cfg.eval.batch_size)), -(-n // cfg.eval.batch_size)


def semantic_scorer(cfg: RunConfig, device: torch.device) -> Optional[SemanticScorer]:
    """The reward encoder when rewards.semantic.encoder_path is set (scores reasoning against the clip)."""
    s = cfg.rewards.semantic
    if not s.encoder_path:
        return None
    return SemanticScorer(s.encoder_path, device=device, weight=s.weight, pooling=s.pooling, num_frames=s.num_frames)


def generate_shard(cfg: RunConfig, backends: Backends, device: torch.device, records: list[Record],
                   sink: PredictionSink, progress: Callable[..., Iterable]) -> int:
    """Answer `records` and append each completion to `sink`; returns how many had unreadable media."""
    model, tokenizer, model_config = load_policy(cfg, backends, device)
    dataset = build_dataset(cfg, backends, tokenizer, RecordSet(records=records), "prompt", model_config)
    stream, batches, total = prompt_batches(cfg, dataset, backends.rollout)
    rollout = build_rollout(backends.rollout, model, tokenizer, cfg.rollout, model_path=cfg.model.path,
                            dtype=cfg.model.dtype, seed=cfg.run.seed, video=cfg.video)
    decoding = decoding_for(cfg.eval, backends.rollout)
    if decoding.backend != "vllm":
        log.info("HF generate decodes greedily (eval.temperature %g and top_p %g apply to vLLM; with top_p "
                 "0.001 near-greedy sampling keeps only the most likely token anyway)", cfg.eval.temperature,
                 cfg.eval.top_p)
    semantic = semantic_scorer(cfg, device)
    for batch in progress(batches, total=total, desc="eval"):
        out = rollout.generate(batch, group_size=1, greedy=decoding.greedy, max_new_tokens=decoding.max_new_tokens,
                               temperature=decoding.temperature, top_p=decoding.top_p)
        for text, sample in zip(out.texts, batch.samples):
            score = None
            if semantic is not None:
                score = semantic.score([reasoning_span(text)], semantic.embed_video(sample.clip))[0]
            sink.write(str(sample.record.problem_id), text, score)
        sink.flush()
    return stream.skipped
