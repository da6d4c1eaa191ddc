"""Question kinds about events, time, distance, signs and whole-scene descriptions.

These complete the five problem types: event order and colour change (multiple choice),
appearance time (numerical), reading a sign (OCR), travel distance and time on screen
(regression) and a description of the clip (free-form). Like the basic kinds they choose
their answer first and then build a scene in which it holds.
"""

from __future__ import annotations

from videorft.loaders.synth.builder import MIN_VISIBLE_S, TIME_STEP_S, PlacementError, SceneBuilder, time_grid
from videorft.loaders.synth.levels import SIGN_WORDS
from videorft.loaders.synth.phrases import full_name, object_story, scene_story, seconds, when
from videorft.loaders.synth.questions import Decks, Limits, Question, distractor_count, mc_options, pick_options
from videorft.loaders.synth.scene import ColourChange

VERBS = {"appear": "appears", "disappear": "disappears"}


# ---- which event comes first ---------------------------------------------------------------------
def _order_choose(decks: Decks, lim: Limits, kind: str) -> dict:
    hi = lim.counts()[-1]
    n_events = min(3, hi)
    if n_events < 2:
        raise ValueError(f"question kind {kind!r} needs synth.max_objects >= 2")
    return {"n_events": n_events, "pos": decks.draw(f"{kind}:pos:{n_events}", range(n_events)),
            "others": decks.draw(f"{kind}:objects", range(hi - n_events + 1))}


def _event_times(b: SceneBuilder, n: int) -> list[float]:
    """n grid times, pairwise at least the level's event gap apart, away from both clip ends."""
    end = b.scene.duration_s
    grid = b.time_grid(TIME_STEP_S, end - TIME_STEP_S)
    gap = b.level.event_gap_s
    if len(grid) == 0 or grid[-1] - grid[0] < gap * (n - 1) - 1e-9:
        raise ValueError(f"synth.duration_s={end:g} is too short for {n} events {gap:g} s apart")
    for _ in range(200):
        times = sorted(b.rng.sample(grid, n))
        if all(t1 - t0 >= gap - 1e-9 for t0, t1 in zip(times, times[1:])):
            return times
    raise PlacementError("no event times found")


def _add_event(b: SceneBuilder, t: float) -> tuple[str, str]:
    """Add an object whose one event happens at t; returns (option text, event kind)."""
    end = b.scene.duration_s
    kinds = [k for k, ok in (("appear", t <= end - MIN_VISIBLE_S), ("disappear", t >= MIN_VISIBLE_S),
                             ("colour_change", True)) if ok]
    kind = b.rng.choice(kinds)
    if kind == "appear":
        o = b.add_object(appear_s=t, disappear_s=end)
    elif kind == "disappear":
        o = b.add_object(appear_s=0.0, disappear_s=t)
    else:
        colour, new = b.rng.sample(b.free_colours(), 2)
        o = b.add_object(colour=colour, change=ColourChange(t, new))
        return f"the {o.name} turns {new}", o.id
    return f"the {o.name} {VERBS[kind]}", o.id


def _order_build(b: SceneBuilder, choice: dict, kind: str) -> Question:
    times = _event_times(b, choice["n_events"])
    events = [(t, *_add_event(b, t)) for t in times]                      # (time, text, object id)
    b.add_distractors(choice["others"])
    first, rest = events[0], events[1:]
    b.rng.shuffle(rest)
    options, letter = mc_options(first[1], [e[1] for e in rest], choice["pos"])
    dur = b.scene.duration_s
    obs = [f"{text[0].upper()}{text[1:]} {when(t, dur)}, at about {seconds(t)} seconds." for t, text, _ in events]
    return Question(kind=kind, problem_type="multiple choice", problem="Which of these happens first?",
                    answer=letter, options=options,
                    params={"events": [{"time_s": t, "text": text, "object_id": oid} for t, text, oid in events]},
                    goal="which of the listed events happens earliest",
                    moments="each moment where one of the listed events happens", observations=obs,
                    conclusion=f"{first[1]} before anything else on the list",
                    check=f"{first[1]} at {seconds(first[0])} seconds, and the next listed event only "
                          f"comes at {seconds(events[1][0])} seconds",
                    answer_phrase=f"{letter}, {first[1]}")


# ---- colour change -------------------------------------------------------------------------------
def _change_choose(decks: Decks, lim: Limits, kind: str) -> dict:
    n_opts = min(4, len(lim.level.colours) - 1)
    return {"colour": decks.draw(f"{kind}:colour", lim.level.colours), "pos": decks.draw(f"{kind}:pos", range(n_opts)),
            "n_opts": n_opts,
            "others": distractor_count(decks, kind, lim)}


def _change_build(b: SceneBuilder, choice: dict, kind: str) -> Question:
    end = b.scene.duration_s
    t = b.rng.choice(b.time_grid(MIN_VISIBLE_S, end - MIN_VISIBLE_S) or b.time_grid(TIME_STEP_S, end - TIME_STEP_S))
    new = choice["colour"]
    first = b.rng.choice(b.free_colours(exclude=(new,)))
    target = b.add_object(colour=first, change=ColourChange(t, new))
    b.add_distractors(choice["others"])
    pool = [c for c in b.level.colours if c != first]
    options, letter = pick_options(b, new, pool, choice["n_opts"], choice["pos"])
    return Question(kind=kind, problem_type="multiple choice",
                    problem=f"The {target.name} changes colour during the video. What colour does it turn?",
                    answer=letter, options=options, params={"object_id": target.id},
                    goal=f"the colour the {target.name} takes after its change",
                    moments=f"the moment the {target.name} changes colour, and the frames after it",
                    observations=[f"At first the {target.shape} is {first}.",
                                  f"{when(t, end).capitalize()}, at about {seconds(t)} seconds, it turns {new}."],
                    conclusion=f"the {target.shape} turns {new}",
                    check=f"it stays {new} until the end, so this is not a brief flicker",
                    answer_phrase=f"{letter}, {new}")


# ---- time of appearance --------------------------------------------------------------------------
def _times_or_raise(times: list[float], lim: Limits, kind: str) -> list[float]:
    """`times`, or a ValueError naming synth.duration_s when the clip leaves none for `kind`."""
    if not times:
        raise ValueError(f"synth.duration_s={lim.duration_s:g} is too short for question kind {kind!r}")
    return times


def _appear_choose(decks: Decks, lim: Limits, kind: str) -> dict:
    grid = _times_or_raise(time_grid(lim.duration_s, TIME_STEP_S, lim.duration_s - MIN_VISIBLE_S), lim, kind)
    return {"time": decks.draw(f"{kind}:time", grid), "others": distractor_count(decks, kind, lim)}


def _appear_build(b: SceneBuilder, choice: dict, kind: str) -> Question:
    end = b.scene.duration_s
    t = choice["time"]
    target = b.add_object(appear_s=t, disappear_s=end)
    b.add_distractors(choice["others"])
    return Question(kind=kind, problem_type="numerical",
                    problem=f"At what time, in seconds, does the {target.name} first appear?",
                    answer=seconds(t), params={"object_id": target.id},
                    goal=f"the time at which the {target.name} shows up, as a number of seconds",
                    moments=f"the start of the video and the moment the {target.name} shows up",
                    observations=[f"At the start the {target.name} is not there.",
                                  f"It shows up {when(t, end)}, {seconds(t)} seconds into the clip."],
                    conclusion=f"the {target.name} first appears at {seconds(t)} seconds",
                    check=f"the frame just before {seconds(t)} seconds still has no {target.shape} in {target.colour}",
                    answer_phrase=seconds(t))


# ---- regression: distance and time on screen -----------------------------------------------------
def _distance_choose(decks: Decks, lim: Limits, kind: str) -> dict:
    return {"motion": decks.draw(f"{kind}:motion", lim.level.directions),
            "others": distractor_count(decks, kind, lim)}


def _distance_build(b: SceneBuilder, choice: dict, kind: str) -> Question:
    target = b.add_object(motion=choice["motion"])
    b.add_distractors(choice["others"])
    scene = b.scene
    dist = round(scene.travel_px(target))
    frames = scene.visible_frames(target)
    p0 = scene.position(target, scene.frame_time(frames[0]))
    p1 = scene.position(target, scene.frame_time(frames[-1]))
    return Question(kind=kind, problem_type="regression",
                    problem=(f"The frame is {scene.width} pixels wide and {scene.height} pixels tall. About how many "
                             f"pixels does the {target.name} travel while it is visible?"),
                    answer=str(dist), params={"object_id": target.id},
                    goal=f"how far the {target.name} travels, estimated in pixels",
                    moments=f"the first and the last frame on which the {target.name} is visible",
                    observations=[f"It starts near x={p0[0]:.0f}, y={p0[1]:.0f} and ends near x={p1[0]:.0f}, "
                                  f"y={p1[1]:.0f}, moving in a straight line {target.motion}."],
                    conclusion=f"the {target.name} covers about {dist} pixels",
                    check=f"that is about {dist / min(scene.width, scene.height):.0%} of the frame side, which "
                          "matches how far it appears to go",
                    answer_phrase=str(dist))


def _duration_choose(decks: Decks, lim: Limits, kind: str) -> dict:
    lengths = _times_or_raise(time_grid(lim.duration_s, MIN_VISIBLE_S), lim, kind)
    return {"length": decks.draw(f"{kind}:length", lengths), "others": distractor_count(decks, kind, lim)}


def _duration_build(b: SceneBuilder, choice: dict, kind: str) -> Question:
    end = b.scene.duration_s
    length = choice["length"]
    appear = b.rng.choice(b.time_grid(0.0, end - length))
    target = b.add_object(appear_s=appear, disappear_s=appear + length)
    b.add_distractors(choice["others"])
    shown = b.scene.visible_seconds(target)
    return Question(kind=kind, problem_type="regression",
                    problem=f"For how many seconds is the {target.name} visible?", answer=seconds(shown),
                    params={"object_id": target.id}, goal=f"how long the {target.name} stays on screen, in seconds",
                    moments=f"the moments the {target.name} shows up and goes away",
                    observations=[f"The {target.name} is on screen from about {seconds(appear)} seconds until "
                                  f"about {seconds(appear + length)} seconds."],
                    conclusion=f"it is visible for about {seconds(shown)} seconds",
                    check=f"{seconds(appear + length)} minus {seconds(appear)} gives {seconds(shown)}",
                    answer_phrase=seconds(shown))


# ---- OCR: read the sign --------------------------------------------------------------------------
def _sign_choose(decks: Decks, lim: Limits, kind: str) -> dict:
    return {"word": decks.draw(f"{kind}:word", SIGN_WORDS), "others": distractor_count(decks, kind, lim)}


def _sign_build(b: SceneBuilder, choice: dict, kind: str) -> Question:
    sign = b.add_sign(choice["word"])
    b.add_distractors(choice["others"])
    return Question(kind=kind, problem_type="OCR", problem="What word is written on the sign?", answer=sign.text,
                    params={"sign_id": sign.id}, goal="the exact word printed on the sign",
                    moments="any frame, since the sign stays in place near the top",
                    observations=["A light plate near the top of the frame carries dark capital letters.",
                                  f"Letter by letter they read {' '.join(sign.text)}."],
                    conclusion=f"the sign says {sign.text}",
                    check="the shapes moving below never cover the plate, so every letter is readable",
                    answer_phrase=sign.text)


# ---- free-form description -----------------------------------------------------------------------
def _describe_choose(decks: Decks, lim: Limits, kind: str) -> dict:
    return {"n": decks.draw(f"{kind}:n", lim.counts()), "sign": decks.draw(f"{kind}:sign", (0, 0, 1))}


def _describe_build(b: SceneBuilder, choice: dict, kind: str) -> Question:
    if choice["sign"]:
        b.add_sign()
    b.add_distractors(choice["n"])
    scene = b.scene
    return Question(kind=kind, problem_type="free-form", problem="Describe what happens in the video.",
                    answer=scene_story(scene), params={}, goal="a short description of every shape and what it does",
                    moments="the whole video, following each shape in turn",
                    observations=[object_story(scene, o) for o in scene.objects]
                    + [f"There is also a sign that reads {s.text}." for s in scene.signs],
                    conclusion="these sentences cover everything in the clip",
                    check="I have mentioned every shape: " + ", ".join(full_name(o) for o in scene.objects),
                    answer_phrase="")


EVENT_KINDS = {
    "event_order": (_order_choose, _order_build),
    "colour_change": (_change_choose, _change_build),
    "appear_time": (_appear_choose, _appear_build),
    "distance": (_distance_choose, _distance_build),
    "duration": (_duration_choose, _duration_build),
    "sign_text": (_sign_choose, _sign_build),
    "describe": (_describe_choose, _describe_build),
}
"""kind -> (choose the answer, build a scene that has it and word the question)."""
