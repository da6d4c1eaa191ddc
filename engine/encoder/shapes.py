"""Procedural frame/caption pairs: one coloured shape on a noisy background, drawn with NumPy.

A small stand-in for the synthetic world's `caption_pairs` with the same return layout, used by
the encoder's tests and benchmarks so they need no video files. Captions name the colour, the
shape and the side of the frame ("a red circle on the left").
"""

from __future__ import annotations

import numpy as np

COLOURS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 80, 230), "yellow": (230, 210, 40)}
SHAPES = ("circle", "square", "triangle")
SIDES = ("left", "right")


def _shape_mask(shape: str, size: int, cy: float, cx: float, radius: float) -> np.ndarray:
    """bool [size, size] mask of a shape centred at (cy, cx)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dy, dx = yy - cy, xx - cx
    if shape == "circle":
        return dy * dy + dx * dx <= radius * radius
    if shape == "square":
        return (np.abs(dy) <= radius * 0.85) & (np.abs(dx) <= radius * 0.85)
    # upward triangle: inside the band below the apex and within the widening sides
    top, bottom = cy - radius, cy + radius
    half_width = (yy - top) / (bottom - top) * radius
    return (yy >= top) & (yy <= bottom) & (np.abs(dx) <= half_width)


def shape_pairs(count: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """`count` frames uint8 [count, size, size, 3] and their captions, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    frames = np.empty((count, size, size, 3), dtype=np.uint8)
    captions = []
    names = list(COLOURS)
    for i in range(count):
        colour, shape, side = names[rng.integers(len(names))], SHAPES[rng.integers(3)], SIDES[rng.integers(2)]
        background = rng.normal(70, 12, size=(size, size, 3))
        radius = size * rng.uniform(0.14, 0.22)
        cx = size * (rng.uniform(0.2, 0.35) if side == "left" else rng.uniform(0.65, 0.8))
        cy = size * rng.uniform(0.3, 0.7)
        mask = _shape_mask(shape, size, cy, cx, radius)
        tint = np.asarray(COLOURS[colour], dtype=np.float64) + rng.normal(0, 10, size=3)
        background[mask] = tint
        frames[i] = np.clip(background, 0, 255).astype(np.uint8)
        captions.append(f"a {colour} {shape} on the {side}")
    return frames, captions
