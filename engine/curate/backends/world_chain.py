"""The world reasoner's five-step chain, and the world reviser that checks it against the scene graph.

Chain, five steps: 1 browse: what the clip holds   2 the question and its answer form
  3 where to look   4 what is seen there and the finding   5 a check; then the answer.
The "compact" style says each step in a few words, in words the tiny pipeline's small BPE vocabulary
holds whole (the CPU pays for every generated token).
The reviser plays the multimodal model that watches the video: it finds each "the <size> <colour>
<shape> is <place>" claim, compares it with the scene graph at the time the sentence names, fixes
the place when it is wrong, turns text-source phrases into visual ones and clock times into coarse
ones, and leaves everything else, the conclusion included, as it was.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

from videorft.engine.curate.backends.world_reason import ANSWER_FORM, PLACES, Finding, find, read_representation
from videorft.loaders.synth.phrases import join_words, place_phrase
from videorft.loaders.synth.scene import Scene

LEAKS = (("According to the frame-level metadata, ", "The video shows that "),
         ("The captions say that ", "I can see that "),
         ("Going by the key elements listed, ", "From the visual sequence, "))
"""(text-source opening the reasoner may write, the visual opening the reviser puts instead)."""
_CLOCK = re.compile(r"at (\d{2}):(\d{2}):(\d{2})")
_CLAIM = re.compile(r"((?i:at the beginning|around the middle|toward the end|at \d\d:\d\d:\d\d))? ?"
                    r"(?:the (large|small) (\w+) (\w+)|it) is ("
                    + "|".join(sorted(PLACES, key=len, reverse=True)) + r")")
"""A place claim: "[time phrase] the <size> <colour> <shape> is <place>", or "... it is <place>" about the
shape named last."""


def draws(seed: int, sample: str) -> random.Random:
    """The per-sample random source of the reasoner's mistakes."""
    return random.Random(int(hashlib.sha256(f"{seed}:{sample}".encode()).hexdigest()[:16], 16))


def _misplace(finding: Finding, rng: random.Random) -> None:
    """Move the first place claim of the observations to a wrong place (the answer is unchanged)."""
    for i, obs in enumerate(finding.observations):
        m = _CLAIM.search(obs)
        if m:
            wrong = rng.choice([p for p in PLACES if p != m.group(5)])
            finding.observations[i] = obs[:m.start(5)] + wrong + obs[m.end(5):]
            return


def reason_chain(rep: dict[str, Any], question: str, options: list[str], problem_type: str,
                 rng: random.Random, mistake_rate: float, leak_rate: float, style: str = "full") -> str:
    """The reasoner's full response: "<think>five steps</think> <answer>...</answer>"."""
    reading = read_representation(rep)
    mistake = rng.random() < mistake_rate
    decisive = mistake and rng.random() < 0.5
    finding = find(reading, question, options, decisive, rep["video_caption"])
    if finding is None:
        finding = Finding("what is asked", "the whole clip", ["Nothing I saw settles this."],
                          "I have to guess", "I cannot verify it", options[0].partition(".")[0] if options else "0")
    if mistake and not decisive:
        _misplace(finding, rng)
    names = reading.names()
    seen = join_words([f"a {n}" for n in names]) if names else "no shapes"
    obs = " ".join(finding.observations)
    if rng.random() < leak_rate:
        opening, _ = rng.choice(LEAKS)
        obs = opening + obs[0].lower() + obs[1:]
        if obs.startswith(opening + "at the beginning"):         # a clock time instead of the coarse phrase
            obs = opening + "at 00:00:00" + obs[len(opening + "at the beginning"):]
    sign = " and a sign" if reading.signs else ""
    if style == "compact":
        word = finding.word or finding.answer
        focus = finding.focus or finding.moments.split(",")[0].capitalize()
        steps = [f"I see {seen}{sign}.", f"The question asks {finding.short_goal or finding.goal}.", f"{focus}.",
                 f"{obs} So {word}.", f"Check again: {word}."]
    else:
        steps = [f"Watching the clip, I see {seen}{sign}.",
                 f"The question asks about {finding.goal}, {ANSWER_FORM[problem_type]}.",
                 f"I focus on {finding.moments}.", f"{obs} So {finding.conclusion}.",
                 f"Checking again, {finding.check}."]
    return f"<think>{' '.join(steps)}</think> <answer>{finding.answer}</answer>"


def _truth_at(scene: Scene, size: str, colour: str, shape: str, phrase: str) -> str | None:
    """Where the named shape really is at the time `phrase` names (None: no such shape)."""
    for o in scene.objects:
        if o.size == size and o.shape == shape and colour in (o.colour, o.change.colour if o.change else o.colour):
            frames = scene.visible_frames(o)
            if not frames:
                return None
            pick = {"beginning": frames[0], "middle": frames[len(frames) // 2], "end": frames[-1]}
            key = next((k for k in pick if k in (phrase or "").lower()), "beginning")
            return place_phrase(scene.region(*scene.position(o, scene.frame_time(pick[key]))))
    return None


def revise_chain(scene: Scene, think: str) -> str:
    """The chain with wrong places fixed, text-source phrases made visual and clock times coarse."""
    named: list[tuple[str, str, str]] = []

    def fix_place(m: re.Match) -> str:
        if m.group(2):
            named.append((m.group(2), m.group(3), m.group(4)))
        if not named:
            return m.group(0)
        truth = _truth_at(scene, *named[-1], _phrase(scene, m.group(1) or ""))
        if truth is None or truth == m.group(5):
            return m.group(0)
        return m.group(0)[:m.start(5) - m.start(0)] + truth

    text = _CLAIM.sub(fix_place, think)
    for leak, visual in LEAKS:
        text = text.replace(leak, visual)
    text = _CLOCK.sub(lambda m: _coarse(scene, int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))), text)
    return text


def _phrase(scene: Scene, when: str) -> str:
    """A claim's time phrase, with a clock time read as the coarse phrase it falls in."""
    m = re.match(r"[Aa]t (\d\d):(\d\d):(\d\d)", when)
    return _coarse(scene, int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))) if m else when


def _coarse(scene: Scene, t: float) -> str:
    frac = t / scene.duration_s if scene.duration_s else 0.0
    return "at the beginning" if frac < 1 / 3 else "around the middle" if frac < 2 / 3 else "toward the end"
