"""Accuracy reward per problem type, table-driven, in training and evaluation rules."""

import math

import pytest

from videorft.engine.rewards import (
    EVALUATION,
    MRA_THRESHOLDS,
    TRAINING,
    accuracy_reward,
    check_problem_type,
    check_solution,
    eval_rules,
    released_mean_relative_accuracy,
)
from videorft.loaders.schema import PROBLEM_TYPES


def wrap(answer: str) -> str:
    return f"<think>Let me look at the video.</think><answer>{answer}</answer>"


MULTIPLE_CHOICE = [
    # completion, solution, training score, lenient evaluation score
    (wrap("B"), "<answer>B</answer>", 1.0, 1.0),
    (wrap(" B "), "<answer>B</answer>", 1.0, 1.0),
    (wrap("B."), "<answer>B</answer>", 0.0, 1.0),
    (wrap("(B)"), "<answer>B</answer>", 0.0, 1.0),
    (wrap("B. green"), "<answer>B</answer>", 0.0, 1.0),
    (wrap("b"), "<answer>B</answer>", 0.0, 0.0),
    (wrap("C"), "<answer>B</answer>", 0.0, 0.0),
    (wrap("The answer is B"), "<answer>B</answer>", 0.0, 1.0),
    (wrap("Answer is: (B)"), "<answer>B</answer>", 0.0, 1.0),
    (wrap("Option A looks wrong, so the final answer is option D."), "<answer>D</answer>", 0.0, 1.0),
    (wrap("I think B"), "<answer>B</answer>", 0.0, 0.0),
    (wrap("A red ball"), "<answer>A</answer>", 0.0, 0.0),
    (wrap(""), "<answer>B</answer>", 0.0, 0.0),
    (wrap("Ｂ"), "<answer>B</answer>", 0.0, 0.0),
    ("B", "<answer>B</answer>", 0.0, 1.0),  # no tags: training has no answer; evaluation reads the output
    ("<answer>B</answer>", "B", 1.0, 1.0),  # untagged ground truth
]


@pytest.mark.parametrize("completion,solution,train,lenient", MULTIPLE_CHOICE)
def test_multiple_choice(completion, solution, train, lenient):
    assert accuracy_reward(completion, solution, "multiple choice") == train
    assert accuracy_reward(completion, solution, "multiple choice", eval_rules(lenient_choice=True)) == lenient


def test_multiple_choice_evaluation_is_exact_unless_lenient():
    assert accuracy_reward(wrap("(B)"), "<answer>B</answer>", "multiple choice", EVALUATION) == 0.0
    assert accuracy_reward("B", "<answer>B</answer>", "multiple choice", EVALUATION) == 1.0


NUMERICAL = [
    ("3", "3", 1.0),
    ("3.0", "3", 0.0),           # decimal-point consistency, as released
    ("3", "3.0", 0.0),
    ("3.00", "3.0", 1.0),
    ("3.14159", "3.14", 1.0),    # equal to two decimals
    ("3.15", "3.14", 0.0),
    ("-2", "-2", 1.0),
    ("−2", "-2", 1.0),           # Unicode minus
    ("2", "-2", 0.0),
    ("1,000", "1000", 1.0),      # thousands separator is not a decimal mark
    ("12,345.5", "12345.5", 1.0),
    ("3,5", "3.5", 1.0),         # decimal comma
    ("1,5,6", "156", 0.0),
    ("42 apples", "42", 0.0),
    ("nan", "3", 0.0),
    ("inf", "3", 0.0),
    ("", "3", 0.0),
    ("1e3", "1000", 1.0),
]


@pytest.mark.parametrize("answer,truth,expected", NUMERICAL)
def test_numerical(answer, truth, expected):
    assert accuracy_reward(wrap(answer), f"<answer>{truth}</answer>", "numerical") == expected


REGRESSION = [
    ("10", "10", 1.0),
    ("9", "10", 0.9),
    ("12", "10", 0.8),
    ("25", "10", 0.0),           # relative error clipped to 1
    ("-10", "10", 0.0),
    ("0", "0", 1.0),             # an exact zero is right (the released epsilon scored it 0)
    ("0.5", "0", 0.0),
    ("1,000", "1250", 0.8),
    ("ten", "10", 0.0),
]


@pytest.mark.parametrize("answer,truth,expected", REGRESSION)
def test_regression_training(answer, truth, expected):
    got = accuracy_reward(wrap(answer), f"<answer>{truth}</answer>", "regression")
    assert math.isclose(got, expected, abs_tol=1e-6)


MRA = [
    ("10", "10", 1.0),
    ("9.8", "10", 1.0),   # rel 0.02 is below every 1 - t (0.50 .. 0.05)
    ("9.3", "10", 0.9),   # rel 0.07: passes t = 0.50 .. 0.90, fails 0.95
    ("8.8", "10", 0.8),   # rel 0.12: passes t = 0.50 .. 0.85
    ("7.2", "10", 0.5),   # rel 0.28: passes t = 0.50 .. 0.70
    ("4", "10", 0.0),     # rel 0.6 >= 0.5
    ("0", "0", 1.0),
    ("x", "10", 0.0),
]


@pytest.mark.parametrize("answer,truth,expected", MRA)
def test_regression_mra_in_evaluation(answer, truth, expected):
    got = accuracy_reward(wrap(answer), f"<answer>{truth}</answer>", "regression", EVALUATION)
    assert math.isclose(got, expected, abs_tol=1e-9)


# (answer, truth, official MRA, the released script's float32 MRA): they part only on threshold boundaries
RELEASED_MRA = [
    ("5", "4", 0.6, 0.5),      # rel 0.25 = 1 - 0.75: official counts it, float32 drops it
    ("3", "2", 0.1, 0.0),      # rel 0.5 = 1 - 0.5
    ("150", "100", 0.1, 0.0),
    ("9", "10", 0.9, 0.9),     # rel 0.1: float32 still passes 0.90
    ("9.3", "10", 0.9, 0.9),
    ("4", "4", 1.0, 1.0),
    ("x", "4", 0.0, 0.0),
]


@pytest.mark.parametrize("answer,truth,official,released", RELEASED_MRA)
def test_released_float32_mra_is_opt_in(answer, truth, official, released):
    solution = f"<answer>{truth}</answer>"
    assert math.isclose(accuracy_reward(wrap(answer), solution, "regression", eval_rules()), official, abs_tol=1e-9)
    got = accuracy_reward(wrap(answer), solution, "regression", eval_rules(released_mra=True))
    assert math.isclose(got, released, abs_tol=1e-6)
    assert math.isclose(released_mean_relative_accuracy(answer, truth), released, abs_tol=1e-6)


def test_mra_thresholds():
    assert len(MRA_THRESHOLDS) == 10
    assert MRA_THRESHOLDS[0] == 0.5 and math.isclose(MRA_THRESHOLDS[-1], 0.95)


OCR = [
    ("STOP", "STOP", 1.0),
    ("EXIT ONLY", "EXIT ONLY", 1.0),
    ("EXIT", "EXIT ONLY", 0.5),          # one deletion over two words
    ("EXIT ONLY NOW", "EXIT ONLY", 0.5),  # one insertion
    ("exit only", "EXIT ONLY", 0.0),     # case-sensitive, as released
    ("a b c d e", "X", 0.0),             # WER above 1 clips to 0
    ("café ouvert", "café ouvert", 1.0),
]


@pytest.mark.parametrize("answer,truth,expected", OCR)
def test_ocr(answer, truth, expected):
    assert math.isclose(accuracy_reward(wrap(answer), f"<answer>{truth}</answer>", "OCR"), expected)


def test_word_error_rate_edits_whole_words():
    from videorft.engine.rewards.text_metrics import word_error_rate

    assert word_error_rate("EXIT ONLY", "EXIT LEFT") == 0.5             # one substitution
    assert word_error_rate("EXIT ONLY", "ONLY EXIT") == 1.0             # a swap is two edits
    assert word_error_rate("EXIT ONLY", "EXIT ONLYYYY") == 0.5          # a word, however misspelt, is one edit
    assert word_error_rate("a  b\tc", "a b c") == 0.0                   # any whitespace separates words
    assert word_error_rate("", "a b") == 2.0                            # an empty reference counts as one word


def test_free_form_rouge():
    truth = "<answer>The red ball rolls to the left.</answer>"
    same = accuracy_reward(wrap("The red ball rolls to the left."), truth, "free-form")
    stemmed = accuracy_reward(wrap("the red balls rolled to the left"), truth, "free-form")
    reordered = accuracy_reward(wrap("to the left the red ball rolls"), truth, "free-form")
    partial = accuracy_reward(wrap("A blue cube stays still."), truth, "free-form")
    assert same == pytest.approx(1.0)
    assert stemmed == pytest.approx(1.0)  # stemming matches ball/balls and rolls/rolled; case is ignored
    assert 0.5 < reordered < 1.0          # same words, different order: ROUGE-2 and ROUGE-L drop
    assert 0.0 <= partial < 0.2
    # mean of ROUGE-1/2/L F: "red ball" vs "the red ball": R1 F=0.8, R2 F=2/3, RL F=0.8
    short = accuracy_reward(wrap("red ball"), "<answer>the red ball</answer>", "free-form")
    assert short == pytest.approx((0.8 + 2 / 3 + 0.8) / 3)


def test_free_form_unicode_scores_zero_not_error():
    assert accuracy_reward(wrap("红色的球"), "<answer>红色的球</answer>", "free-form") == 0.0


@pytest.mark.parametrize("problem_type", PROBLEM_TYPES)
@pytest.mark.parametrize("completion", [
    "", "no tags at all", "<think>only thinking</think>", "<answer></answer>", "<answer>   </answer>",
])
def test_missing_or_empty_answer_scores_zero(problem_type, completion):
    truth = "<answer>3</answer>"
    assert accuracy_reward(completion, truth, problem_type) == 0.0


def test_text_outside_tags_does_not_change_accuracy():
    messy = "Sure! <think>hm</think> <answer>B</answer> trailing words"
    assert accuracy_reward(messy, "<answer>B</answer>", "multiple choice") == 1.0


def test_first_answer_block_is_scored():
    two = "<think>x</think><answer>C</answer><answer>B</answer>"
    assert accuracy_reward(two, "<answer>B</answer>", "multiple choice") == 0.0


@pytest.mark.parametrize("bad", ["multiple-choice", "Multiple Choice", "numeric", "", "ocr"])
def test_unknown_problem_type_is_rejected(bad):
    with pytest.raises(ValueError, match="problem_type"):
        accuracy_reward(wrap("B"), "<answer>B</answer>", bad)
    with pytest.raises(ValueError, match="problem_type"):
        check_problem_type(bad)


def test_unknown_problem_type_gets_a_hint():
    with pytest.raises(ValueError, match="did you mean 'multiple choice'"):
        check_problem_type("multiple-choice")


@pytest.mark.parametrize("problem_type", PROBLEM_TYPES)
def test_check_problem_type_accepts_the_five(problem_type):
    assert check_problem_type(problem_type) == problem_type


def test_check_solution():
    assert check_solution("<answer> 4.5 </answer>", "numerical") == "4.5"
    assert check_solution("B", "multiple choice") == "B"
    with pytest.raises(ValueError, match="not a number"):
        check_solution("<answer>four</answer>", "regression")
    with pytest.raises(ValueError, match="no answer"):
        check_solution("<answer> </answer>", "OCR")
    with pytest.raises(ValueError, match="no answer"):
        accuracy_reward(wrap("B"), "", "multiple choice")


def test_training_rules_are_the_default():
    assert TRAINING.regression == "relative" and not TRAINING.lenient_choice
    assert not TRAINING.whole_output_fallback
    assert EVALUATION.whole_output_fallback and EVALUATION.regression == "mra"
