"""Frame-count and index rules (qwen-vl-utils' smart_nframes and uniform linspace indices)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from videorft.loaders.sampling import sample_indices, smart_nframes


@pytest.mark.parametrize("total, fps_src, kwargs, expect", [
    (300, 30.0, {}, 16),                                          # 10 s * 2 fps = 20, capped at 16
    (300, 30.0, {"min_frames": 16, "max_frames": 16}, 16),       # VideoRFT training
    (300, 30.0, {"min_frames": 32, "max_frames": 32}, 32),       # VideoRFT evaluation
    (30, 30.0, {}, 4),                                            # 1 s: 2 wanted, raised to 4
    (3, 30.0, {}, 2),                                             # fewer frames than min_frames
    (90, 30.0, {"fps": 1.0}, 4),                                  # 3 wanted -> 4 (min)
    (150, 30.0, {"fps": 1.5, "max_frames": 32}, 6),               # 7.5 wanted, floored to 6
    (300, 30.0, {"num_frames": 9}, 8),                            # round(4.5) = 4 (half to even)
    (300, 30.0, {"num_frames": 11}, 12),                          # round(5.5) = 6
])
def test_smart_nframes_cases(total, fps_src, kwargs, expect):
    assert smart_nframes(total, fps_src, **kwargs) == expect


def test_known_indices_of_a_ten_second_clip():
    assert sample_indices(300, 16) == [0, 20, 40, 60, 80, 100, 120, 140, 159, 179, 199, 219, 239, 259, 279, 299]


@pytest.mark.parametrize("total, kwargs", [(1, {}), (5, {"num_frames": 8}), (0, {}), (10, {"num_frames": 1})])
def test_impossible_requests_raise(total, kwargs):
    with pytest.raises(ValueError):
        smart_nframes(total, 30.0, **kwargs)


@settings(max_examples=300, deadline=None)
@given(total=st.integers(2, 5000), video_fps=st.floats(1.0, 120.0), fps=st.floats(0.1, 10.0),
       min_frames=st.integers(1, 40), max_frames=st.integers(2, 64))
def test_frame_count_properties(total, video_fps, fps, min_frames, max_frames):
    try:
        n = smart_nframes(total, video_fps, fps=fps, min_frames=min_frames, max_frames=max_frames)
    except ValueError:
        # only when every clamp leaves fewer than two frames
        assert min(max(total / video_fps * fps, math.ceil(min_frames / 2) * 2), max_frames // 2 * 2, total) < 2
        return
    assert n % 2 == 0 and 2 <= n <= total
    assert n <= max_frames // 2 * 2
    wanted = total / video_fps * fps
    lo = math.ceil(min_frames / 2) * 2
    if lo <= wanted <= max_frames and wanted <= total:
        assert n == int(wanted) // 2 * 2                          # inside the bounds: duration * fps, floored


@settings(max_examples=300, deadline=None)
@given(total=st.integers(2, 20000), data=st.data())
def test_indices_are_uniform_increasing_and_cover_the_clip(total, data):
    n = data.draw(st.integers(2, min(total, 256)))
    idx = sample_indices(total, n)
    assert len(idx) == n and idx[0] == 0 and idx[-1] == total - 1
    assert all(b > a for a, b in zip(idx, idx[1:]))               # distinct, ascending
    step = (total - 1) / (n - 1)
    assert all(abs(i - k * step) <= 0.5 + 1e-3 * max(step, 1) for k, i in enumerate(idx))
