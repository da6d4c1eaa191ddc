"""Multiple-choice answers: exact letter match for training, lenient letter reading for evaluation.

Training keeps VideoRFT's exact rule ("B" scores, "B." or "(B)" does not), so the policy learns
to answer with the bare letter the prompt asks for. Evaluation may opt in to `choice_letter`,
which reads the letter out of the usual ways models decorate it.
"""

from __future__ import annotations

import re

# A bare option letter, possibly wrapped or followed by its text: "B", "(B)", "[B]", "B.", "B) red", "B: red".
_LEADING = re.compile(r"[(\[]?([A-Z])[)\]]?(?:[.:)]|$)")
# A stated answer anywhere in longer text: "the answer is B", "Answer: (C)", "final answer is option D".
_STATED = re.compile(
    r"(?i:answer)(?:\s+(?i:is))?\s*:?\s*(?i:option\s*)?[(\[]?([A-Z])[)\]]?(?![A-Za-z])")
_DECORATION = str.maketrans("", "", "*_`\"'")


def exact_choice(answer: str, truth: str) -> float:
    """1.0 when the answer is exactly the ground-truth letter (after stripping spaces), else 0.0."""
    return 1.0 if answer and answer.strip() == truth.strip() else 0.0


def choice_letter(answer: str) -> str | None:
    """The option letter an answer names, or None when it names none unambiguously.

    Reads "B", "(B)", "[B]", "B.", "B. red", "B) red", "**B**" at the start, otherwise the last
    "answer is X" / "Answer: X" statement. A capital at the start followed by a word ("A red ball
    moves") is not read as a letter, since it is more likely an article than an option.
    """
    text = answer.strip().translate(_DECORATION).strip()
    leading = _LEADING.match(text)
    if leading is not None:
        return leading.group(1)
    stated = _STATED.findall(text)
    return stated[-1] if stated else None


def lenient_choice(answer: str, truth: str) -> float:
    """1.0 when the letter read from `answer` equals the letter read from `truth`, else 0.0."""
    got, want = choice_letter(answer), choice_letter(truth)
    return 1.0 if got is not None and got == want else 0.0
