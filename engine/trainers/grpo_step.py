"""One GRPO step as named phases: rollout -> score -> advantages -> logprobs -> update -> sync.

Each phase is a short function over a `StepState`; the trainer (grpo.py) strings them together
and handles data, checkpoints and logging. The step follows DESIGN.md's data flow: the clip that
was decoded for the prompt is the one the semantic reward embeds, old and reference log-probs
come from the forward-only fused kernel, and the update runs the fused lm_head + GRPO loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from videorft.engine.models.policy import GRPOLossSettings, PolicyModel
from videorft.engine.rl.advantages import group_advantages, group_outcomes
from videorft.engine.rollout.types import Rollouts
from videorft.engine.trainers.distributed import all_ranks_true
from videorft.engine.trainers.phases import PhaseTimer
from videorft.engine.trainers.sequences import SequenceBatch, build_sequences, micro_batches, select_rows
from videorft.engine.trainers.train_engine import TrainEngine


@dataclass
class StepState:
    """Everything one step produces, phase by phase."""

    batch: Any
    """The prompt batch from the data loader (model_inputs, prompt_texts, clips, records)."""
    rollouts: Rollouts | None = None
    rewards: torch.Tensor | None = None
    """float [P*G] total rewards."""
    reward_parts: dict[str, torch.Tensor] = field(default_factory=dict)
    """float [P*G] per reward function."""
    advantages: torch.Tensor | None = None
    """float [P*G]."""
    sequences: SequenceBatch | None = None
    old_logp: torch.Tensor | None = None
    """float [P*G, C] (only with inner_updates > 1)."""
    ref_logp: torch.Tensor | None = None
    """float [P*G, C] (only with beta > 0)."""
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class StepContext:
    """The long-lived objects a step uses."""

    engine: TrainEngine
    rollout: Any
    scorer: Any
    reference: PolicyModel | None
    settings: GRPOLossSettings
    timer: PhaseTimer
    device: torch.device
    group_size: int
    adv_eps: float
    adv_std: str
    inner_updates: int
    micro_rows: int


def rollout_phase(ctx: StepContext, state: StepState) -> None:
    """Sample G completions per prompt from the current policy."""
    with ctx.timer.phase("rollout"):
        state.rollouts = ctx.rollout.generate(state.batch, group_size=ctx.group_size)
        ctx.rollout.sleep()                        # vLLM frees its memory for the update


def score_phase(ctx: StepContext, state: StepState) -> None:
    """Rewards of every completion against its record, with the prompt's own decoded clip."""
    g, r = ctx.group_size, state.rollouts
    totals, parts = [], {}
    with ctx.timer.phase("reward"):
        lengths = r.lengths.tolist()
        for p, (record, clip) in enumerate(zip(state.batch.records, state.batch.clips)):
            rows = slice(p * g, (p + 1) * g)
            scored = ctx.scorer.score_group(r.texts[rows], lengths[rows], record.solution, record.problem_type,
                                            ctx.scorer.embed_video(clip))
            totals.append(scored.total)
            for name, values in scored.per_function.items():
                parts.setdefault(name, []).append(values)
    state.rewards = torch.cat(totals)
    state.reward_parts = {k: torch.cat(v) for k, v in parts.items()}


def advantage_phase(ctx: StepContext, state: StepState) -> None:
    """Group-relative advantages of the totals."""
    state.advantages = group_advantages(state.rewards, ctx.group_size, ctx.adv_eps, ctx.adv_std)


@torch.no_grad()
def _forward_logprobs(model: PolicyModel, seq: SequenceBatch, micro_rows: int,
                      temperature: float) -> torch.Tensor:
    out = []
    for rows in micro_batches(seq.rows, micro_rows):
        sub = select_rows(seq, rows)
        out.append(model(sub.inputs, sub.completion_ids, sub.prompt_len, video_index=sub.video_index,
                         settings=GRPOLossSettings(temperature=temperature)))
    return torch.cat(out)                                                   # [P*G, C]


def logprob_phase(ctx: StepContext, state: StepState) -> None:
    """Old-policy (for clipping over several updates) and reference log-probs, forward only."""
    state.sequences = build_sequences(state.batch.model_inputs(), state.rollouts, ctx.device)
    with ctx.timer.phase("logprob"):
        t = ctx.settings.temperature
        if ctx.inner_updates > 1:
            state.old_logp = _forward_logprobs(ctx.engine.policy, state.sequences, ctx.micro_rows, t)
        if ctx.reference is not None and ctx.settings.beta > 0:
            state.ref_logp = _forward_logprobs(ctx.reference, state.sequences, ctx.micro_rows, t)


def _micro_weight(sub: SequenceBatch, seq: SequenceBatch, loss_agg: str) -> float:
    """Share of the full-batch loss that a micro-batch's own loss stands for."""
    if loss_agg == "token-mean":
        return float(sub.completion_mask.sum() / seq.completion_mask.sum().clamp(min=1))
    return sub.rows / seq.rows


def update_phase(ctx: StepContext, state: StepState) -> None:
    """`inner_updates` optimizer steps on the rollouts; the loss is the fused GRPO objective."""
    seq, chunks = state.sequences, micro_batches(state.sequences.rows, ctx.micro_rows)
    sums: dict[str, float] = {}
    with ctx.timer.phase("update"):
        for _ in range(ctx.inner_updates):
            for rows in chunks:
                sub = select_rows(seq, rows)
                loss, metrics = ctx.engine(
                    sub.inputs, sub.completion_ids, sub.prompt_len, video_index=sub.video_index,
                    mask=sub.completion_mask, advantages=state.advantages[rows].to(ctx.device),
                    old_logp=None if state.old_logp is None else state.old_logp[rows],
                    ref_logp=None if state.ref_logp is None else state.ref_logp[rows],
                    settings=ctx.settings)
                # every rank decides alike, so a skipped step never leaves the others in a collective
                value = float(loss.detach())
                if not all_ranks_true(math.isfinite(value), ctx.engine.info):
                    raise FloatingPointError(f"non-finite loss (this rank: {value})")
                w = _micro_weight(sub, seq, ctx.settings.loss_agg)
                ctx.engine.backward(loss * w * len(chunks))
                for key, v in {"loss": value, **metrics}.items():
                    sums[key] = sums.get(key, 0.0) + w * float(v) / ctx.inner_updates
                norm = ctx.engine.step()
                if norm is not None:
                    sums["grad_norm"] = norm
    state.metrics.update(sums)


def sync_phase(ctx: StepContext, state: StepState) -> None:
    """Hand the updated weights to the rollout engine (a no-op for HF generate)."""
    with ctx.timer.phase("sync"):
        if getattr(ctx.rollout, "name", "") == "vllm":
            ctx.rollout.sync_weights(ctx.engine.policy.model.named_parameters())


def summarise(ctx: StepContext, state: StepState) -> dict[str, float]:
    """The step's logged metrics (rewards, outcomes, lengths); phase times are added by the caller."""
    lengths = state.rollouts.lengths.float()
    out = {"reward": float(state.rewards.mean()), "reward_std": float(state.rewards.std())
           if state.rewards.numel() > 1 else 0.0, "completion_length": float(lengths.mean())}
    for name, values in state.reward_parts.items():
        out[f"reward/{name}"] = float(values.mean())
    if "accuracy" in state.reward_parts:
        acc = state.reward_parts["accuracy"]
        out["accuracy"] = float(acc.mean())
        out["all_wrong"], out["all_correct"] = group_outcomes(acc, ctx.group_size, low=0.0, high=1.0)
    out.update(state.metrics)
    return {k: v for k, v in out.items() if not (isinstance(v, float) and math.isnan(v))}


PHASES = (rollout_phase, score_phase, advantage_phase, logprob_phase, update_phase, sync_phase)


def grpo_step(ctx: StepContext, batch: Any) -> dict[str, float]:
    """Run every phase on one prompt batch; returns the metrics of the step."""
    state = StepState(batch=batch)
    ctx.engine.train(True)
    for phase in PHASES:
        phase(ctx, state)
    return summarise(ctx, state)
