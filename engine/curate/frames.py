"""Frames a stage sends to its model: the video sampled at the stage's fps, at most `max_frames`."""

from __future__ import annotations

import math
from pathlib import Path

from videorft.engine.config import CurateModelConfig
from videorft.engine.curate.requests import FrameSet
from videorft.loaders.records import Record

MIN_PIXELS = 4 * 28 * 28
"""Pixel floor of a frame when a ceiling is set (small videos are not blown up further)."""


def load_frames(record: Record, media_root: str, cfg: CurateModelConfig) -> FrameSet:
    """Decode the record's video (or image) for one stage; errors name the file."""
    from videorft.loaders.dataset import load_image
    from videorft.loaders.video import load_video
    from videorft.loaders.video_probe import probe_video

    path = record.media_path(media_root)
    if not Path(path).is_file():
        raise FileNotFoundError(f"{record.origin}: path: {path} does not exist (media root {media_root})")
    if record.data_type == "image":
        return FrameSet(load_image(Path(path)))
    index = probe_video(path)
    duration = index.total_frames / index.fps if index.fps > 0 else 1.0
    count = max(1, min(cfg.max_frames, math.ceil(duration * cfg.fps - 1e-6)))
    floor = None if cfg.max_pixels is None else min(cfg.max_pixels, MIN_PIXELS)
    return FrameSet(load_video(path, num_frames=count, min_pixels=floor, max_pixels=cfg.max_pixels))
