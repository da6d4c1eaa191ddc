"""One GRPO step, top to bottom: rollout -> rewards -> advantages -> log-probs -> update -> sync.

The step follows the engine's data flow (docs/design.md): the clip that was decoded for the
prompt is the one the semantic reward embeds, old and reference log-probs come from the
forward-only fused kernel, and the update runs the fused lm_head + GRPO loss. Every value one
phase hands the next is an explicit argument; the settings are the run's config (`cfg.grpo`,
`cfg.rollout`), read here and nowhere else.

Prefix sharing (`grpo.prefix_sharing`): each chunk holds whole groups and runs as one row with each
prompt once (engine/models/prefix_sharing.py), for the old, reference and update passes alike.
A frozen vision tower (`grpo.freeze_vision`) encodes each prompt's media once, before the rollout;
every later pass reads those features (engine/models/frozen_vision.py).

Micro-batches: the step's rows are cut into chunks of `grpo.micro_rows`; each chunk's loss is
weighted by its share of the full-batch objective (computed once from the rows the step really
has), its gradients accumulate, and the optimizer steps once per inner update. Ranks agree on the
number of chunks (a rank that lost a sample runs a zero-weight stand-in chunk), so collective
calls and ZeRO-3 gathers stay in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

from videorft.engine.config import RunConfig
from videorft.engine.models.policy import GRPOLossInputs
from videorft.engine.models.prefix_sharing import share_prefixes
from videorft.engine.rewards import GroupScorer
from videorft.engine.rl.advantages import group_advantages, group_outcomes
from videorft.engine.trainers.distributed import all_ranks_true
from videorft.engine.trainers.flops import ModelShape, grpo_step_flops
from videorft.engine.trainers.groups import Groups, collect_groups
from videorft.engine.trainers.phases import PhaseTimer
from videorft.engine.trainers.sequences import (MicroBatch, SequenceBatch, build_sequences, micro_batch_shares,
                                                micro_batches, select_rows)
from videorft.engine.trainers.train_engine import TrainEngine
from videorft.loaders.collate import SpecialIds


@dataclass
class StepContext:
    """The long-lived objects a step uses."""

    cfg: RunConfig
    """The run's settings: the one source of every GRPO and rollout option."""
    engine: TrainEngine
    rollout: Any
    """A rollout engine (videorft.engine.rollout): generate, sleep, sync_weights."""
    scorer: GroupScorer
    reference: Callable[..., torch.Tensor] | None
    """The frozen reference's log-prob forward (PolicyModel-like), or None without the KL term."""
    timer: PhaseTimer
    device: torch.device
    special_ids: SpecialIds
    """The tokenizer's pad and vision token ids (to re-collate the groups dynamic sampling keeps)."""


def loss_options(cfg: RunConfig) -> dict[str, Any]:
    """The scalar options of the fused GRPO loss, from the run's GRPO and rollout settings.

    Dr. GRPO's divisor is the longest completion the rollouts may produce (rollout.max_new_tokens).
    """
    g = cfg.grpo
    return {"beta": g.beta, "clip_low": g.clip_low, "clip_high": g.clip_high,
            "temperature": cfg.rollout.temperature, "loss_agg": g.loss_agg,
            "importance_sampling_level": g.importance_sampling_level, "policy_loss": g.policy_loss,
            "delta": g.delta, "rollout_is": g.rollout_is, "rollout_is_level": g.rollout_is_level,
            "rollout_is_threshold": g.rollout_is_threshold,
            "max_completion_length": cfg.rollout.max_new_tokens if g.loss_agg == "seq-mean-token-sum-norm" else None}


def step_token_count(mask: torch.Tensor, info) -> torch.Tensor:
    """0-d: the masked-in completion tokens of the step over all ranks, divided by the number of
    ranks. The data-parallel gradient is the ranks' mean, so dividing each rank's token sum by this
    makes DAPO's token mean exact over the whole step (every token weighs the same on every rank)."""
    count = mask.sum().to(torch.float32).reshape(1)
    if info.world_size > 1 and torch.distributed.is_initialized():
        count = count.to(info.device if torch.distributed.get_backend() == "nccl" else "cpu")
        torch.distributed.all_reduce(count)
    return (count / info.world_size).to(mask.device).reshape(())


@dataclass
class Chunk:
    """One micro-batch, laid out once for every pass of the step."""

    batch: MicroBatch
    rows: SequenceBatch
    """The chunk's rows (prompt repeated per row)."""
    model_inputs: dict[str, Any]
    """How the policy reads the chunk: per row (inputs, target_start, video_index) or as one
    shared-prefix row (shared)."""


def prepare_chunks(seq: SequenceBatch, chunks: Sequence[MicroBatch], group_size: int,
                   rope_index: Callable[..., Any] | None) -> list[Chunk]:
    """The chunks' model inputs; with `rope_index` (prefix sharing) each group's prompt appears once."""
    out = []
    for chunk in chunks:
        sub = select_rows(seq, chunk.rows)
        if rope_index is not None:
            inputs = {"inputs": None, "shared": share_prefixes(sub, group_size, rope_index)}
        else:
            inputs = {"inputs": sub.inputs, "target_start": sub.prompt_len, "video_index": sub.video_index,
                      "features": sub.features}
        out.append(Chunk(chunk, sub, inputs))
    return out


@torch.no_grad()
def forward_logprobs(model: Callable[..., torch.Tensor], seq: SequenceBatch, chunks: Sequence[Chunk],
                     temperature: float) -> torch.Tensor:
    """float [P*G, C] log-probs of the completions under `model` (0 on padding), chunk by chunk."""
    out = torch.zeros(seq.completion_ids.shape, dtype=torch.float32, device=seq.completion_ids.device)
    for chunk in chunks:
        logp = model(targets=chunk.rows.completion_ids, mask=chunk.rows.completion_mask, temperature=temperature,
                     **chunk.model_inputs)                                      # [r, C]
        if not chunk.batch.padding:
            out[chunk.batch.rows] = logp
    return out


def update(engine: TrainEngine, seq: SequenceBatch, chunks: Sequence[Chunk], advantages: torch.Tensor,
           old_logp: torch.Tensor | None, ref_logp: torch.Tensor | None, options: dict[str, Any],
           inner_updates: int, rollout_logp: torch.Tensor | None = None) -> dict[str, float]:
    """`inner_updates` optimizer steps on the step's rows; returns the loss metrics (weighted means).

    rollout_logp [P*G, C]: the sampler's log-probs, for options["rollout_is"]. A non-finite loss on
    any rank makes every rank drop the whole step: the chunk's backward is replaced by a zero loss
    (ranks stay in step), the accumulated gradients are discarded, and FloatingPointError is raised
    for the trainer to count.
    """
    num_tokens = step_token_count(seq.completion_mask, engine.info) if options["loss_agg"] == "token-mean" else None
    shares = micro_batch_shares(seq.completion_mask, [c.batch for c in chunks], options["loss_agg"], num_tokens,
                                options["max_completion_length"])
    sums: dict[str, float] = {}
    for _ in range(inner_updates):
        for chunk, share in zip(chunks, shares):
            rows, sub = chunk.batch.rows, chunk.rows
            grpo = GRPOLossInputs(
                mask=sub.completion_mask * (0.0 if chunk.batch.padding else 1.0), advantages=advantages[rows],
                old_logp=None if old_logp is None else old_logp[rows],
                ref_logp=None if ref_logp is None else ref_logp[rows],
                rollout_logp=None if rollout_logp is None else rollout_logp[rows], num_tokens=num_tokens,
                options=options)
            loss, metrics = engine(targets=sub.completion_ids, grpo=grpo, **chunk.model_inputs)
            value = float(loss.detach())
            if not all_ranks_true(math.isfinite(value), engine.info):
                engine.backward(engine.zero_loss())
                engine.discard_gradients()
                raise FloatingPointError(f"non-finite loss (this rank: {value})")
            engine.backward(loss * share)
            for key, v in {"loss": value, **metrics}.items():
                sums[key] = sums.get(key, 0.0) + share * float(v) / inner_updates
        sums["grad_norm"] = engine.optimizer_step()
    return sums


def summarise(groups: Groups, update_metrics: dict[str, float], dynamic: bool) -> dict[str, float]:
    """The step's logged metrics (rewards, outcomes, lengths, loss); phase times are added by the caller."""
    total, rollouts = groups.rewards.total, groups.rollouts
    g = rollouts.group_size
    out = {"reward": float(total.mean()), "reward_std": float(total.std()) if total.numel() > 1 else 0.0,
           "completion_length": float(rollouts.lengths.float().mean())}
    for name, values in groups.rewards.parts.items():
        out[f"reward/{name}"] = float(values.mean())
    if "accuracy" in groups.rewards.parts:
        acc = groups.rewards.parts["accuracy"]
        out["accuracy"] = float(acc.mean())
        out["all_wrong"], out["all_correct"] = group_outcomes(acc, g, low=0.0, high=1.0)
    if dynamic:
        out["dynamic/draws"] = float(groups.draws)
        out["dynamic/dropped_fraction"] = groups.dropped / (groups.dropped + len(groups.batch))
    out.update(update_metrics)
    return {k: v for k, v in out.items() if not (isinstance(v, float) and math.isnan(v))}


def grpo_step(ctx: StepContext, batches: Iterator) -> dict[str, float]:
    """One GRPO step on the next prompt batch(es); returns its metrics (FloatingPointError when skipped)."""
    grpo, rollout_cfg, timer = ctx.cfg.grpo, ctx.cfg.rollout, ctx.timer
    ctx.engine.train(True)
    groups = collect_groups(ctx, batches)                 # rollout and reward phases
    rollouts = groups.rollouts
    advantages = group_advantages(groups.rewards.total, rollouts.group_size, grpo.adv_eps,
                                  grpo.adv_std).to(ctx.device)
    rollout_logp = None
    if grpo.rollout_is is not None:
        if rollouts.logprobs is None:
            raise ValueError(f"grpo.rollout_is={grpo.rollout_is!r} needs the sampler's log-probs, which the "
                             f"{type(ctx.rollout).__name__} engine did not return")
        rollout_logp = rollouts.logprobs.to(ctx.device)
    with timer.phase("logprob"):
        seq = build_sequences(groups.batch.model_inputs(), rollouts, ctx.device, groups.features)
        g = rollouts.group_size
        policy = ctx.engine.policy
        chunks = prepare_chunks(seq, micro_batches(seq.rows, grpo.micro_rows, ctx.engine.info,
                                                   whole=g if grpo.prefix_sharing else 1),
                                g, policy.family.rope_index(policy.model) if grpo.prefix_sharing else None)
        old = ref = None
        if grpo.inner_updates > 1:
            old = forward_logprobs(ctx.engine, seq, chunks, rollout_cfg.temperature)
        if ctx.reference is not None:
            ref = forward_logprobs(ctx.reference, seq, chunks, rollout_cfg.temperature)
    with timer.phase("update"):
        metrics = update(ctx.engine, seq, chunks, advantages, old, ref, loss_options(ctx.cfg), grpo.inner_updates,
                         rollout_logp)
    with timer.phase("sync"):
        ctx.rollout.sync_weights(ctx.engine.policy.model)
    metrics["model_flops"] = _train_flops(ctx, seq, g)
    return summarise(groups, metrics, grpo.dynamic_sampling)


def _train_flops(ctx: StepContext, seq: SequenceBatch, group_size: int) -> float:
    """Model FLOPs of the step's log-prob and update passes (engine/trainers/flops.py)."""
    grpo = ctx.cfg.grpo
    firsts = range(0, seq.rows, group_size)
    prompts = [int(seq.inputs["attention_mask"][r, :seq.prompt_len].sum()) for r in firsts]
    lengths = seq.completion_mask.sum(dim=1).long().tolist()
    completions = [lengths[r:r + group_size] for r in firsts]
    grids = None if grpo.freeze_vision else seq.inputs.get("video_grid_thw")     # a frozen tower ran before
    patches = [int(grids[v].prod()) if grids is not None and (v := int(seq.row_video[r])) >= 0 else 0 for r in firsts]
    forward_passes = int(grpo.inner_updates > 1) + int(ctx.reference is not None)
    return grpo_step_flops(ModelShape.of(ctx.engine.policy.config), prompts, completions, patches,
                           grpo.prefix_sharing, forward_passes, grpo.inner_updates)
