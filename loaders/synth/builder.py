"""Place shapes and signs in a scene so that they never overlap and never leave the frame.

Question kinds ask the builder for the objects their answer needs (a mover going right, one
large yellow shape, a colour change at 2 s) and add random distractors; the builder picks the
remaining attributes from the level's vocabulary and finds non-overlapping straight-line paths
by rejection sampling. Everything is drawn from the `random.Random` it is given, so a scene is
a pure function of its seed.
"""

from __future__ import annotations

import math
import random
from typing import Optional

from videorft.loaders.synth.levels import SIGN_WORDS, Level
from videorft.loaders.synth.scene import ColourChange, Scene, SceneObject, Sign

TIME_STEP_S = 0.5
"""Event times sit on this grid, so timing answers are short decimals."""
MIN_VISIBLE_S = 1.0
"""Every object stays on screen at least this long."""
BOUND = 1.2
"""Bounding-circle radius of any drawn shape, in units of its half extent."""
GAP_PX = 2.0
"""Free pixels kept between two shapes and between a shape and the frame edge."""


def time_grid(duration_s: float, lo: float = 0.0, hi: Optional[float] = None) -> list[float]:
    """Grid times t (multiples of TIME_STEP_S) with lo <= t <= hi (hi defaults to the clip end)."""
    hi = duration_s if hi is None else hi
    n = int(math.floor(duration_s / TIME_STEP_S + 1e-9))
    return [k * TIME_STEP_S for k in range(n + 1) if lo - 1e-9 <= k * TIME_STEP_S <= hi + 1e-9]


class PlacementError(RuntimeError):
    """No non-overlapping path was found; the caller retries the scene with fresh draws."""


class SceneBuilder:
    """Accumulates objects and signs for one scene; `scene` is the result."""

    def __init__(self, rng: random.Random, level: Level, scene_id: str, width: int, height: int,
                 fps: int, num_frames: int, max_objects: int):
        self.rng = rng
        self.level = level
        self.max_objects = max_objects
        self.scene = Scene(scene_id=scene_id, width=width, height=height, fps=fps, num_frames=num_frames,
                           level=level.name)
        self.top = 0.0
        """Objects keep below this y (a sign band sits above it)."""

    # ---- vocabulary --------------------------------------------------------------------------
    @property
    def side(self) -> float:
        """The shorter frame side; sizes and distances scale with it."""
        return float(min(self.scene.width, self.scene.height))

    def used_colours(self) -> set[str]:
        """Colours already taken, including colours that objects change into."""
        used = {o.colour for o in self.scene.objects}
        used |= {o.change.colour for o in self.scene.objects if o.change is not None}
        return used

    def free_colours(self, exclude: tuple[str, ...] = ()) -> list[str]:
        """Level colours nobody uses yet (in level order)."""
        taken = self.used_colours() | set(exclude)
        return [c for c in self.level.colours if c not in taken]

    def time_grid(self, lo: float = 0.0, hi: Optional[float] = None) -> list[float]:
        """Grid times of this clip with lo <= t <= hi."""
        return time_grid(self.scene.duration_s, lo, hi)

    def random_window(self) -> tuple[float, float]:
        """A visible interval for a distractor: often the whole clip, sometimes late or short."""
        end = self.scene.duration_s
        if not self.level.events or self.rng.random() < 0.5:
            return 0.0, end
        appear = self.rng.choice(self.time_grid(0.0, end - MIN_VISIBLE_S))
        if self.rng.random() < 0.5:
            return appear, end
        return appear, self.rng.choice(self.time_grid(appear + MIN_VISIBLE_S, end))

    # ---- adding things -----------------------------------------------------------------------
    def add_sign(self, text: Optional[str] = None, appear_s: float = 0.0,
                 disappear_s: Optional[float] = None) -> Sign:
        """A sign in a band across the top of the frame; objects then keep below the band."""
        text = text if text is not None else self.rng.choice(SIGN_WORDS)
        band = 0.26 * self.scene.height
        cx = round(self.scene.width / 2 + self.rng.uniform(-0.12, 0.12) * self.scene.width, 2)
        sign = Sign(id=f"sign{len(self.scene.signs)}", text=text, center=(cx, band / 2),
                    appear_s=appear_s, disappear_s=self.scene.duration_s if disappear_s is None else disappear_s)
        self.scene.signs.append(sign)
        self.top = max(self.top, band)
        return sign

    def add_object(self, *, colour: Optional[str] = None, shape: Optional[str] = None,
                   size: Optional[str] = None, motion: Optional[str] = None, appear_s: float = 0.0,
                   disappear_s: Optional[float] = None, change: Optional[ColourChange] = None,
                   tries: int = 60) -> SceneObject:
        """Add a shape; unspecified attributes are drawn from the level (colours stay unique)."""
        if len(self.scene.objects) >= self.max_objects:
            raise PlacementError("scene is full")
        if colour is None:
            options = self.free_colours(exclude=(change.colour,) if change else ())
            if not options:
                raise PlacementError("no free colour left")
            colour = self.rng.choice(options)
        shape = shape or self.rng.choice(self.level.shapes)
        size = size or self.rng.choice(("large", "small"))
        if motion is None:
            moves = self.level.distractors_move and self.rng.random() < 0.5
            motion = self.rng.choice(self.level.directions) if moves else "still"
        end = self.scene.duration_s if disappear_s is None else disappear_s
        radius = (self.level.large if size == "large" else self.level.small) * self.side
        for _ in range(tries):
            start, velocity = self._path(radius, motion, end - appear_s)
            obj = SceneObject(id=f"obj{len(self.scene.objects)}", shape=shape, colour=colour, size=size,
                              radius=round(radius, 2), start=start, velocity=velocity, motion=motion,
                              appear_s=appear_s, disappear_s=end, change=change)
            if self._fits(obj):
                self.scene.objects.append(obj)
                return obj
        raise PlacementError(f"could not place a {size} {shape} moving {motion}")

    def add_distractors(self, count: int, **fixed) -> None:
        """Add `count` random objects (extra keyword arguments are passed to every add_object)."""
        for _ in range(count):
            kwargs = dict(fixed)
            if "appear_s" not in kwargs:
                kwargs["appear_s"], kwargs["disappear_s"] = self.random_window()
            if not self.level.distractors_move:
                kwargs.setdefault("motion", "still")
            self.add_object(**kwargs)

    # ---- geometry ----------------------------------------------------------------------------
    def _path(self, radius: float, motion: str, span_s: float) -> tuple[tuple[float, float], tuple[float, float]]:
        """Random start centre and velocity whose whole path stays inside the free area."""
        margin = radius * BOUND + GAP_PX
        x_lo, x_hi = margin, self.scene.width - margin
        y_lo, y_hi = self.top + margin, self.scene.height - margin
        if motion == "still":
            return (round(self.rng.uniform(x_lo, x_hi), 2), round(self.rng.uniform(y_lo, y_hi), 2)), (0.0, 0.0)
        horizontal = motion in ("left", "right")
        room = (x_hi - x_lo) if horizontal else (y_hi - y_lo)
        dist = min(self.rng.uniform(*self.level.travel) * self.side, room)
        if dist <= 0:
            raise PlacementError("no room to move")
        sign = 1.0 if motion in ("right", "down") else -1.0
        if horizontal:
            x0 = self.rng.uniform(x_lo, x_hi - dist) if sign > 0 else self.rng.uniform(x_lo + dist, x_hi)
            start, vel = (x0, self.rng.uniform(y_lo, y_hi)), (sign * dist / span_s, 0.0)
        else:
            y0 = self.rng.uniform(y_lo, y_hi - dist) if sign > 0 else self.rng.uniform(y_lo + dist, y_hi)
            start, vel = (self.rng.uniform(x_lo, x_hi), y0), (0.0, sign * dist / span_s)
        return (round(start[0], 2), round(start[1], 2)), (round(vel[0], 3), round(vel[1], 3))

    def _fits(self, new: SceneObject) -> bool:
        """True when `new` stays inside the frame and clear of every placed object on every frame."""
        scene = self.scene
        margin = new.radius * BOUND
        for k in scene.visible_frames(new):
            t = scene.frame_time(k)
            x, y = scene.position(new, t)
            if not (margin <= x <= scene.width - margin and self.top + margin <= y <= scene.height - margin):
                return False
            for other in scene.objects:
                if not scene.visible(other, t):
                    continue
                ox, oy = scene.position(other, t)
                if math.hypot(x - ox, y - oy) < (new.radius + other.radius) * BOUND + GAP_PX:
                    return False
        return True
