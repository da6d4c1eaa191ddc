"""The scalar options of the fused GRPO loss, their allowed values and their checks.

One frozen record carries every non-tensor choice of the loss (clipping, aggregation,
importance-sampling level, rollout correction, policy-loss kind) from the public entry points
through the custom op to `grpo_math`, so the option set is spelled out once. The checks here
raise ValueError naming the offending argument, before any kernel runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from videorft.kernels.reference import LOSS_AGGREGATIONS

IS_LEVELS = ("token", "sequence")
"""importance_sampling_level / rollout_is_level values."""
POLICY_LOSSES = ("ppo", "cispo")
"""policy_loss values: PPO's clipped surrogate, or CISPO's clipped detached IS weight x log-prob."""
ROLLOUT_IS_MODES = ("tis", "mis")
"""rollout_is values: truncated IS weights, or masking of out-of-band tokens / sequences."""


@dataclass(frozen=True)
class LossOptions:
    """Every scalar option of the fused GRPO loss (see `fused_linear_grpo_loss` for the maths)."""

    beta: float = 0.04
    """KL coefficient (k3 estimator against the reference policy)."""
    clip_low: float = 0.2
    """PPO: the ratio is clipped below at 1 - clip_low."""
    clip_high: float = 0.2
    """PPO: clipped above at 1 + clip_high; CISPO: the IS weight is truncated at 1 + clip_high."""
    loss_agg: str = "seq-mean-token-mean"
    """How per-token terms are averaged (reference.LOSS_AGGREGATIONS)."""
    importance_sampling_level: str = "token"
    """"token": one ratio per token; "sequence" (GSPO): exp of the masked mean log-ratio."""
    policy_loss: str = "ppo"
    """"ppo" (clipped surrogate) or "cispo" (detached, truncated IS weight x A x log-prob)."""
    delta: float | None = None
    """PPO only: cap on the unclipped ratio (two-sided clipping); None disables it."""
    rollout_is: str | None = None
    """Sampler-mismatch correction: None, "tis" (truncated weights) or "mis" (masking)."""
    rollout_is_level: str = "token"
    """Whether the sampler correction is per token or one value per sequence."""
    rollout_is_threshold: float = 2.0
    """TIS truncation bound; MIS keeps ratios inside [1 / threshold, threshold]."""
    max_completion_length: int | None = None
    """Fixed divisor B * max_completion_length of "seq-mean-token-sum-norm" (None: B * T)."""

    def check(self, *, has_rollout_logp: bool, has_num_tokens: bool) -> None:
        """Raise ValueError naming the argument when an option or a combination is invalid."""
        _check_choice("loss_agg", self.loss_agg, LOSS_AGGREGATIONS)
        _check_choice("importance_sampling_level", self.importance_sampling_level, IS_LEVELS)
        _check_choice("policy_loss", self.policy_loss, POLICY_LOSSES)
        if not (0 <= self.clip_low < 1 and self.clip_high >= 0):
            raise ValueError(f"need 0 <= clip_low < 1 and clip_high >= 0, got {self.clip_low}, {self.clip_high}")
        if not math.isfinite(self.beta):
            raise ValueError(f"beta must be finite, got {self.beta}")
        self._check_delta()
        self._check_rollout(has_rollout_logp)
        if has_num_tokens and self.loss_agg != "token-mean":
            raise ValueError(f"num_tokens divides loss_agg='token-mean' only, got loss_agg={self.loss_agg!r}")
        if self.max_completion_length is not None:
            if self.loss_agg != "seq-mean-token-sum-norm":
                raise ValueError("max_completion_length is the divisor of loss_agg='seq-mean-token-sum-norm' "
                                 f"only, got loss_agg={self.loss_agg!r}")
            if isinstance(self.max_completion_length, bool) or not isinstance(self.max_completion_length, int) \
                    or self.max_completion_length < 1:
                raise ValueError(f"max_completion_length must be a positive int, got {self.max_completion_length!r}")

    def _check_delta(self) -> None:
        if self.delta is None:
            return
        if self.policy_loss != "ppo":
            raise ValueError(f"delta caps the PPO ratio; it has no meaning for policy_loss={self.policy_loss!r}")
        if not self.delta >= 1 + self.clip_high:
            raise ValueError(f"delta must be >= 1 + clip_high = {1 + self.clip_high}, got {self.delta}")

    def _check_rollout(self, has_rollout_logp: bool) -> None:
        if self.rollout_is is None:
            if has_rollout_logp:
                raise ValueError("rollout_logp is given but rollout_is is None; choose 'tis' or 'mis'")
            return
        _check_choice("rollout_is", self.rollout_is, ROLLOUT_IS_MODES)
        _check_choice("rollout_is_level", self.rollout_is_level, IS_LEVELS)
        if not has_rollout_logp:
            raise ValueError(f"rollout_is={self.rollout_is!r} needs rollout_logp (the sampler's log-probs)")
        if not self.rollout_is_threshold >= 1.0 or math.isinf(self.rollout_is_threshold):
            raise ValueError(f"rollout_is_threshold must be finite and >= 1, got {self.rollout_is_threshold}")


def _check_choice(name: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
