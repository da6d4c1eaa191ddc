"""`videorft sft`: supervised fine-tuning on chain-of-thought records.

Target = `process + "\\n" + solution`. The loss is the mean negative log-likelihood of the
labelled tokens (the response by default; the whole sequence when `sft.loss_on: all`, as the
released code did), computed by the fused lm_head + log-prob kernel so the [tokens x vocab]
logits never exist. Vision placeholder tokens are never labelled.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from videorft.engine.backends import resolve_backends
from videorft.engine.config import RunConfig
from videorft.engine.models.loading import load_model_and_tokenizer
from videorft.engine.models.packing import pack_samples
from videorft.engine.models.policy import PolicyModel
from videorft.engine.run_dir import RunDir, log
from videorft.engine.trainers.checkpoint import (export_final, latest_checkpoint, load_checkpoint, restore_rng,
                                                 save_checkpoint)
from videorft.engine.trainers.data import build_sft_loader, sft_steps_per_epoch
from videorft.engine.trainers.digest import maybe_write_param_digests
from videorft.engine.trainers.distributed import all_ranks_true, init_distributed, reduce_metrics, seed_everything
from videorft.engine.trainers.flops import ModelShape, utilisation
from videorft.engine.trainers.phases import PhaseTimer, peak_memory_mb, reset_peak_memory
from videorft.engine.trainers.profiling import step_profiler
from videorft.engine.trainers.train_engine import TrainEngine

IGNORE = -100


def sft_loss(engine: TrainEngine, model_inputs: dict[str, torch.Tensor], labels: torch.Tensor
             ) -> tuple[torch.Tensor, int]:
    """Mean NLL over labelled tokens of one micro-batch, and how many tokens that was.

    labels [B, T] hold the token id where the loss applies and IGNORE elsewhere; position t is
    predicted from the hidden state at t-1.
    """
    targets = labels[:, 1:]                                                  # [B, T-1]
    mask = targets != IGNORE
    logp = engine(model_inputs, targets.clamp(min=0), target_start=1, mask=mask)   # [B, T-1] fp32, 0 off mask
    count = int(mask.sum())
    return -(logp * mask).sum() / max(count, 1), count


def sft_forward_flops(shape: ModelShape, inputs: dict[str, torch.Tensor], labelled: int) -> float:
    """Model FLOPs of one forward of an SFT micro-batch (padded rows or one packed varlen row)."""
    if "attention_mask" in inputs:
        lengths = inputs["attention_mask"].sum(dim=1).tolist()
    else:
        positions = inputs["position_ids"][0, 0]                                 # text positions restart per sample
        lengths = torch.nonzero(positions == 0).flatten().diff(append=positions.new_tensor([positions.numel()])).tolist()
    patches = sum(int(inputs[k].shape[0]) for k in ("pixel_values_videos", "pixel_values") if k in inputs)
    return shape.forward(sum(lengths), sum(n * (n + 1) // 2 for n in lengths), labelled, patches)


def packed_batch(batch, model) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One varlen row of the batch's samples: (model inputs [1, T], labels [1, T]).

    Padding is dropped, each sample keeps its own M-RoPE positions and the text positions restart
    per sample, so attention never crosses samples (engine/models/packing.py).
    """
    samples = []
    for row, sample in enumerate(batch.samples):
        keep = batch.attention_mask[row].bool()
        item = {"input_ids": batch.input_ids[row][keep], "mm_token_type_ids": batch.mm_token_type_ids[row][keep],
                "labels": batch.labels[row][keep]}
        if sample.is_video:
            item.update(pixel_values_videos=sample.pixel_values, video_grid_thw=sample.grid_thw[None])
            if sample.second_per_grid_t is not None:
                item["second_per_grid_ts"] = torch.tensor([sample.second_per_grid_t])
        else:
            item.update(pixel_values=sample.pixel_values, image_grid_thw=sample.grid_thw[None])
        samples.append(item)
    packed = pack_samples(samples, model)
    # labels[t] is predicted from position t-1; a sample's first token would be predicted from the
    # previous sample's last one, so it never counts
    labels = packed.labels.clone()
    labels[0, packed.cu_seqlens[:-1].long()] = IGNORE
    return packed.model_inputs(), labels


def run(cfg: RunConfig) -> dict[str, Any]:
    """Fine-tune for sft.epochs (or sft.max_steps) optimizer steps; writes checkpoints and `final/`."""
    run_dir = RunDir(cfg, "sft")
    backends = resolve_backends(cfg)
    run_dir.record_backends(backends.as_dict())
    info = init_distributed(cfg.distributed, backends.torch_device)
    seed_everything(cfg.run.seed + info.rank)
    model, tokenizer = load_model_and_tokenizer(cfg.model, info.device, backends.attention, seed=cfg.run.seed)
    per_epoch = sft_steps_per_epoch(cfg, info)
    total = cfg.sft.max_steps if cfg.sft.max_steps is not None else per_epoch * cfg.sft.epochs
    engine = TrainEngine(PolicyModel(model, backends.kernels), cfg.sft.optim, cfg.distributed, info,
                         total_steps=total, dtype=getattr(torch, cfg.model.dtype))
    state = {"step": 0, "skipped": 0}
    if (resume := latest_checkpoint(run_dir.path)) is not None:
        state = load_checkpoint(engine, resume)
        run_dir.resume_at(state["step"])
        log.info("resumed from %s at step %d", resume, state["step"])
    batches = iter(build_sft_loader(cfg, backends, tokenizer, model.config, info,
                                    start_batch=state["step"] * cfg.sft.grad_accum))
    if resume is not None:
        restore_rng(resume, info.rank)                 # last: set-up must not draw from the restored streams
    timer, shape = PhaseTimer(info.device), ModelShape.of(model.config)
    engine.train(True)
    with step_profiler(run_dir.path, cfg.run.profile_steps, info.device) as profiler:
        for step in run_dir.progress(range(state["step"], total), total=total - state["step"]):
            started = time.perf_counter()
            reset_peak_memory(info.device)
            metrics = _train_step(cfg, engine, batches, timer, shape, state, step)
            state["step"] = step + 1
            if (step + 1) % cfg.run.log_every == 0:
                metrics.update(tokens_per_s=metrics.pop("tokens") / max(time.perf_counter() - started, 1e-9),
                               peak_mem_mb=peak_memory_mb(info.device), epoch=(step + 1) / per_epoch, **timer.pop())
                metrics.update(utilisation(metrics.pop("model_flops"), metrics["time/update"], info.device))
                metrics = reduce_metrics(metrics, info)
                if info.is_main:
                    run_dir.metrics.write(step + 1, metrics)
            if (step + 1) % cfg.sft.save_every == 0 or step + 1 == total:
                save_checkpoint(engine, tokenizer, run_dir.path, step + 1, state)
            profiler.step()
    maybe_write_param_digests(engine, run_dir.path)
    final = export_final(run_dir.path, info.is_main)
    run_dir.close()
    return {"final": str(final), "steps": state["step"], "skipped_micro_batches": state["skipped"]}


def _train_step(cfg: RunConfig, engine: TrainEngine, batches, timer: PhaseTimer, shape: ModelShape,
                state: dict, step: int) -> dict[str, float]:
    """sft.grad_accum micro-batches and one optimizer step: loss, grad_norm, lr, tokens, model_flops."""
    s, info = cfg.sft, engine.info
    loss_sum, tokens, flops = 0.0, 0, 0.0
    for _ in range(s.grad_accum):
        batch = next(batches)
        timer.add("decode", batch.decode_seconds)
        timer.add("preprocess", batch.preprocess_seconds)
        with timer.phase("update"):
            inputs, labels = packed_batch(batch, engine.policy.model) if s.packing else (batch.model_inputs(),
                                                                                          batch.labels)
            inputs = {k: v.to(info.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
            loss, count = sft_loss(engine, inputs, labels.to(info.device))
            value = float(loss.detach())
            # every rank decides alike, so a skipped micro-batch never leaves the others in a collective
            if not all_ranks_true(math.isfinite(value), info):
                state["skipped"] += 1
                log.warning("step %d: non-finite loss (this rank: %s); micro-batch skipped", step + 1, value)
                loss = engine.zero_loss()
            engine.backward(loss / s.grad_accum)
        loss_sum += float(loss.detach()) / s.grad_accum
        tokens += count
        flops += 3 * sft_forward_flops(shape, inputs, count)
    with timer.phase("update"):
        norm = engine.optimizer_step()
    return {"loss": loss_sum, "grad_norm": norm, "lr": engine.step_lr, "tokens": tokens, "model_flops": flops}
