"""Plain-English phrases about a scene, shared by questions, reasoning chains and captions.

Keeping one phrasing for each fact means the reference reasoning, the free-form answers and
the frame captions all describe the same scene in the same words.
"""

from __future__ import annotations

from videorft.loaders.synth.levels import BACKGROUND_NAME
from videorft.loaders.synth.scene import EPS, Scene, SceneObject

MOTION_WORDS = {"left": "to the left", "right": "to the right", "up": "upwards", "down": "downwards"}


def when(t: float, duration: float) -> str:
    """Coarse time phrase for time t of a clip: "at the beginning", "around the middle", ..."""
    frac = t / duration if duration > 0 else 0.0
    if frac < 1 / 3:
        return "near the beginning"
    if frac < 2 / 3:
        return "around the middle"
    return "toward the end"


def seconds(t: float) -> str:
    """A time on the 0.5 s grid, always with one decimal ("2.0", "1.5")."""
    return f"{t:.1f}"


def article(words: str) -> str:
    """ "a" or "an" for the phrase `words`."""
    return "an" if words[:1].lower() in "aeiou" else "a"


def full_name(o: SceneObject) -> str:
    """ "large red circle": size, first colour and shape."""
    return f"{o.size} {o.colour} {o.shape}"


def motion_phrase(o: SceneObject) -> str:
    """ "moves to the right" or "stays still"."""
    return f"moves {MOTION_WORDS[o.motion]}" if o.motion in MOTION_WORDS else "stays still"


def object_story(scene: Scene, o: SceneObject) -> str:
    """One sentence about everything an object does: motion, appearance, colour change."""
    parts = [f"appears {when(o.appear_s, scene.duration_s)}"] if o.appear_s > EPS else []
    parts.append(motion_phrase(o))
    if o.change is not None:
        parts.append(f"turns {o.change.colour} {when(o.change.time_s, scene.duration_s)}")
    if o.disappear_s < scene.duration_s - EPS:
        parts.append(f"disappears {when(o.disappear_s, scene.duration_s)}")
    name = full_name(o)
    body = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{article(name).capitalize()} {name} {body}."


def scene_story(scene: Scene) -> str:
    """The free-form description of a scene: one sentence per object, then the signs."""
    sentences = [object_story(scene, o) for o in scene.objects]
    sentences += [f"A sign reads {s.text}." for s in scene.signs]
    return " ".join(sentences)


def place_phrase(region: str) -> str:
    """Scene.region name -> "in the center", "on the left", "at the top right", ..."""
    if region == "center":
        return "in the center"
    return f"on the {region}" if region in ("left", "right") else f"at the {region}"


def join_words(items: list[str]) -> str:
    """ "x", "x and y", "x, y and z"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def inventory(scene: Scene) -> str:
    """ "a large red circle, a small blue square and a sign" (everything that ever shows up)."""
    items = [f"{article(full_name(o))} {full_name(o)}" for o in scene.objects]
    return join_words(items + ["a sign" for _ in scene.signs])


def frame_caption(scene: Scene, k: int) -> str:
    """Literal caption of frame k: each visible shape with its current colour and place, and signs."""
    t = scene.frame_time(k)
    items = []
    for o in scene.objects:
        if scene.visible(o, t):
            place = place_phrase(scene.region(*scene.position(o, t)))
            items.append(f"a {o.size} {scene.colour_at(o, t)} {o.shape} {place}")
    items += [f"a sign reading {s.text}" for s in scene.signs if scene.visible(s, t)]
    return join_words(items) if items else f"an empty {BACKGROUND_NAME} background"
