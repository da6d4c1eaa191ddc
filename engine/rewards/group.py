"""Scoring a GRPO group: G completions for one prompt -> total rewards [G] and per-function values.

R = R_a + R_f + 1[R_a > 0] * R_s (+ length bonus), each term switchable by RewardConfig:
`functions` lists the terms summed into the total, `semantic.gate_on_accuracy` applies the gate,
`length_bonus.enabled` adds the released recipe's bonus. Each term is one entry of REWARD_TERMS
(name -> function of the group). Accuracy is computed even when it is not summed, because the
gate and the bonus read it, and format always (it is cheap); every computed term is returned for
logging.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from videorft.engine.config import LengthBonusConfig, RewardConfig
from videorft.engine.config_loader import did_you_mean
from videorft.engine.rewards.accuracy import TRAINING, ScoringRules, accuracy_reward, check_problem_type
from videorft.engine.rewards.answers import format_reward
from videorft.engine.rewards.semantic import SemanticScorer
from videorft.engine.rewards.sentences import reasoning_span
from videorft.loaders.clip import VideoClip


@dataclass(frozen=True)
class Group:
    """What a reward term sees of one group of G completions."""

    completions: Sequence[str]
    """The G decoded texts."""
    accuracy: torch.Tensor
    """fp32 [G]: the accuracy reward, which the other terms may read (the semantic gate)."""
    video_embedding: torch.Tensor | None
    """The prompt's clip embedding (`GroupScorer.embed_video`), or None without a usable video."""


def _format_term(scorer: "GroupScorer", group: Group) -> torch.Tensor:
    return torch.tensor([format_reward(c) for c in group.completions], dtype=torch.float32)  # [G]


def _semantic_term(scorer: "GroupScorer", group: Group) -> torch.Tensor:
    """fp32 [G]; gated completions (accuracy <= 0) are not even encoded."""
    out = torch.zeros(len(group.completions), dtype=torch.float32)
    if group.video_embedding is None:
        return out
    gate = scorer.config.semantic.gate_on_accuracy
    keep = [i for i in range(len(group.completions)) if not (gate and group.accuracy[i] <= 0)]
    if keep:
        texts = [reasoning_span(group.completions[i]) for i in keep]
        out[keep] = torch.tensor(scorer.semantic.score(texts, group.video_embedding), dtype=torch.float32)
    return out


RewardTerm = Callable[["GroupScorer", Group], torch.Tensor]

REWARD_TERMS: dict[str, RewardTerm] = {
    "accuracy": lambda scorer, group: group.accuracy,
    "format": _format_term,
    "semantic": _semantic_term,
}
"""Reward name -> fp32 [G] values of a group; the names RewardConfig.functions may list."""
REWARD_FUNCTIONS = tuple(REWARD_TERMS)
"""Names RewardConfig.functions may list."""
ALWAYS_COMPUTED = ("accuracy", "format")
"""Terms computed (and logged) whether or not they are summed."""


@dataclass
class GroupRewards:
    """Rewards of one group of G completions."""

    total: torch.Tensor
    """fp32 [G]: the sum that drives the group-relative advantages."""
    per_function: dict[str, torch.Tensor]
    """name -> fp32 [G] for logging: accuracy, format, semantic (after the gate), length_bonus."""


def check_functions(functions: Sequence[str]) -> list[str]:
    """Validate RewardConfig.functions; unknown or repeated names raise ValueError with a hint."""
    seen: list[str] = []
    for name in functions:
        if name not in REWARD_TERMS:
            raise ValueError(f"rewards.functions: unknown reward {name!r}; choose from {list(REWARD_FUNCTIONS)}"
                             f"{did_you_mean(name, REWARD_FUNCTIONS)}")
        if name in seen:
            raise ValueError(f"rewards.functions: {name!r} is listed twice")
        seen.append(name)
    return seen


def length_bonus(accuracy: torch.Tensor, lengths: torch.Tensor, cfg: LengthBonusConfig) -> torch.Tensor:
    """fp32 [G] bonus: `cfg.bonus` for correct completions of min..max tokens, when enough are correct.

    accuracy [G]; lengths [G] completion token counts (including the end-of-sequence token, as
    the released code counted them). Correct means accuracy > correct_threshold; no completion
    gets the bonus unless at least `min_correct` of the group are correct.
    """
    correct = accuracy > cfg.correct_threshold  # [G]
    if int(correct.sum()) < cfg.min_correct:
        return torch.zeros_like(accuracy)
    in_window = (lengths >= cfg.min_tokens) & (lengths <= cfg.max_tokens)  # [G]
    return (correct & in_window).float() * cfg.bonus


class GroupScorer:
    """Computes a group's rewards from RewardConfig; one instance serves a whole run."""

    def __init__(self, config: RewardConfig, semantic: SemanticScorer | None = None,
                 rules: ScoringRules = TRAINING):
        self.config = config
        self.functions = check_functions(config.functions)
        if "semantic" in self.functions and semantic is None:
            raise ValueError("rewards.functions lists 'semantic' but no SemanticScorer was given "
                             "(set rewards.semantic.encoder_path)")
        self.semantic = semantic if "semantic" in self.functions else None
        self.rules = rules
        self.computed = set(ALWAYS_COMPUTED) | set(self.functions)
        """The terms score_group computes: the summed ones plus ALWAYS_COMPUTED."""

    @classmethod
    def from_config(cls, config: RewardConfig, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32, rules: ScoringRules = TRAINING) -> "GroupScorer":
        """Build the scorer, loading the SigLIP encoder when `semantic` is among the functions."""
        semantic = None
        if "semantic" in check_functions(config.functions):
            cfg = config.semantic
            if not cfg.encoder_path:
                raise ValueError("rewards.semantic.encoder_path is empty but rewards.functions lists 'semantic'")
            semantic = SemanticScorer(cfg.encoder_path, device=device, dtype=dtype, weight=cfg.weight,
                                      pooling=cfg.pooling, num_frames=cfg.num_frames)
        return cls(config, semantic, rules)

    def embed_video(self, clip: VideoClip | None) -> torch.Tensor | None:
        """The clip's embedding for `score_group`, or None when the semantic reward is off or no clip."""
        if self.semantic is None or clip is None:
            return None
        return self.semantic.embed_video(clip)

    def score_group(self, completions: Sequence[str], lengths: Sequence[int] | torch.Tensor,
                    solution: str, problem_type: str,
                    video_embedding: torch.Tensor | None = None) -> GroupRewards:
        """Rewards of G completions to one prompt.

        completions: G decoded texts (special tokens skipped); lengths: G token counts;
        solution/problem_type: the record's fields; video_embedding: `embed_video(clip)`, or None
        for records without a usable video (their semantic reward is 0).
        """
        check_problem_type(problem_type)
        if len(lengths) != len(completions):
            raise ValueError(f"got {len(completions)} completions but {len(lengths)} lengths")
        accuracy = torch.tensor([accuracy_reward(c, solution, problem_type, self.rules) for c in completions],
                                dtype=torch.float32)  # [G]
        group = Group(completions, accuracy, video_embedding)
        values = {name: term(self, group) for name, term in REWARD_TERMS.items() if name in self.computed}
        total = torch.zeros(len(completions), dtype=torch.float32)
        for name in self.functions:
            total += values[name]
        if self.config.length_bonus.enabled:
            lengths_t = torch.as_tensor(lengths, dtype=torch.long).cpu()
            values["length_bonus"] = length_bonus(accuracy, lengths_t, self.config.length_bonus)
            total += values["length_bonus"]
        return GroupRewards(total=total, per_function=values)
