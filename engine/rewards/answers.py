"""Reading a completion: the answer inside <answer> tags, the reasoning inside <think> tags, and
the format reward that checks the whole completion has exactly that shape.

Every scorer (training rewards, evaluation, CoT curation) reads answers through `extract_answer`,
so a completion means the same thing everywhere.
"""

from __future__ import annotations

import re

_ANSWER = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)
_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)

# Text that may not contain any of the four tag markers, so each block appears exactly once.
_NO_TAG = r"(?:(?!</?think>|</?answer>).)*"
_FORMAT = re.compile(rf"<think>{_NO_TAG}</think>\s*<answer>{_NO_TAG}</answer>", re.DOTALL)


def extract_answer(text: str, whole_output_fallback: bool = False) -> str:
    """The stripped text of the first <answer>...</answer> block of `text`.

    Without an answer block the result is "" (training: no answer, no reward), or, with
    `whole_output_fallback`, the whole stripped text (evaluation: VideoRFT's benchmark scorer
    falls back to the raw output so that a model that forgets the tags can still be graded).
    """
    match = _ANSWER.search(text)
    if match is not None:
        return match.group(1).strip()
    return text.strip() if whole_output_fallback else ""


def solution_answer(solution: str) -> str:
    """The ground-truth answer of a record: the <answer> block, or the whole string when untagged.

    Raises ValueError when it is empty: a record without an answer cannot be scored, and the
    released code's habit of comparing "" with "" (a free 1.0) must not happen here.
    """
    answer = extract_answer(solution, whole_output_fallback=True)
    if not answer:
        raise ValueError(f"solution {solution!r} holds no answer text")
    return answer


def think_text(completion: str) -> str | None:
    """Content of the first <think>...</think> block, or None when the completion has none."""
    match = _THINK.search(completion)
    return match.group(1) if match is not None else None


def format_reward(completion: str) -> float:
    """1.0 when the completion is exactly `<think>...</think>` then `<answer>...</answer>`, else 0.0.

    The match covers the whole string (no text before <think> or after </answer>; only
    whitespace between the blocks), as in VideoRFT's fullmatch rule. It is one step stricter than
    the released regex: the blocks may not contain the tag markers themselves, so a completion
    with two answer blocks or a nested <think> is not rewarded for its format.
    """
    return 1.0 if _FORMAT.fullmatch(completion) is not None else 0.0
