"""`videorft eval`: answer a benchmark's records with a checkpoint (or rescore saved answers) and
write eval.json.

    videorft eval --config recipes/tiny/eval_base.yaml
    torchrun --nproc_per_node 8 -m videorft.engine.cli eval --config recipes/qwen2_5_vl_7b/eval.yaml \
        eval.benchmark=mvbench run.output_dir=runs/qwen2_5_vl_7b/eval/mvbench
    videorft eval --config ... eval.predictions=runs/.../predictions.jsonl   # rescore, no model

Completions are appended to predictions.jsonl as they are made, so a rerun of the same command
resumes where an interrupted one stopped. Under torchrun or the DeepSpeed launcher each rank
answers every world_size-th record (its own predictions.rank<r>.jsonl); rank 0 waits for all,
merges the completions into predictions.jsonl and scores them. Scores come from the one rewards
module (engine/eval/scoring.py); per-record rows go to scores.jsonl.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from videorft.engine.backends import Backends, resolve_backends
from videorft.engine.config import RunConfig
from videorft.engine.eval.benchmarks import Benchmark, get_benchmark
from videorft.engine.eval.generate import decoding_for, generate_shard
from videorft.engine.eval.predictions import (PredictionSink, merge_predictions, predictions_file,
                                              read_predictions, run_predictions)
from videorft.engine.eval.reader import read_benchmark
from videorft.engine.eval.scoring import expected_items, write_summary
from videorft.engine.rewards import ScoringRules, eval_rules
from videorft.engine.run_dir import RunDir, is_main_process
from videorft.engine.trainers.distributed import DistInfo, init_distributed

log = logging.getLogger("videorft")

WAIT_TIMEOUT = timedelta(hours=24)
"""How long rank 0 waits for the slowest rank before merging (a whole benchmark on one GPU fits)."""


def run(cfg: RunConfig) -> dict[str, Any]:
    """Evaluate model.path (or the tiny model) on data.eval_file, or rescore eval.predictions."""
    benchmark = get_benchmark(cfg.eval.benchmark)
    if cfg.eval.predictions:
        return rescore(cfg, benchmark)
    return evaluate(cfg, benchmark)


def _rules(cfg: RunConfig) -> ScoringRules:
    return eval_rules(cfg.eval.lenient_choice, cfg.eval.released_mra)


def rescore(cfg: RunConfig, benchmark: Benchmark) -> dict[str, Any]:
    """Score the completions of eval.predictions against data.eval_file; nothing is generated."""
    if not is_main_process():
        return {}
    run_dir = RunDir(cfg, "eval")
    records = read_benchmark(cfg, benchmark)
    source = Path(cfg.eval.predictions)
    summary = write_summary(run_dir.path, benchmark, records, read_predictions(source), _rules(cfg),
                            {"model": cfg.model.path or "tiny", "rescored": str(source)})
    _report(summary, benchmark, records, cfg)
    run_dir.close()
    return summary


def evaluate(cfg: RunConfig, benchmark: Benchmark) -> dict[str, Any]:
    """Generate the missing completions (this rank's share), then merge and score on rank 0."""
    run_dir = RunDir(cfg, "eval")
    backends = resolve_backends(cfg)
    run_dir.record_backends(backends.as_dict())
    owns_group = not (dist.is_available() and dist.is_initialized())
    info = init_distributed(cfg.distributed, backends.torch_device)
    wait_group = dist.new_group(backend="gloo", timeout=WAIT_TIMEOUT) if info.world_size > 1 else None
    torch.manual_seed(cfg.run.seed)
    records = read_benchmark(cfg, benchmark)
    done = run_predictions(run_dir.path)
    mine = [r for r in records.records[info.rank::info.world_size] if str(r.problem_id) not in done]
    log.info("rank %d: %d of its %d records to answer (%d answered before, all ranks)", info.rank, len(mine),
             len(records.records[info.rank::info.world_size]), len(done))
    if mine:
        sink = PredictionSink(predictions_file(run_dir.path, info.rank, info.world_size))
        try:
            unreadable = generate_shard(cfg, backends, info.device, mine, sink, run_dir.progress)
        finally:
            sink.close()
        if unreadable:
            log.warning("rank %d: %d record(s) with unreadable media were not answered", info.rank, unreadable)
    summary = _finish(cfg, benchmark, run_dir, records, backends, info, wait_group)
    if owns_group and dist.is_initialized():
        dist.destroy_process_group()
    run_dir.close()
    return summary


def _finish(cfg: RunConfig, benchmark: Benchmark, run_dir: RunDir, records, backends: Backends,
            info: DistInfo, wait_group) -> dict[str, Any]:
    """Rank 0, once every rank is done: merge the completions and write eval.json."""
    if wait_group is not None:
        dist.barrier(group=wait_group)
    if not info.is_main:
        return {}
    predictions = merge_predictions(run_dir.path, [str(r.problem_id) for r in records.records])
    details = {"model": cfg.model.path or "tiny", "world_size": info.world_size,
               "decoding": decoding_for(cfg.eval, backends.rollout).as_dict()}
    summary = write_summary(run_dir.path, benchmark, records, predictions, _rules(cfg), details)
    _report(summary, benchmark, records, cfg)
    return summary


def _report(summary: dict[str, Any], benchmark: Benchmark, records, cfg: RunConfig) -> None:
    note = expected_items(benchmark, records, cfg.data.max_samples)
    if note:
        log.warning(note)
    if summary["unanswered"]:
        log.warning("%s: %d of %d records have no completion (unreadable media); the score covers the rest",
                    benchmark.title, summary["unanswered"], summary["records"])
    metrics = {k: round(v, 4) for k, v in summary["metrics"].items() if isinstance(v, float)}
    log.info("eval %s: %s", benchmark.name, metrics)
