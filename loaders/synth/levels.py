"""Vocabulary and difficulty levels of the synthetic video world.

A level fixes what a scene may contain (colours, shapes, how many objects, how far they move,
how close in time events may be) and which questions are asked about it. "easy" is built for a
tiny VLM that must learn from pixels in minutes on a CPU: few, large, well-separated shapes in
four primary colours and multiple-choice questions about colour, direction and count.
"""

from __future__ import annotations

from dataclasses import dataclass

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 235),
    "yellow": (240, 215, 40),
    "purple": (140, 60, 200),
    "orange": (245, 140, 30),
    "white": (240, 240, 240),
    "cyan": (40, 210, 220),
    "magenta": (225, 50, 200),
    "pink": (250, 160, 195),
    "gray": (140, 140, 140),
}
"""Colour name -> RGB. Every colour stands apart from the grey background by hue or brightness."""

BACKGROUND = (100, 100, 110)
"""RGB of the empty scene: a mid grey. On a near-black background the tiny pipeline's vision tower
learned brightness first and could not tell red from blue (equally dark) for hundreds of steps
(colour of one shape, answer-letter loss: chance after 100 steps, vs 0.73 on this grey)."""

BACKGROUND_NAME = "grey"
"""How reasoning and captions name BACKGROUND."""

SIGN_PLATE = (235, 232, 220)
"""RGB of a sign's plate; its text is drawn in SIGN_INK."""

SIGN_INK = (20, 20, 20)
"""RGB of sign lettering."""

SIGN_WORDS = ("STOP", "EXIT", "OPEN", "HELLO", "GO", "WAIT", "LEFT", "RIGHT", "PUSH", "PULL")
"""Words a sign can show (upper case, so they stay legible at small sizes)."""

SHAPES = ("circle", "square", "triangle", "star", "diamond", "ring", "cross", "rectangle")
"""Every shape the renderer draws."""

DIRECTIONS = ("left", "right", "up", "down")
"""Motions of a moving object; "still" objects do not move."""


@dataclass(frozen=True)
class Level:
    """What scenes and questions of one difficulty contain."""

    name: str
    """Level name as written in SynthConfig.difficulty."""
    colours: tuple[str, ...]
    """Colours objects may take (every object in a scene has its own colour)."""
    shapes: tuple[str, ...]
    """Shapes objects may take."""
    min_objects: int
    """Fewest shapes in a scene."""
    max_objects: int
    """Most shapes in a scene (further capped by SynthConfig.max_objects)."""
    directions: tuple[str, ...]
    """Directions a moving object may take."""
    travel: tuple[float, float]
    """Distance a mover covers, as a fraction of the frame side (low, high)."""
    large: float
    """Half extent of a large shape, as a fraction of the frame side."""
    small: float
    """Half extent of a small shape, as a fraction of the frame side."""
    events: bool
    """Whether objects may appear late, vanish early or change colour (distractor events)."""
    event_gap_s: float
    """Least time between two events that a question compares."""
    distractors_move: bool
    """Whether objects that a question is not about may move."""
    kinds: tuple[str, ...]
    """Question kinds asked at this level (see loaders/synth/questions.py)."""
    shuffle_options: bool = True
    """Shuffle multiple-choice options; when False they keep the vocabulary's order (red is always
    "A"), so a tiny model can map what it sees straight to a letter (answers stay balanced)."""


_BASIC_KINDS = ("count", "colour_large", "direction")
_ALL_KINDS = ("count", "colour_large", "direction", "count_number", "event_order", "colour_change",
              "sign_text", "appear_time", "distance", "duration", "describe")

LEVELS: dict[str, Level] = {
    "easy": Level(
        name="easy", colours=("red", "green", "blue", "yellow"), shapes=("circle", "square", "triangle"),
        min_objects=1, max_objects=3, directions=("left", "right"), travel=(0.45, 0.6),
        large=0.17, small=0.1, events=False, event_gap_s=1.0, distractors_move=False, kinds=_BASIC_KINDS,
        shuffle_options=False),
    "medium": Level(
        name="medium", colours=("red", "green", "blue", "yellow", "purple", "orange", "white", "cyan"),
        shapes=("circle", "square", "triangle", "star", "diamond", "ring", "cross"),
        min_objects=1, max_objects=4, directions=DIRECTIONS, travel=(0.3, 0.55),
        large=0.15, small=0.09, events=True, event_gap_s=1.0, distractors_move=True, kinds=_ALL_KINDS),
    "hard": Level(
        name="hard", colours=tuple(COLOURS), shapes=SHAPES,
        min_objects=2, max_objects=6, directions=DIRECTIONS, travel=(0.2, 0.5),
        large=0.13, small=0.075, events=True, event_gap_s=0.5, distractors_move=True, kinds=_ALL_KINDS),
}
"""The difficulty levels by name."""

ALL_KINDS = _ALL_KINDS
"""Every question kind the world can ask."""


def get_level(name: str) -> Level:
    """The level called `name`, or a ValueError listing the known ones."""
    try:
        return LEVELS[name]
    except KeyError:
        raise ValueError(f"synth.difficulty: unknown level {name!r}; choose from {sorted(LEVELS)}") from None
