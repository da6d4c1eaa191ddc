"""VideoRFT rewards, the one place where completions are scored (training, evaluation, curation).

    accuracy_reward(completion, solution, problem_type, rules=TRAINING) -> float in [0, 1]
    format_reward(completion) -> 1.0 / 0.0
    SemanticScorer(encoder_path, ...).embed_video(clip) / .score(texts, video_embedding)
    GroupScorer(config, semantic).score_group(completions, lengths, solution, problem_type, emb)

The semantic scorer imports transformers lazily, so the text rewards stay cheap to import.
"""

from videorft.engine.rewards.accuracy import (
    EVALUATION,
    MRA_THRESHOLDS,
    TRAINING,
    ScoringRules,
    accuracy_reward,
    check_problem_type,
    check_solution,
    eval_rules,
    mean_relative_accuracy,
    released_mean_relative_accuracy,
)
from videorft.engine.rewards.answers import extract_answer, format_reward, solution_answer, think_text
from videorft.engine.rewards.choice import choice_letter
from videorft.engine.rewards.group import REWARD_FUNCTIONS, GroupRewards, GroupScorer, length_bonus
from videorft.engine.rewards.semantic import SemanticScorer
from videorft.engine.rewards.sentences import reasoning_span, split_sentences

__all__ = [
    "EVALUATION", "MRA_THRESHOLDS", "REWARD_FUNCTIONS", "TRAINING", "GroupRewards", "GroupScorer",
    "ScoringRules", "SemanticScorer", "accuracy_reward", "check_problem_type", "check_solution",
    "choice_letter", "eval_rules", "extract_answer", "format_reward", "length_bonus",
    "mean_relative_accuracy", "reasoning_span", "released_mean_relative_accuracy", "solution_answer",
    "split_sentences", "think_text",
]
