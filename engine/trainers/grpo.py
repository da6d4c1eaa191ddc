"""`videorft grpo`: the GRPO trainer (set-up, the step loop, checkpoints, metrics).

The step itself is one straight-line function in grpo_step.py. This module builds what it needs
(policy on DeepSpeed or plain PyTorch, frozen reference, rollout engine, reward scorer, data),
resumes from the newest checkpoint of the run directory, and keeps the loop honest: a
non-finite loss skips the step and `grpo.max_bad_steps` in a row stop the run.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from videorft.engine.backends import Backends, resolve_backends
from videorft.engine.config import RunConfig
from videorft.engine.models.attention import VARLEN_ATTENTION
from videorft.engine.models.frozen_vision import freeze_vision_tower
from videorft.engine.models.loading import load_model_and_tokenizer
from videorft.engine.models.policy import PolicyModel
from videorft.engine.plots import plot_run
from videorft.engine.rewards import GroupScorer
from videorft.engine.rollout import build_rollout
from videorft.engine.run_dir import RunDir, log
from videorft.engine.trainers.checkpoint import (export_final, latest_checkpoint, load_checkpoint, restore_rng,
                                                 save_checkpoint)
from videorft.engine.trainers.data import build_prompt_loader
from videorft.engine.trainers.digest import maybe_write_param_digests
from videorft.engine.trainers.distributed import init_distributed, reduce_metrics, seed_everything
from videorft.engine.trainers.flops import utilisation
from videorft.engine.trainers.grpo_step import StepContext, grpo_step
from videorft.engine.trainers.phases import PhaseTimer, peak_memory_mb, reset_peak_memory
from videorft.engine.trainers.profiling import step_profiler
from videorft.engine.trainers.reference import build_reference
from videorft.engine.trainers.train_engine import TrainEngine
from videorft.loaders.collate import SpecialIds


def _context(cfg: RunConfig, run_dir: RunDir) -> tuple[StepContext, Any, Any, Backends]:
    backends = resolve_backends(cfg)
    if cfg.grpo.prefix_sharing and backends.attention != VARLEN_ATTENTION:
        log.info("grpo.prefix_sharing: attention %s instead of %s (it reads the shared-prefix layout)",
                 VARLEN_ATTENTION, backends.attention)
        backends = dataclasses.replace(backends, attention=VARLEN_ATTENTION)
    run_dir.record_backends(backends.as_dict())
    info = init_distributed(cfg.distributed, backends.torch_device)
    seed_everything(cfg.run.seed + info.rank)
    dtype = getattr(torch, cfg.model.dtype)
    model, tokenizer = load_model_and_tokenizer(cfg.model, info.device, backends.attention, seed=cfg.run.seed)
    if cfg.grpo.freeze_vision:
        freeze_vision_tower(model)                     # before the optimizer is built: no state for it
    engine = TrainEngine(PolicyModel(model, backends.kernels), cfg.grpo.optim, cfg.distributed, info,
                         total_steps=cfg.grpo.steps * cfg.grpo.inner_updates, dtype=dtype)
    rollout = build_rollout(backends.rollout, engine.policy.model, tokenizer, cfg.rollout,
                            model_path=cfg.model.path, dtype=cfg.model.dtype, seed=cfg.run.seed, video=cfg.video)
    # SigLIP runs in bf16 on GPUs, as the released recipe ran it; fp32 on the CPU
    scorer_dtype = torch.bfloat16 if info.device.type == "cuda" else torch.float32
    ctx = StepContext(cfg=cfg, engine=engine, rollout=rollout,
                      scorer=GroupScorer.from_config(cfg.rewards, info.device, dtype=scorer_dtype),
                      reference=build_reference(cfg, info, backends.attention, backends.kernels),
                      timer=PhaseTimer(info.device), device=info.device,
                      special_ids=SpecialIds.from_tokenizer(tokenizer))
    return ctx, tokenizer, info, backends


def _log_step(run_dir: RunDir, info, step: int, metrics: dict[str, float], ctx: StepContext,
              seconds: float, tokens: int) -> dict[str, float]:
    metrics.update(ctx.timer.pop())
    metrics["tokens_per_s"] = tokens / max(seconds, 1e-9)
    metrics.update(utilisation(metrics.pop("model_flops"), metrics.get("time/logprob", 0.0) +
                               metrics.get("time/update", 0.0), ctx.device))
    metrics["peak_mem_mb"] = peak_memory_mb(ctx.device)
    metrics["lr"] = ctx.engine.step_lr
    metrics = reduce_metrics(metrics, info)
    if info.is_main:
        run_dir.metrics.write(step, metrics)
    return metrics


def run(cfg: RunConfig) -> dict[str, Any]:
    """Train with GRPO for grpo.steps steps; writes checkpoints, metrics, plots and `final/`."""
    run_dir = RunDir(cfg, "grpo")
    ctx, tokenizer, info, backends = _context(cfg, run_dir)
    state = {"step": 0, "bad_steps": 0, "skipped": 0}
    resume = latest_checkpoint(run_dir.path)
    if resume is not None:
        state = load_checkpoint(ctx.engine, resume)
        run_dir.resume_at(state["step"])
        ctx.rollout.sync_weights(ctx.engine.policy.model)   # the first rollout samples the resumed policy
        log.info("resumed from %s at step %d", resume, state["step"])
    # a step may draw several prompt batches (dynamic sampling): a resume continues after the last drawn
    drawn = state.get("batches", state["step"])
    batches = Counted(build_prompt_loader(cfg, backends, tokenizer, ctx.engine.policy.config, info,
                                          start_batch=drawn))
    if resume is not None:
        restore_rng(resume, info.rank)                 # last: set-up must not draw from the restored streams
    with step_profiler(run_dir.path, cfg.run.profile_steps, info.device) as profiler:
        last = _loop(cfg, run_dir, ctx, tokenizer, info, state, batches, drawn, profiler)
    return _finish(run_dir, ctx, info, state, last)


def _loop(cfg: RunConfig, run_dir: RunDir, ctx: StepContext, tokenizer, info, state: dict, batches, drawn: int,
          profiler) -> dict[str, float]:
    """The steps from state["step"] on: train, log, checkpoint; returns the last logged metrics."""
    last: dict[str, float] = {}
    for step in run_dir.progress(range(state["step"], cfg.grpo.steps), total=cfg.grpo.steps - state["step"]):
        started = time.perf_counter()
        reset_peak_memory(info.device)
        try:
            metrics = grpo_step(ctx, batches)
            state["bad_steps"] = 0
        except FloatingPointError as err:
            ctx.timer.pop()                            # the skipped step's phase times are not the next one's
            state["bad_steps"] += 1
            state["skipped"] += 1
            log.warning("step %d skipped: %s (%d in a row)", step + 1, err, state["bad_steps"])
            if state["bad_steps"] >= cfg.grpo.max_bad_steps:
                raise RuntimeError(f"stopping at step {step + 1}: {state['bad_steps']} non-finite losses in a row "
                                   f"(grpo.max_bad_steps={cfg.grpo.max_bad_steps})") from err
            metrics = {}
        state["step"], state["batches"] = step + 1, drawn + batches.count
        if metrics and (step + 1) % cfg.run.log_every == 0:
            # completion tokens sampled and trained on in this step
            tokens = int(metrics.get("completion_length", 0) * cfg.grpo.prompts_per_step * cfg.rollout.group_size)
            last = _log_step(run_dir, info, step + 1, metrics, ctx, time.perf_counter() - started, tokens)
        if (step + 1) % cfg.grpo.save_every == 0 or step + 1 == cfg.grpo.steps:
            save_checkpoint(ctx.engine, tokenizer, run_dir.path, step + 1, state)
        profiler.step()
    return last


class Counted:
    """An iterator that counts what it hands out."""

    def __init__(self, items):
        self.items, self.count = iter(items), 0

    def __iter__(self):
        return self

    def __next__(self):
        item = next(self.items)
        self.count += 1
        return item


def _finish(run_dir: RunDir, ctx: StepContext, info, state: dict, last: dict) -> dict[str, Any]:
    maybe_write_param_digests(ctx.engine, run_dir.path)
    final = export_final(run_dir.path, info.is_main)
    if info.is_main and (run_dir.path / "metrics.jsonl").is_file():
        plot_run(run_dir.path / "metrics.jsonl", run_dir.path)
    run_dir.close()
    return {"final": str(final), "steps": state["step"], "skipped_steps": state["skipped"], "last": last}
