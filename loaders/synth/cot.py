"""Reference chains of thought written from the scene graph, so SFT can run before curation.

"full" follows VideoRFT's five cognitive steps: browse the whole video, understand what the
question wants, locate the moments that matter, reason over what is seen there, and answer
after a check. "brief" keeps only the finding and the answer, for the tiny CPU pipeline,
where every generated token costs time.
"""

from __future__ import annotations

from typing import Literal

from videorft.loaders.synth.levels import BACKGROUND_NAME
from videorft.loaders.synth.phrases import inventory
from videorft.loaders.synth.questions import Question
from videorft.loaders.synth.scene import Scene

CotStyle = Literal["full", "brief"]

ANSWER_FORM = {
    "multiple choice": "so I have to pick the single option letter that fits",
    "numerical": "so the answer is one number",
    "OCR": "so I have to copy the text exactly as it is printed",
    "free-form": "so I should answer in a few plain sentences",
    "regression": "so I need a numeric estimate, where being close is what counts",
}
"""Step 2 (understand the question): what form the answer takes, per problem type."""


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _final(q: Question) -> str:
    if q.problem_type == "free-form":
        return "Putting these together gives my description."
    return f"So the answer is {q.answer_phrase}."


def full_reasoning(scene: Scene, q: Question) -> str:
    """The five-step reasoning text (without tags)."""
    steps = [
        # 1. browse the video
        f"Let me watch the whole clip first. It lasts about {scene.duration_s:g} seconds and shows "
        f"{inventory(scene)} on a {BACKGROUND_NAME} background.",
        # 2. understand the question
        f"The question is about {q.goal}, {ANSWER_FORM[q.problem_type]}.",
        # 3. locate the relevant moments
        f"What matters here is {q.moments}.",
        # 4. reason over what is seen
        " ".join(_sentence(o) for o in q.observations) + f" So {q.conclusion}.",
        # 5. answer, with a check
        f"Let me double-check: {q.check}. {_final(q)}",
    ]
    return " ".join(steps)


def brief_reasoning(scene: Scene, q: Question) -> str:
    """One or two short sentences: the finding, then the answer."""
    return f"{_sentence(q.conclusion)} {_final(q)}"


def reference_process(scene: Scene, q: Question, style: CotStyle = "full") -> str:
    """The record's `process` field: "<think>...</think>"."""
    if style == "full":
        text = full_reasoning(scene, q)
    elif style == "brief":
        text = brief_reasoning(scene, q)
    else:
        raise ValueError(f"synth.cot_style must be 'full' or 'brief', got {style!r}")
    return f"<think>{text}</think>"


def reference_solution(q: Question) -> str:
    """The record's `solution` field: "<answer>...</answer>"."""
    return f"<answer>{q.answer}</answer>"
