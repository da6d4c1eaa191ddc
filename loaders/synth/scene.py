"""The ground-truth scene graph of one synthetic video.

A scene is a list of shapes (colour, size, straight-line motion, when they are visible, an
optional colour change) and text signs, on a fixed frame grid. Every pixel of the video and
every answer about it is derived from this graph, so the graph (written to scenes/<id>.json)
is the ground truth for questions, reference reasoning, captions and curation.

Time: frame k shows the scene at t = k / fps. An object is visible on frame k when
appear_s <= t < disappear_s; its centre moves linearly from `start` with `velocity` (pixels
per second) from appear_s on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

EPS = 1e-6


@dataclass
class ColourChange:
    """The object takes `colour` from time `time_s` on."""

    time_s: float
    colour: str


@dataclass
class SceneObject:
    """One moving (or still) shape."""

    id: str
    shape: str
    colour: str
    """Colour when it appears."""
    size: str
    """"large" or "small"."""
    radius: float
    """Half extent in pixels (half side of a square, radius of a circle)."""
    start: tuple[float, float]
    """Centre (x, y) in pixels at appear_s; y grows downwards."""
    velocity: tuple[float, float]
    """Pixels per second (vx, vy)."""
    motion: str
    """"left", "right", "up", "down" or "still"."""
    appear_s: float
    disappear_s: float
    change: Optional[ColourChange] = None

    @property
    def name(self) -> str:
        """How questions refer to it: its first colour and its shape ("red circle")."""
        return f"{self.colour} {self.shape}"


@dataclass
class Sign:
    """A plate with a word on it, standing still."""

    id: str
    text: str
    center: tuple[float, float]
    appear_s: float
    disappear_s: float


@dataclass
class Event:
    """Something that happens at one moment: an object appears, disappears or changes colour."""

    time_s: float
    kind: str
    """"appear", "disappear" or "colour_change"."""
    object_id: str
    detail: str = ""
    """For colour changes, the new colour."""


@dataclass
class Scene:
    """All objects and signs of one clip, with its frame grid."""

    scene_id: str
    width: int
    height: int
    fps: int
    num_frames: int
    level: str
    objects: list[SceneObject] = field(default_factory=list)
    signs: list[Sign] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        """Length of the clip in seconds."""
        return self.num_frames / self.fps

    def frame_time(self, k: int) -> float:
        """Time shown by frame k."""
        return k / self.fps

    def obj(self, object_id: str) -> SceneObject:
        """The object with this id."""
        for o in self.objects:
            if o.id == object_id:
                return o
        raise KeyError(object_id)

    # ---- state at a time -------------------------------------------------------------------
    @staticmethod
    def visible(item: SceneObject | Sign, t: float) -> bool:
        """Whether `item` is on screen at time t."""
        return item.appear_s - EPS <= t < item.disappear_s - EPS

    @staticmethod
    def position(o: SceneObject, t: float) -> tuple[float, float]:
        """Centre of `o` at time t (extrapolated outside its visible interval)."""
        dt = t - o.appear_s
        return o.start[0] + o.velocity[0] * dt, o.start[1] + o.velocity[1] * dt

    @staticmethod
    def colour_at(o: SceneObject, t: float) -> str:
        """Colour of `o` at time t."""
        if o.change is not None and t >= o.change.time_s - EPS:
            return o.change.colour
        return o.colour

    def visible_frames(self, item: SceneObject | Sign) -> list[int]:
        """Frame indices on which `item` is drawn."""
        return [k for k in range(self.num_frames) if self.visible(item, self.frame_time(k))]

    # ---- derived facts ---------------------------------------------------------------------
    def events(self) -> list[Event]:
        """Appearances after the first frame, disappearances before the end, colour changes; by time."""
        out = []
        for o in self.objects:
            if o.appear_s > EPS:
                out.append(Event(o.appear_s, "appear", o.id))
            if o.disappear_s < self.duration_s - EPS:
                out.append(Event(o.disappear_s, "disappear", o.id))
            if o.change is not None:
                out.append(Event(o.change.time_s, "colour_change", o.id, o.change.colour))
        return sorted(out, key=lambda e: (e.time_s, e.object_id, e.kind))

    def travel_px(self, o: SceneObject) -> float:
        """Distance between the object's centre on its first and last visible frame."""
        frames = self.visible_frames(o)
        if len(frames) < 2:
            return 0.0
        (x0, y0), (x1, y1) = (self.position(o, self.frame_time(k)) for k in (frames[0], frames[-1]))
        return math.hypot(x1 - x0, y1 - y0)

    def visible_seconds(self, o: SceneObject) -> float:
        """How long the object is on screen."""
        return len(self.visible_frames(o)) / self.fps

    def region(self, x: float, y: float) -> str:
        """Coarse place of a point on a 3x3 grid: "top left", "center", "bottom", ..."""
        col = ("left", "", "right")[min(2, int(3 * x / self.width))]
        row = ("top", "", "bottom")[min(2, int(3 * y / self.height))]
        return " ".join(p for p in (row, col) if p) or "center"

    # ---- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with the derived event list included for readers of scenes/<id>.json."""
        data = asdict(self)
        data["duration_s"] = self.duration_s
        data["events"] = [asdict(e) for e in self.events()]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Scene":
        """Inverse of to_dict (derived keys are ignored)."""
        objects = []
        for o in data["objects"]:
            o = dict(o)
            o["start"] = tuple(o["start"])
            o["velocity"] = tuple(o["velocity"])
            o["change"] = ColourChange(**o["change"]) if o.get("change") else None
            objects.append(SceneObject(**o))
        signs = [Sign(**{**s, "center": tuple(s["center"])}) for s in data.get("signs", [])]
        keys = ("scene_id", "width", "height", "fps", "num_frames", "level")
        return cls(**{k: data[k] for k in keys}, objects=objects, signs=signs)
