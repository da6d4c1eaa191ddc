"""Scoring a GRPO group: G completions for one prompt -> total rewards [G] and per-function values.

R = R_a + R_f + 1[R_a > 0] * R_s (+ length bonus), each term switchable by RewardConfig:
`functions` lists the terms summed into the total, `semantic.gate_on_accuracy` applies the gate,
`length_bonus.enabled` adds the released recipe's bonus. Accuracy is computed even when it is not
summed, because the gate and the bonus read it; every computed term is returned for logging.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Sequence

import torch

from videorft.engine.config import LengthBonusConfig, RewardConfig
from videorft.engine.rewards.accuracy import TRAINING, ScoringRules, accuracy_reward, check_problem_type
from videorft.engine.rewards.answers import format_reward
from videorft.engine.rewards.semantic import SemanticScorer
from videorft.engine.rewards.sentences import reasoning_span
from videorft.loaders.clip import VideoClip

REWARD_FUNCTIONS = ("accuracy", "format", "semantic")
"""Names RewardConfig.functions may list."""


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
        if name not in REWARD_FUNCTIONS:
            close = difflib.get_close_matches(name, REWARD_FUNCTIONS, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"rewards.functions: unknown reward {name!r}; choose from {list(REWARD_FUNCTIONS)}{hint}")
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
        values = {"accuracy": accuracy,
                  "format": torch.tensor([format_reward(c) for c in completions], dtype=torch.float32)}
        if self.semantic is not None:
            values["semantic"] = self._semantic(completions, accuracy, video_embedding)
        total = torch.zeros(len(completions), dtype=torch.float32)
        for name in self.functions:
            total += values[name]
        if self.config.length_bonus.enabled:
            lengths_t = torch.as_tensor(lengths, dtype=torch.long).cpu()
            values["length_bonus"] = length_bonus(accuracy, lengths_t, self.config.length_bonus)
            total += values["length_bonus"]
        return GroupRewards(total=total, per_function=values)

    def _semantic(self, completions: Sequence[str], accuracy: torch.Tensor,
                  video_embedding: torch.Tensor | None) -> torch.Tensor:
        """fp32 [G]; gated completions (accuracy <= 0) are not even encoded."""
        out = torch.zeros(len(completions), dtype=torch.float32)
        if video_embedding is None:
            return out
        keep = [i for i in range(len(completions))
                if not (self.config.semantic.gate_on_accuracy and accuracy[i] <= 0)]
        if keep:
            texts = [reasoning_span(completions[i]) for i in keep]
            out[keep] = torch.tensor(self.semantic.score(texts, video_embedding), dtype=torch.float32)
        return out
