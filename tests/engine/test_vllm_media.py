"""What the vLLM engine hands vLLM for a prompt's clip: training's frames, grid and time axis.

vLLM itself is not installed on CPU; transformers' own VideoMetadata (which vLLM builds from the
metadata dict) and the Qwen2.5-VL processor's formula stand in for the processor call.
"""

import numpy as np
import pytest
import torch
from transformers.video_utils import VideoMetadata

from videorft.engine.rollout.media import frame_sizes, video_metadata, vllm_media
from videorft.loaders.clip import VideoClip
from videorft.loaders.preprocess import resize_video, target_size, video_inputs
from videorft.loaders.video import load_video
from videorft.loaders.video_writer import encode_video, pattern_frames

TEMPORAL_PATCH = 2
PIXELS = 56 * 84


def _hf_second_per_grid(meta: dict) -> float:
    """Qwen2.5-VL processor: temporal_patch_size / sampled_fps of the VideoMetadata vLLM builds."""
    md = VideoMetadata(**{k: v for k, v in meta.items() if k != "do_sample_frames"})
    return TEMPORAL_PATCH / md.sampled_fps


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[int, VideoClip]:
    """Real encoded videos of several frame rates, decoded as the trainer decodes them."""
    root = tmp_path_factory.mktemp("fps")
    out = {}
    for fps, frames in ((5, 13), (12, 30), (25, 61), (30, 47)):
        path = encode_video(root / f"v{fps}.mp4", pattern_frames(frames, 64, 96, seed=fps), fps=fps)
        out[fps] = load_video(path, fps=2.0, min_frames=4, max_frames=8, min_pixels=PIXELS, max_pixels=PIXELS,
                              backend="pyav")
    return out


def test_vllm_second_per_grid_equals_trainings_at_every_frame_rate(clips):
    seen = set()
    for fps, clip in clips.items():
        frames, meta = vllm_media(clip, "video")["multi_modal_data"]["video"]
        training = video_inputs(clip, PIXELS, PIXELS, backend="torch")["second_per_grid_ts"]
        assert _hf_second_per_grid(meta) == pytest.approx(training, rel=1e-9), fps
        assert np.array_equal(frames, clip.frames.numpy())                  # already on training's grid
        seen.add(round(training, 6))
    assert len(seen) == len(clips)                                         # the clips really differ in time


def test_counting_sampled_frames_as_the_total_would_break_the_match(clips):
    """The unit trap: the source fps with total = len(frames) gives temporal_patch / fps instead."""
    clip = clips[30]
    wrong = dict(video_metadata(clip), total_num_frames=len(clip.indices))
    training = video_inputs(clip, PIXELS, PIXELS, backend="torch")["second_per_grid_ts"]
    assert _hf_second_per_grid(wrong) != pytest.approx(training, rel=1e-3)


def test_an_image_goes_as_one_hwc_frame_at_the_training_size():
    frame = torch.randint(0, 256, (1, 50, 70, 3), dtype=torch.uint8)
    clip = VideoClip(frames=frame, indices=[0], timestamps=[0.0], fps=0.0, total_frames=1, path="x.png")
    size = target_size(50, 70, 4 * 28 * 28, 256 * 28 * 28)
    media = vllm_media(clip, "image", size)
    image = media["multi_modal_data"]["image"]
    assert set(media["multi_modal_data"]) == {"image"} and media["mm_processor_kwargs"] == {"do_resize": False}
    assert image.dtype == np.uint8 and image.shape == (*size, 3)
    assert np.array_equal(image, resize_video(frame, size)[0].numpy())


def test_bad_media_is_named():
    still = VideoClip(frames=torch.zeros(1, 28, 28, 3, dtype=torch.uint8), indices=[0], timestamps=[0.0],
                      fps=0.0, total_frames=1, path="still.png")
    with pytest.raises(ValueError, match="still.png: sample fps unknown"):
        vllm_media(still, "video")
    with pytest.raises(ValueError, match="still.png: data_type must be"):
        vllm_media(still, "audio")


def test_frame_sizes_follow_each_modality_in_prompt_order():
    inputs = {"video_grid_thw": torch.tensor([[2, 4, 6], [4, 8, 2]]), "image_grid_thw": torch.tensor([[1, 2, 2]])}
    assert frame_sizes(["video", "image", "video"], inputs, 14) == [(56, 84), (28, 28), (112, 28)]
    with pytest.raises(ValueError, match="prompt 1: no image grid"):
        frame_sizes(["video", "image"], {"video_grid_thw": inputs["video_grid_thw"]}, 14)

