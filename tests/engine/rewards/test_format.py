"""Format reward (strict full match) and the shared answer extraction."""

import pytest

from videorft.engine.rewards import extract_answer, format_reward, think_text

FORMAT = [
    ("<think>reasoning</think><answer>B</answer>", 1.0),
    ("<think>multi\nline\nreasoning</think>\n\n<answer>\n3.5\n</answer>", 1.0),
    ("<think></think><answer></answer>", 1.0),                 # empty blocks still have the shape
    ("<think>思考 ünïcödé</think> <answer>红色</answer>", 1.0),
    (" <think>a</think><answer>B</answer>", 0.0),              # leading space
    ("<think>a</think><answer>B</answer>\n", 0.0),             # trailing newline
    ("Sure. <think>a</think><answer>B</answer>", 0.0),         # text before
    ("<think>a</think><answer>B</answer> done", 0.0),          # text after
    ("<think>a</think> so <answer>B</answer>", 0.0),           # text between
    ("<answer>B</answer>", 0.0),                               # no reasoning
    ("<think>a</think>", 0.0),                                 # no answer
    ("<answer>B</answer><think>a</think>", 0.0),               # wrong order
    ("<think>a</think><answer>B</answer><answer>C</answer>", 0.0),   # two answers
    ("<think>a<think>b</think><answer>B</answer>", 0.0),       # nested think
    ("<think>a</think><answer>B", 0.0),                        # truncated
    ("<THINK>a</THINK><ANSWER>B</ANSWER>", 0.0),               # tags are case-sensitive
    ("", 0.0),
]


@pytest.mark.parametrize("completion,expected", FORMAT)
def test_format_reward(completion, expected):
    assert format_reward(completion) == expected


EXTRACT = [
    ("<think>x</think><answer>B</answer>", "B"),
    ("<answer>  spaced out \n</answer>", "spaced out"),
    ("<answer>first</answer> <answer>second</answer>", "first"),
    ("<answer>multi\nline</answer>", "multi\nline"),
    ("no tags", ""),
    ("<answer>unterminated", ""),
    ("", ""),
]


@pytest.mark.parametrize("text,expected", EXTRACT)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_answer_whole_output_fallback():
    assert extract_answer("  The answer is B. ", whole_output_fallback=True) == "The answer is B."
    assert extract_answer("<answer>C</answer> extra", whole_output_fallback=True) == "C"


def test_think_text():
    assert think_text("<think> a. b </think><answer>x</answer>") == " a. b "
    assert think_text("<answer>x</answer>") is None
