"""The registry of question kinds and the problem type each one produces."""

from __future__ import annotations

from videorft.loaders.synth.questions import BASIC_KINDS
from videorft.loaders.synth.questions_events import EVENT_KINDS

KINDS = {**BASIC_KINDS, **EVENT_KINDS}
"""kind -> (choose, build); see loaders/synth/questions.py."""

PROBLEM_TYPE_OF = {
    "count": "multiple choice",
    "colour_large": "multiple choice",
    "direction": "multiple choice",
    "event_order": "multiple choice",
    "colour_change": "multiple choice",
    "count_number": "numerical",
    "appear_time": "numerical",
    "sign_text": "OCR",
    "distance": "regression",
    "duration": "regression",
    "describe": "free-form",
}
"""kind -> the VideoRFT problem type of its questions."""

assert set(PROBLEM_TYPE_OF) == set(KINDS), "every kind needs a problem type"
