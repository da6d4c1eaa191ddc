"""Sentence split of the semantic reward: decimals and abbreviations do not end sentences."""

import pytest

from videorft.engine.rewards import reasoning_span, split_sentences

SPLITS = [
    ("One. Two. Three.", ["One.", "Two.", "Three."]),
    ("The ball moves 3.5 m to the left. Then it stops.",
     ["The ball moves 3.5 m to the left.", "Then it stops."]),
    ("Some shapes, e.g. circles, move. Others stay.", ["Some shapes, e.g. circles, move.", "Others stay."]),
    ("Colours i.e. red and blue etc. are shown. Next.", ["Colours i.e. red and blue etc. are shown.", "Next."]),
    ("It is approx. 2 m away. Dr. Smith agrees.", ["It is approx. 2 m away.", "Dr. Smith agrees."]),
    ("Is it red? Yes! It is.", ["Is it red?", "Yes!", "It is."]),
    ('He said "stop." Then he left.', ['He said "stop."', "Then he left."]),
    ("Wait... Let me check.", ["Wait...", "Let me check."]),
    ("first line\nsecond line", ["first line", "second line"]),
    ("Para one.\n\nPara two.", ["Para one.", "Para two."]),
    ("价格是3.5元。然后停止。", ["价格是3.5元。", "然后停止。"]),
    ("Value 0.25 and version 1.2.3 stay whole", ["Value 0.25 and version 1.2.3 stay whole"]),
    ("", []),
    ("   ", []),
]


@pytest.mark.parametrize("text,expected", SPLITS)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


SPANS = [
    ("<think>The question asks for the colour. The video shows a red ball. It rolls.</think><answer>A</answer>",
     "The video shows a red ball. It rolls."),
    ("<think>It costs 3.5 dollars, e.g. cheap. The video shows coins.</think><answer>3.5</answer>",
     "The video shows coins."),
    ("<think>Only one sentence here.</think><answer>A</answer>", "Only one sentence here."),
    ("<think>  </think><answer>A</answer>", ""),
    ("No tags. The red ball moves.", "The red ball moves."),     # no <think>: the whole completion, as released
    ("<think>Hmm\nThe red ball moves left.</think>", "The red ball moves left."),
]


@pytest.mark.parametrize("completion,expected", SPANS)
def test_reasoning_span(completion, expected):
    assert reasoning_span(completion) == expected
