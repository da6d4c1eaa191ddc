"""The groups a GRPO step trains on: rollouts of a prompt batch, scored, optionally filtered.

`collect_groups` samples G completions per prompt and scores them with the prompt's own decoded
clip. With `grpo.dynamic_sampling` (DAPO) a group whose rewards are all equal carries no
advantage and is dropped; more prompt batches are drawn until `prompts_per_step` informative
groups are in hand or `dynamic_sampling_draws` batches were drawn (then the step trains on what it
has, topped up with dropped groups so its size stays fixed). All ranks draw the same number of
batches, because rollouts under ZeRO-3 are collective.

With `grpo.freeze_vision` each drawn batch's media are encoded once, before its rollout, and the
features travel with the groups to the log-prob and update passes (engine/models/frozen_vision.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from videorft.engine.models.frozen_vision import MediaFeatures, encode_media
from videorft.engine.rewards import GroupScorer
from videorft.engine.rollout.types import Rollouts
from videorft.engine.trainers.distributed import all_ranks_true
from videorft.loaders.collate import PromptBatch, SpecialIds, collate_prompts


@dataclass
class Rewards:
    """Rewards of P*G completions, grouped by prompt."""

    total: torch.Tensor
    """float [P*G]."""
    parts: dict[str, torch.Tensor]
    """name -> float [P*G] per reward function."""


@dataclass
class Groups:
    """What the step trains on."""

    batch: PromptBatch
    rollouts: Rollouts
    rewards: Rewards
    draws: int
    """Prompt batches drawn for this step."""
    dropped: int
    """Groups drawn but not trained on (all rewards equal), with dynamic sampling."""
    features: MediaFeatures | None = None
    """The prompts' media encoded by the frozen vision tower (grpo.freeze_vision), else None."""


@dataclass
class Draw:
    """One prompt batch drawn for a step, rolled out and scored."""

    batch: PromptBatch
    rollouts: Rollouts
    rewards: Rewards
    features: MediaFeatures | None = None
    """Its media encoded by the frozen vision tower (grpo.freeze_vision), else None."""


def score(scorer: GroupScorer, batch, rollouts: Rollouts) -> Rewards:
    """Rewards of every completion against its record, with the prompt's own decoded clip."""
    g = rollouts.group_size
    lengths = rollouts.lengths.tolist()
    totals, parts = [], {}
    for p, (record, clip) in enumerate(zip(batch.records, batch.clips)):
        rows = slice(p * g, (p + 1) * g)
        scored = scorer.score_group(rollouts.texts[rows], lengths[rows], record.solution, record.problem_type,
                                    scorer.embed_video(clip))
        totals.append(scored.total)
        for name, values in scored.per_function.items():
            parts.setdefault(name, []).append(values)
    return Rewards(torch.cat(totals), {k: torch.cat(v) for k, v in parts.items()})


def informative(rewards: Rewards, group_size: int) -> torch.Tensor:
    """bool [P]: groups whose total rewards are not all equal."""
    grouped = rewards.total.view(-1, group_size)                                  # [P, G]
    return (grouped != grouped[:, :1]).any(dim=1)


def collect_groups(ctx, batches: Iterator[PromptBatch]) -> Groups:
    """Draw, roll out and score prompt batches until the step's groups are in hand (see the module doc)."""
    grpo, g = ctx.cfg.grpo, ctx.cfg.rollout.group_size
    drawn: list[Draw] = []
    kept = draws = 0
    while True:
        batch = next(batches)
        draws += 1
        ctx.timer.add("decode", batch.decode_seconds)
        ctx.timer.add("preprocess", batch.preprocess_seconds)
        with ctx.timer.phase("rollout"):
            features = encode_media(ctx.engine.policy.model, batch.model_inputs()) if grpo.freeze_vision else None
            rollouts = ctx.rollout.generate(batch, group_size=g, features=features)
            ctx.rollout.sleep()                        # vLLM frees its memory for the update
        with ctx.timer.phase("reward"):
            rewards = score(ctx.scorer, batch, rollouts)
        drawn.append(Draw(batch, rollouts, rewards, features))
        if not grpo.dynamic_sampling:
            return Groups(batch, rollouts, rewards, draws=1, dropped=0, features=features)
        kept += int(informative(rewards, g).sum())
        enough = kept >= grpo.prompts_per_step
        if all_ranks_true(enough, ctx.engine.info) or draws >= grpo.dynamic_sampling_draws:
            return _select(drawn, grpo.prompts_per_step, g, ctx.special_ids, draws)


def _select(drawn: list[Draw], wanted: int, group_size: int, ids: SpecialIds, draws: int) -> Groups:
    """The first `wanted` informative groups of the draws (topped up with the others if short)."""
    picks = [(d, p) for want in (True, False) for d in drawn
             for p, ok in enumerate(informative(d.rewards, group_size).tolist()) if ok == want]
    picks = picks[:wanted]
    total = sum(len(d.batch) for d in drawn)
    samples = [d.batch.samples[p] for d, p in picks]
    rows = [(d, torch.arange(p * group_size, (p + 1) * group_size)) for d, p in picks]
    rewards = Rewards(torch.cat([d.rewards.total[r] for d, r in rows]),
                      {k: torch.cat([d.rewards.parts[k][r] for d, r in rows]) for k in drawn[0].rewards.parts})
    features = None
    if drawn[0].features is not None:
        features = MediaFeatures.join([d.features.of_prompts([p]) for d, p in picks])
    return Groups(collate_prompts(samples, ids), _rows_of_rollouts([(d.rollouts, r) for d, r in rows], ids.pad),
                  rewards, draws=draws, dropped=total - len(picks), features=features)


def _rows_of_rollouts(parts: list[tuple[Rollouts, torch.Tensor]], pad_id: int) -> Rollouts:
    """The chosen rows of several Rollouts as one, right-padded to the widest completion."""
    width = max(r.completion_ids.shape[1] for r, _ in parts)

    def padded(t: torch.Tensor, value) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, width - t.shape[1]), value=value)

    ids = torch.cat([padded(r.completion_ids[rows], pad_id) for r, rows in parts])       # [R, C]
    mask = torch.cat([padded(r.completion_mask[rows], 0) for r, rows in parts])          # [R, C]
    texts = [r.texts[int(i)] for r, rows in parts for i in rows]
    logprobs = None
    if all(r.logprobs is not None for r, _ in parts):
        logprobs = torch.cat([padded(r.logprobs[rows], 0.0) for r, rows in parts])       # [R, C]
    return Rollouts(ids, mask, texts, parts[0][0].group_size, logprobs=logprobs)
