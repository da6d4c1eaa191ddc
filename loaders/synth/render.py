"""Draw the frames of a scene: shapes as filled polygons, signs as plates with printed words.

Frames are drawn at twice the target size and box-filtered down, which smooths edges the way
a camera would (and keeps the H.264 encoder from smearing jagged outlines). Pillow's built-in
scalable font prints the signs, so no font file is needed.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from videorft.loaders.synth.levels import BACKGROUND, COLOURS, SIGN_INK, SIGN_PLATE
from videorft.loaders.synth.scene import Scene, SceneObject, Sign

SUPERSAMPLE = 2
"""Frames are drawn this many times larger, then reduced."""


def _regular(cx: float, cy: float, r: float, n: int, phase: float) -> list[tuple[float, float]]:
    return [(cx + r * math.cos(phase + 2 * math.pi * i / n), cy + r * math.sin(phase + 2 * math.pi * i / n))
            for i in range(n)]


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    pts = []
    for i in range(10):
        rad = r if i % 2 == 0 else 0.45 * r
        ang = -math.pi / 2 + math.pi * i / 5
        pts.append((cx + rad * math.cos(ang), cy + rad * math.sin(ang)))
    return pts


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float,
               rgb: tuple[int, int, int]) -> None:
    """Fill one shape of half extent r centred at (cx, cy); every shape fits a circle of 1.2 r."""
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=rgb)
    elif shape == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=rgb, width=max(2, round(0.35 * r)))
    elif shape == "square":
        h = 0.85 * r
        draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=rgb)
    elif shape == "rectangle":
        draw.rectangle((cx - r, cy - 0.55 * r, cx + r, cy + 0.55 * r), fill=rgb)
    elif shape == "triangle":
        draw.polygon(_regular(cx, cy + 0.15 * r, 1.05 * r, 3, -math.pi / 2), fill=rgb)
    elif shape == "diamond":
        draw.polygon(_regular(cx, cy, r, 4, -math.pi / 2), fill=rgb)
    elif shape == "star":
        draw.polygon(_star(cx, cy, 1.1 * r), fill=rgb)
    elif shape == "cross":
        w = 0.32 * r
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=rgb)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=rgb)
    else:
        raise ValueError(f"unknown shape {shape!r}")


@functools.lru_cache(maxsize=16)
def _font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=px)


def sign_box(sign: Sign, scene: Scene, scale: float = 1.0) -> tuple[float, float, float, float]:
    """Plate rectangle (x0, y0, x1, y1) of a sign, in pixels of a frame `scale` times the scene size."""
    font = _font(max(8, round(0.15 * min(scene.width, scene.height) * scale)))
    left, top, right, bottom = font.getbbox(sign.text)
    pad = 0.25 * (bottom - top)
    cx, cy = sign.center[0] * scale, sign.center[1] * scale
    half_w, half_h = (right - left) / 2 + pad, (bottom - top) / 2 + pad
    return cx - half_w, cy - half_h, cx + half_w, cy + half_h


def _draw_sign(draw: ImageDraw.ImageDraw, sign: Sign, scene: Scene) -> None:
    font = _font(max(8, round(0.15 * min(scene.width, scene.height) * SUPERSAMPLE)))
    draw.rectangle(sign_box(sign, scene, SUPERSAMPLE), fill=SIGN_PLATE)
    cx, cy = sign.center[0] * SUPERSAMPLE, sign.center[1] * SUPERSAMPLE
    draw.text((cx, cy), sign.text, font=font, fill=SIGN_INK, anchor="mm")


def _draw_object(draw: ImageDraw.ImageDraw, o: SceneObject, scene: Scene, t: float) -> None:
    x, y = scene.position(o, t)
    s = SUPERSAMPLE
    draw_shape(draw, o.shape, x * s, y * s, o.radius * s, COLOURS[scene.colour_at(o, t)])


def render_frame(scene: Scene, k: int) -> np.ndarray:
    """uint8 [H, W, 3] RGB picture of frame k."""
    t = scene.frame_time(k)
    img = Image.new("RGB", (scene.width * SUPERSAMPLE, scene.height * SUPERSAMPLE), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for sign in scene.signs:
        if scene.visible(sign, t):
            _draw_sign(draw, sign, scene)
    # Large shapes first, so a small one passing close by is never hidden behind a large one.
    for o in sorted(scene.objects, key=lambda o: (o.size != "large", o.id)):
        if scene.visible(o, t):
            _draw_object(draw, o, scene, t)
    return np.asarray(img.reduce(SUPERSAMPLE), dtype=np.uint8)


def render_video(scene: Scene) -> np.ndarray:
    """uint8 [T, H, W, 3] frames of the whole clip."""
    return np.stack([render_frame(scene, k) for k in range(scene.num_frames)])
