"""The per-frame pixel bounds of a video follow qwen-vl-utils, so 4:3 videos get the released grid."""

import pytest

from videorft.engine.config import VideoConfig
from videorft.loaders.preprocess import target_size
from videorft.loaders.video import video_pixel_bounds

TRAIN, EVAL = 128 * 28 * 28, 256 * 28 * 28


@pytest.mark.parametrize("height,width", [(480, 640), (720, 960), (968, 1296), (1080, 1440), (1440, 1920)])
def test_four_by_three_videos_get_the_released_training_grid(height, width):
    """min = max = 128*28*28: qwen-vl-utils' ceiling (105,369 pixels) gives 280x364 frames,
    10 x 13 merged tokens per frame pair; the bare ceiling would give 252x364 (9 x 13)."""
    cfg = VideoConfig(min_pixels=TRAIN, max_pixels=TRAIN)
    assert video_pixel_bounds(cfg) == (TRAIN, 105_369)
    assert target_size(height, width, *video_pixel_bounds(cfg)) == (280, 364)
    bare = VideoConfig(min_pixels=TRAIN, max_pixels=TRAIN, max_pixels_floor=1.0)
    assert target_size(height, width, *video_pixel_bounds(bare)) == (252, 364)


def test_evaluation_bounds_and_open_bounds():
    assert video_pixel_bounds(VideoConfig(min_pixels=EVAL, max_pixels=EVAL)) == (EVAL, 210_739)
    assert target_size(480, 640, *video_pixel_bounds(VideoConfig(min_pixels=EVAL, max_pixels=EVAL))) == (392, 504)
    assert video_pixel_bounds(VideoConfig(min_pixels=None, max_pixels=None)) == (None, None)
    assert video_pixel_bounds(VideoConfig(min_pixels=TRAIN, max_pixels=4 * TRAIN)) == (TRAIN, 4 * TRAIN)
