"""The synthetic world's text-only reasoner: a five-step chain written from the representation alone.

It reads what the representation says (the shapes each described frame shows, where they are,
which way they move, the signs) and never the scene graph, so what a 1-FPS description leaves out
it cannot know. At `mistake_rate` it misreads something, half the time a detail that does not change
the answer (a shape's place: the reviser fixes it), half the time the finding itself (a wrong answer:
the filter drops it); at `leak_rate` it gives its text source away ("the frame-level metadata", clock
times), which the reviser rewrites. The draws are seeded per sample, so reruns write the same chain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from videorft.loaders.synth.phrases import join_words

PLACES = ("in the center", "on the left", "on the right", "at the top", "at the bottom", "at the top left",
          "at the top right", "at the bottom left", "at the bottom right")
_SIGHTING = re.compile(r"^(large|small) (\w+) (\w+) (.+)$")
_MOTION = re.compile(r"moves (to the left|to the right|upwards|downwards)$")
MOTION_WORD = {"to the left": "left", "to the right": "right", "upwards": "up", "downwards": "down"}
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
ANSWER_FORM = {"multiple choice": "so I have to pick one option letter", "numerical": "so the answer is a number",
               "OCR": "so I have to copy the text exactly", "free-form": "so I should describe it in plain words",
               "regression": "so I need a close numeric estimate"}


@dataclass
class Sighting:
    """One shape in one described frame."""

    time_s: float
    size: str
    colour: str
    shape: str
    place: str
    motion: str = "still"

    @property
    def name(self) -> str:
        return f"{self.size} {self.colour} {self.shape}"


@dataclass
class Reading:
    """What the representation says, frame by frame."""

    sightings: list[Sighting]
    signs: list[str]
    duration_s: float
    times: list[float] = field(default_factory=list)

    def when(self, t: float) -> str:
        """Coarse time phrase of time t."""
        frac = t / self.duration_s if self.duration_s > 0 else 0.0
        return "at the beginning" if frac < 1 / 3 else "around the middle" if frac < 2 / 3 else "toward the end"

    def names(self) -> list[str]:
        """Distinct shapes, in order of first sighting."""
        return list(dict.fromkeys(s.name for s in self.sightings))

    def of(self, colour: str, shape: str) -> list[Sighting]:
        """Sightings of the shape that first had `colour`, in time order (colour changes followed)."""
        first = [s for s in self.sightings if s.colour == colour and s.shape == shape]
        if not first:
            return []
        size, since = first[0].size, first[0].time_s
        return [s for s in self.sightings if s.shape == shape and s.size == size and s.time_s >= since]


def _seconds(stamp: str) -> float:
    h, m, s = (int(v) for v in stamp.split(":"))
    return 3600 * h + 60 * m + s


def read_representation(rep: dict[str, Any]) -> Reading:
    """Parse the world captioner's phrases back into sightings (unknown phrases are ignored)."""
    sightings, signs, times = [], [], []
    for frame in rep["frames"]:
        t = _seconds(frame["timestamp"])
        times.append(t)
        elements = frame["key_elements"]
        moving = {a.rsplit(" moves ", 1)[0]: MOTION_WORD[m.group(1)]
                  for a in elements["actions"] if (m := _MOTION.search(a))}
        for rel in elements["spatial_relations"]:
            m = _SIGHTING.match(rel)
            if m:
                s = Sighting(t, m.group(1), m.group(2), m.group(3), m.group(4))
                s.motion = moving.get(s.name, "still")
                sightings.append(s)
        signs += [f.removeprefix("a sign reading ") for f in elements["notable_features"] if f.startswith("a sign")]
    stated = re.search(r"A ([\d.]+)-second clip", rep["video_caption"])
    duration = float(stated.group(1)) if stated else (max(times) + 1 if times else 1.0)
    return Reading(sightings, list(dict.fromkeys(signs)), duration, times)


@dataclass
class Finding:
    """What the reasoner concludes about one question."""

    goal: str
    moments: str
    observations: list[str]
    conclusion: str
    check: str
    answer: str
    """The text that goes inside <answer>."""
    short_goal: str = ""
    """The goal in a few words (compact chains; defaults to `goal`)."""
    focus: str = ""
    """Where to look, in a few words (compact chains; defaults to the first clause of `moments`)."""
    word: str = ""
    """The finding in one word or number (compact chains; defaults to the answer)."""


def option_letter(options: list[str], value: str) -> Optional[str]:
    """The letter of the option whose text is `value` ("B. red" -> "B")."""
    for line in options:
        letter, _, text = line.partition(". ")
        if text.strip().lower() == value.lower():
            return letter.strip()
    return None


def _placed(s: Sighting) -> str:
    return f"the {s.name} is {s.place}"


def _colour_large(r: Reading, q: str, options: list[str], wrong: bool) -> Optional[Finding]:
    large = [s for s in r.sightings if s.size == "large"]
    if not large:
        return None
    target = large[0]
    colour = target.colour
    if wrong:
        others = [s.colour for s in r.sightings if s.colour != colour]
        colour = others[0] if others else next(o.partition(". ")[2] for o in options if not o.endswith(colour))
    letter = option_letter(options, colour) or "A"
    return Finding("the colour of the large shape", "any moment, since the large shape stays in view",
                   [f"{r.when(target.time_s).capitalize()} {_placed(target)}.".replace(target.colour, colour, 1)],
                   f"the large shape is {colour}", f"it looks {colour} in every frame", letter,
                   short_goal="the color of the large one", focus="Any moment", word=colour)


def _direction(r: Reading, q: str, options: list[str], wrong: bool) -> Optional[Finding]:
    m = re.search(r"does the (\w+) (\w+) move", q)
    seen = r.of(m.group(1), m.group(2)) if m else []
    if not seen:
        return None
    first, last = seen[0], seen[-1]
    motion = first.motion if first.motion != "still" else "left"
    if wrong:
        motion = OPPOSITE[motion]
    letter = option_letter(options, motion) or "A"
    obs = [f"{r.when(first.time_s).capitalize()} {_placed(first)}.",
           f"{r.when(last.time_s).capitalize()} it is {last.place}."]
    return Finding(f"which way the {first.colour} {first.shape} moves", f"the {first.shape} from first to last sight",
                   obs, f"it moves {motion}", "it keeps going the same way and never turns back", letter,
                   short_goal="which way it moves", focus="First and last sight", word=motion)


def _count(r: Reading, q: str, options: list[str], wrong: bool) -> Optional[Finding]:
    names = r.names()
    n = len(names) + (1 if wrong else 0)
    answer = option_letter(options, str(n)) or ("A" if options else str(n))
    return Finding("how many different shapes show up", "the whole clip, as shapes may come and go",
                   [f"I can see {join_words([f'a {x}' for x in names])}." if names else "I see no shape."],
                   f"{n} different shapes appear", f"counting again I get {n}", answer)


def _sign(r: Reading, q: str, options: list[str], wrong: bool) -> Optional[Finding]:
    if not r.signs:
        return None
    word = r.signs[0][::-1] if wrong else r.signs[0]
    return Finding("the word on the sign", "any moment, since the sign stays put",
                   [f"A plate near the top carries the letters {' '.join(word)}."],
                   f"the sign says {word}", "no shape covers the plate", word)


def _colour_change(r: Reading, q: str, options: list[str], wrong: bool) -> Optional[Finding]:
    m = re.search(r"The (\w+) (\w+) changes colour", q)
    seen = r.of(m.group(1), m.group(2)) if m else []
    if not seen:
        return None
    new = seen[-1].colour
    if wrong:
        new = next((o.partition(". ")[2] for o in options if o.partition(". ")[2] not in (new, seen[0].colour)), new)
    return Finding(f"the colour the {seen[0].shape} turns into", "the moment it changes and the frames after it",
                   [f"{r.when(seen[0].time_s).capitalize()} the {seen[0].shape} is {seen[0].colour}.",
                    f"{r.when(seen[-1].time_s).capitalize()} it is {new}."],
                   f"it turns {new}", f"it stays {new} to the end", option_letter(options, new) or "A")


def _timing(r: Reading, q: str, options: list[str], wrong: bool) -> Optional[Finding]:
    m = re.search(r"does the (\w+) (\w+) first appear|is the (\w+) (\w+) visible", q)
    if not m:
        return None
    colour, shape = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    seen = r.of(colour, shape)
    if not seen:
        return None
    step = (r.times[1] - r.times[0]) if len(r.times) > 1 else 1.0
    value = seen[0].time_s if "first appear" in q else seen[-1].time_s - seen[0].time_s + step
    value += step if wrong else 0.0
    return Finding(f"when the {colour} {shape} is on screen, in seconds", f"the moments the {shape} shows up and goes",
                   [f"It is first seen {r.when(seen[0].time_s)} and last seen {r.when(seen[-1].time_s)}."],
                   f"that gives about {value:.1f} seconds", "the frames on either side agree", f"{value:.1f}")


def _describe(r: Reading, q: str, options: list[str], wrong: bool, story: str) -> Finding:
    text = story.split(". ", 1)[1] if ". " in story else story
    if wrong:
        text = text.replace("left", "right") if "left" in text else text.replace("right", "left")
    return Finding("a description of what the shapes do", "the whole clip, shape by shape",
                   [f"I can see {join_words([f'a {x}' for x in r.names()])}." if r.names() else "I see a grey scene."],
                   "that covers everything that happens", "every shape is mentioned", text)


KINDS = (("What colour is the large shape", _colour_large), ("In which direction", _direction),
         ("How many shapes", _count), ("What word is written", _sign), ("changes colour", _colour_change),
         ("first appear", _timing), ("visible?", _timing))
"""Question wording -> the reading that answers it."""


def find(r: Reading, question: str, options: list[str], wrong: bool, story: str) -> Optional[Finding]:
    """The reasoner's finding for a question, or None when the representation cannot settle it."""
    if question.startswith("Describe"):
        return _describe(r, question, options, wrong, story)
    for marker, reader in KINDS:
        if marker in question:
            return reader(r, question, options, wrong)
    return None
