"""The accuracy reward R_a in [0, 1] for the five VideoRFT answer types, for training and evaluation.

One scorer per type; `ScoringRules` switches the three places where evaluation reads answers
differently from training (lenient multiple-choice letters, MRA for regression, whole output
when the answer tags are missing), so both share this code instead of keeping copies.

Choices where the released code was quirky (each is tested):
- an empty predicted answer scores 0 for every type (the released code scored "" against an
  untagged solution as a match);
- numbers: thousands separators and decimal commas are read correctly (see numbers.py); the
  decimal-point consistency rule is kept: "3.0" against "3" scores 0, as released;
- regression in training: 1 - clip(|pred - gt| / |gt|, 0, 1), except that an exact answer always
  scores 1 (the released epsilon made an exact 0 against a ground truth of 0 score 0);
- OCR and free-form keep their training scorers in evaluation (the released benchmark scorer gave
  them 0; none of the six benchmarks contains them);
- MRA follows the official VSI-Bench rule (exact arithmetic; the released evaluation script's
  float32 version is available as `released_mra` for reproducing its numbers, see below).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

from videorft.engine.config_loader import did_you_mean
from videorft.engine.rewards.answers import extract_answer, solution_answer
from videorft.engine.rewards.choice import exact_choice, lenient_choice
from videorft.engine.rewards.numbers import has_decimal_point, parse_number
from videorft.engine.rewards.text_metrics import mean_rouge_f, word_error_rate
from videorft.loaders.schema import PROBLEM_TYPES

MRA_THRESHOLDS = tuple(0.5 + 0.05 * i for i in range(10))
"""Confidence thresholds 0.50, 0.55, ..., 0.95 of VSI-Bench's mean relative accuracy."""


@dataclass(frozen=True)
class ScoringRules:
    """How answers are read: training (exact, dense rewards) or evaluation (benchmark metrics)."""

    lenient_choice: bool = False
    """Read the option letter out of "(B)", "B. red", "the answer is B" instead of exact match."""
    regression: Literal["relative", "mra"] = "relative"
    """Regression score: 1 - clipped relative error (training) or MRA over 10 thresholds (evaluation)."""
    whole_output_fallback: bool = False
    """Score the whole output as the answer when it has no <answer> block."""
    released_mra: bool = False
    """Compute MRA in float32 as the released evaluation script does (see released_mean_relative_accuracy)."""


TRAINING = ScoringRules()
"""The rules of the training reward (VideoRFT's GRPO accuracy reward)."""
EVALUATION = ScoringRules(regression="mra", whole_output_fallback=True)
"""The rules of benchmark scoring (exact letters as released; set lenient_choice to opt in)."""


def eval_rules(lenient_choice: bool = False, released_mra: bool = False) -> ScoringRules:
    """EVALUATION with the lenient multiple-choice reading and the released float32 MRA switched
    on or off (EvalConfig.lenient_choice, EvalConfig.released_mra)."""
    return ScoringRules(lenient_choice=lenient_choice, regression="mra", whole_output_fallback=True,
                        released_mra=released_mra)


def check_problem_type(problem_type: str) -> str:
    """Return `problem_type` when it is one of PROBLEM_TYPES; else raise ValueError with a hint."""
    if problem_type in PROBLEM_TYPES:
        return problem_type
    raise ValueError(f"problem_type {problem_type!r} is not one of {list(PROBLEM_TYPES)}"
                     f"{did_you_mean(problem_type, PROBLEM_TYPES)}")


def check_solution(solution: str, problem_type: str) -> str:
    """Validate a record's ground truth for its type and return the answer text.

    Raises ValueError naming the field when the type is unknown, the solution is empty, or a
    numerical/regression solution is not a number. Dataset loaders call this once per record.
    """
    check_problem_type(problem_type)
    truth = solution_answer(solution)
    if problem_type in ("numerical", "regression") and parse_number(truth) is None:
        raise ValueError(f"solution {solution!r} of a {problem_type} record is not a number")
    return truth


def numerical_score(answer: str, truth: str) -> float:
    """1.0 when both are numbers written alike (both or neither with a decimal point) and equal to 2 decimals."""
    if has_decimal_point(answer) != has_decimal_point(truth):
        return 0.0
    pred, gt = parse_number(answer), parse_number(truth)
    if pred is None or gt is None:
        return 0.0
    return 1.0 if round(pred, 2) == round(gt, 2) else 0.0


def relative_error(pred: float, gt: float, eps: float) -> float:
    """|pred - gt| / (|gt| + eps); exactly 0 when pred == gt."""
    return 0.0 if pred == gt else abs(pred - gt) / (abs(gt) + eps)


def regression_score(answer: str, truth: str) -> float:
    """1 - relative error clipped to [0, 1] (the training reward for regression answers)."""
    pred, gt = parse_number(answer), parse_number(truth)
    if pred is None or gt is None:
        return 0.0
    return 1.0 - min(1.0, relative_error(pred, gt, eps=1e-9))


def mean_relative_accuracy(answer: str, truth: str) -> float:
    """VSI-Bench MRA: share of thresholds t in 0.50..0.95 with relative error < 1 - t."""
    pred, gt = parse_number(answer), parse_number(truth)
    if pred is None or gt is None:
        return 0.0
    rel = relative_error(pred, gt, eps=1e-8)
    return sum(rel < 1.0 - t for t in MRA_THRESHOLDS) / len(MRA_THRESHOLDS)


def released_mean_relative_accuracy(answer: str, truth: str) -> float:
    """MRA as VideoRFT's released evaluation script computes it: in float32 torch arithmetic.

    There the 1e-8 epsilon vanishes next to |gt| and the thresholds 0.5..0.95 are float32
    roundings, so an error exactly on a threshold (5 against 4, 3 against 2) falls on either side
    of it, unlike the official rule; on a VSI-Bench-shaped set this lowers the mean MRA by about
    one point (half a point of the VSI score). Kept only to reproduce the released numbers.
    """
    import torch

    pred, gt = parse_number(answer), parse_number(truth)
    if pred is None or gt is None:
        return 0.0
    p, g = torch.tensor(pred, dtype=torch.float32), torch.tensor(gt, dtype=torch.float32)
    rel = torch.abs(p - g) / (torch.abs(g) + 1e-8)                                 # float32 scalar
    thresholds = torch.arange(0.5, 0.95 + 0.05 / 2, 0.05, dtype=torch.float32)      # [10]
    return (rel < (1 - thresholds)).float().mean().item()


def ocr_score(answer: str, truth: str) -> float:
    """1 - word error rate, clipped to [0, 1]."""
    return max(0.0, 1.0 - word_error_rate(truth, answer))


def free_form_score(answer: str, truth: str) -> float:
    """Mean ROUGE-1/2/L F-measure with stemming, in [0, 1]."""
    return min(1.0, max(0.0, mean_rouge_f(truth, answer)))


def _scorer(problem_type: str, rules: ScoringRules) -> Callable[[str, str], float]:
    if problem_type == "multiple choice":
        return lenient_choice if rules.lenient_choice else exact_choice
    if problem_type == "numerical":
        return numerical_score
    if problem_type == "regression":
        if rules.regression != "mra":
            return regression_score
        return released_mean_relative_accuracy if rules.released_mra else mean_relative_accuracy
    if problem_type == "OCR":
        return ocr_score
    return free_form_score


def accuracy_reward(completion: str, solution: str, problem_type: str,
                    rules: ScoringRules = TRAINING) -> float:
    """Accuracy in [0, 1] of `completion` against the record's `solution` for its `problem_type`.

    `solution` is the record field ("<answer>B</answer>" or a bare "B"); `problem_type` is one of
    PROBLEM_TYPES (anything else raises ValueError). A completion without an answer, or with an
    empty one, scores 0.
    """
    check_problem_type(problem_type)
    truth = solution_answer(solution)
    answer = extract_answer(completion, whole_output_fallback=rules.whole_output_fallback)
    if not answer:
        return 0.0
    return float(_scorer(problem_type, rules)(answer, truth))
