"""Questions about a synthetic scene, with answers that follow from its scene graph.

Each question kind works answer-first: `choose` draws the answer (and, for multiple choice,
the position of the right option) from balanced decks, so no answer value or letter
dominates a split; `build` then asks the SceneBuilder for a scene in which that answer holds,
adds distractors, and words the question. The Question also carries the evidence a careful
viewer would use, from which loaders/synth/cot.py writes the reference reasoning.

Kinds (problem type): count, colour_large, direction, event_order, colour_change (multiple
choice); count_number, appear_time (numerical); sign_text (OCR); distance, duration
(regression); describe (free-form).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from videorft.loaders.synth.builder import SceneBuilder
from videorft.loaders.synth.levels import Level
from videorft.loaders.synth.phrases import MOTION_WORDS, full_name, join_words, place_phrase, when

LETTERS = "ABCDEFGH"


@dataclass
class Question:
    """One question about a scene, its answer, and the evidence behind the answer."""

    kind: str
    problem_type: str
    problem: str
    """Question text without the options."""
    answer: str
    """Ground truth as it goes inside <answer></answer>: a letter, number, word or sentence."""
    options: list[str] = field(default_factory=list)
    """ "A. red"-style option lines for multiple choice, else empty."""
    params: dict[str, Any] = field(default_factory=dict)
    """What the question refers to (object ids, option events), enough to re-derive the answer."""
    goal: str = ""
    """What the question wants, as a clause ("which way the red circle moves")."""
    moments: str = ""
    """Where in the video the evidence is ("from the beginning to the end")."""
    observations: list[str] = field(default_factory=list)
    """What a viewer sees that settles the question, in order."""
    conclusion: str = ""
    """The finding that gives the answer ("the red circle moves to the right")."""
    check: str = ""
    """A second look that confirms the finding."""
    answer_phrase: str = ""
    """The answer as said in prose ("B, right")."""


@dataclass(frozen=True)
class Limits:
    """What a question kind may assume about the scenes it will get."""

    level: Level
    max_objects: int
    """SynthConfig.max_objects (the level's own maximum also applies)."""
    duration_s: float
    """Clip length."""

    def counts(self) -> list[int]:
        """Object counts a scene may have."""
        hi = min(self.level.max_objects, self.max_objects)
        return list(range(min(self.level.min_objects, hi), hi + 1))


class Decks:
    """Balanced draws: each key deals from a shuffled copy of its values, reshuffled when empty."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self._left: dict[str, list[Any]] = {}

    def draw(self, key: str, values: Sequence[Any]) -> Any:
        """Next value for `key` (values must be the same sequence on every call for that key)."""
        left = self._left.get(key)
        if not left:
            left = list(values)
            self.rng.shuffle(left)
            self._left[key] = left
        return left.pop()


def mc_options(correct: str, others: Sequence[str], position: int) -> tuple[list[str], str]:
    """Option lines with `correct` at index `position`; returns (["A. x", ...], right letter)."""
    texts = list(others)
    texts.insert(position, correct)
    return [f"{LETTERS[i]}. {t}" for i, t in enumerate(texts)], LETTERS[position]


def pick_options(b: SceneBuilder, correct: str, pool: Sequence[str], n_opts: int, position: int
                 ) -> tuple[list[str], str]:
    """n_opts option lines drawn from `pool` (which holds `correct`).

    Levels that shuffle put `correct` at `position` among random others; levels that do not
    keep the pool's order, so each value always has the same letter.
    """
    others = [p for p in pool if p != correct]
    b.rng.shuffle(others)
    chosen = others[:n_opts - 1]
    if b.level.shuffle_options:
        return mc_options(correct, chosen, position)
    texts = [p for p in pool if p == correct or p in chosen]
    return [f"{LETTERS[i]}. {t}" for i, t in enumerate(texts)], LETTERS[texts.index(correct)]


def distractor_count(decks: Decks, kind: str, lim: Limits) -> int:
    """How many shapes besides the one asked about (balanced, so scene size tells nothing)."""
    return decks.draw(f"{kind}:objects", lim.counts()) - 1


# ---- counting ------------------------------------------------------------------------------------
def _count_choose(decks: Decks, lim: Limits, kind: str) -> dict:
    values = lim.counts()
    n = decks.draw(f"{kind}:n", values)
    width = min(4, len(values))
    if kind == "count":
        start = min(max(values[0], n - decks.draw(f"{kind}:pos", range(width))), values[-1] - width + 1)
        return {"n": n, "first": start, "width": width}
    return {"n": n}


def _count_build(b: SceneBuilder, choice: dict, kind: str) -> Question:
    n = choice["n"]
    b.add_distractors(n)
    scene = b.scene
    seen = [f"a {full_name(o)}" + (f" (showing up {when(o.appear_s, scene.duration_s)})" if o.appear_s > 0 else "")
            for o in scene.objects]
    q = Question(kind=kind, problem_type="multiple choice" if kind == "count" else "numerical",
                 problem="How many shapes appear in the video?", answer=str(n),
                 params={"object_ids": [o.id for o in scene.objects]},
                 goal="how many different shapes show up at any point in the video",
                 moments="the whole video, since a shape may show up late or leave early",
                 observations=[f"I can see {join_words(seen)}."],
                 conclusion="exactly one shape appears" if n == 1 else f"{n} different shapes appear",
                 check=f"counting them once more, one by one, I again get {n}")
    if kind == "count":
        numbers = [str(v) for v in range(choice["first"], choice["first"] + choice["width"])]
        q.options = [f"{LETTERS[i]}. {v}" for i, v in enumerate(numbers)]
        q.answer = LETTERS[numbers.index(str(n))]
        q.answer_phrase = f"{q.answer}, which is {n}"
    else:
        q.answer_phrase = str(n)
    return q


# ---- colour of the large shape -------------------------------------------------------------------
def _colour_large_choose(decks: Decks, lim: Limits, kind: str) -> dict:
    n_opts = min(4, len(lim.level.colours))
    return {"colour": decks.draw(f"{kind}:colour", lim.level.colours), "pos": decks.draw(f"{kind}:pos", range(n_opts)),
            "others": distractor_count(decks, kind, lim)}


def _colour_large_build(b: SceneBuilder, choice: dict, kind: str) -> Question:
    target = b.add_object(colour=choice["colour"], size="large")
    b.add_distractors(choice["others"], size="small")
    options, letter = pick_options(b, target.colour, b.level.colours, min(4, len(b.level.colours)), choice["pos"])
    smalls = [full_name(o) for o in b.scene.objects if o is not target]
    seen = f"One shape is clearly bigger than the rest: a {target.shape} in {target.colour}."
    obs = [seen] + ([f"The other shapes ({', '.join(smalls)}) are small."] if smalls else [])
    return Question(kind=kind, problem_type="multiple choice", problem="What colour is the large shape?",
                    answer=letter, options=options, params={"object_id": target.id},
                    goal="the colour of the one large shape", moments="any frame, as the large shape is there throughout",
                    observations=obs, conclusion=f"the large shape is {target.colour}",
                    check=f"its colour stays {target.colour} from start to finish",
                    answer_phrase=f"{letter}, {target.colour}")


# ---- direction of motion -------------------------------------------------------------------------
def _direction_choose(decks: Decks, lim: Limits, kind: str) -> dict:
    return {"motion": decks.draw(f"{kind}:motion", lim.level.directions),
            "pos": decks.draw(f"{kind}:pos", range(len(lim.level.directions))),
            "others": distractor_count(decks, kind, lim)}


def _direction_build(b: SceneBuilder, choice: dict, kind: str) -> Question:
    target = b.add_object(motion=choice["motion"])
    b.add_distractors(choice["others"])
    options, letter = pick_options(b, target.motion, b.level.directions, len(b.level.directions), choice["pos"])
    scene = b.scene
    frames = scene.visible_frames(target)
    p0 = scene.position(target, scene.frame_time(frames[0]))
    p1 = scene.position(target, scene.frame_time(frames[-1]))
    return Question(kind=kind, problem_type="multiple choice",
                    problem=f"In which direction does the {target.name} move?", answer=letter, options=options,
                    params={"object_id": target.id}, goal=f"which way the {target.name} moves",
                    moments=f"the {target.name} from when it is first seen until it is last seen",
                    observations=[f"When it first shows up, the {target.name} is {place_phrase(scene.region(*p0))}.",
                                  f"By the time it is last seen it is {place_phrase(scene.region(*p1))}."],
                    conclusion=f"the {target.name} moves {MOTION_WORDS[target.motion]}",
                    check="its position changes steadily the same way and it never turns back",
                    answer_phrase=f"{letter}, {target.motion}")


# ---- registry ------------------------------------------------------------------------------------
Chooser = Callable[[Decks, Limits, str], dict]
Builder = Callable[[SceneBuilder, dict, str], Question]
BASIC_KINDS: dict[str, tuple[Chooser, Builder]] = {
    "count": (_count_choose, _count_build),
    "count_number": (_count_choose, _count_build),
    "colour_large": (_colour_large_choose, _colour_large_build),
    "direction": (_direction_choose, _direction_build),
}
"""kind -> (choose the answer, build a scene that has it and word the question)."""

