"""A prompt's decoded clip as vLLM multimodal input, placed in space and time as training places it.

vLLM 0.32 runs the Hugging Face processor of the checkpoint on what it is given. Two things must
come out equal to the policy's own preprocessing (loaders/preprocess.py) for rollouts and updates
to see the same model input:

- the patch grid: the frames are resized here, with the project's own resize, to the size
  training used, and the processor is told not to resize again (`do_resize=False`), so the
  number of vision tokens and the pixels are the training ones for every Qwen-VL family;
- the time axis: a video goes as (frames, metadata) in source units (source fps, total frame
  count, sampled source indices). transformers derives sampled_fps = len(indices) / total * fps
  from that, and Qwen2.5-VL's second_per_grid_ts = temporal_patch_size / sampled_fps, which is
  training's 2 / clip.sample_fps. Mixing units (e.g. the source fps with total = len(frames))
  would silently change the M-RoPE time ids.

Images go as one HWC uint8 array under "image".
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from videorft.loaders.clip import VideoClip


def video_metadata(clip: VideoClip) -> dict[str, Any]:
    """The metadata dict vLLM attaches to a video item (the keys of its own dummy videos).

    Everything but `do_sample_frames` becomes a transformers `VideoMetadata`; `do_sample_frames`
    False keeps the processor from sampling the already sampled frames again.
    """
    if clip.sample_fps <= 0:
        raise ValueError(f"{clip.path or 'clip'}: sample fps unknown (fps={clip.fps}, "
                         f"total_frames={clip.total_frames}); cannot place frames in time")
    return {"fps": float(clip.fps), "duration": clip.total_frames / clip.fps,
            "total_num_frames": int(clip.total_frames), "frames_indices": [int(i) for i in clip.indices],
            "video_backend": str(clip.extra.get("decoder", "pyav")), "do_sample_frames": False}


def vllm_media(clip: VideoClip, data_type: str, size: Sequence[int] | None = None) -> dict[str, Any]:
    """The multimodal part of one vLLM prompt: {"multi_modal_data": ..., "mm_processor_kwargs": ...}.

    clip: the prompt's decoded clip (uint8 [T, H, W, 3]; one frame for an image record).
    data_type: the record's "video" or "image".
    size: (height, width) of the frames training patchified, i.e. grid_thw[1:] * patch_size
        (multiples of patch_size * merge_size). None: the frames are already at that size, as
        load_video leaves them when video.min/max_pixels are set.
    """
    frames = clip.frames.cpu()                                              # [T, H, W, 3]
    if size is not None and tuple(frames.shape[1:3]) != tuple(size):
        from videorft.loaders.preprocess import resize_video

        frames = resize_video(frames, (int(size[0]), int(size[1])))
    kwargs = {"do_resize": False}
    if data_type == "image":
        return {"multi_modal_data": {"image": frames[0].numpy()}, "mm_processor_kwargs": kwargs}  # [H, W, 3]
    if data_type == "video":
        return {"multi_modal_data": {"video": (frames.numpy(), video_metadata(clip))},
                "mm_processor_kwargs": kwargs}
    raise ValueError(f"{clip.path or 'clip'}: data_type must be 'video' or 'image', got {data_type!r}")


def frame_sizes(data_types: Sequence[str], model_inputs: dict[str, torch.Tensor],
                patch_size: int) -> list[tuple[int, int]]:
    """(height, width) training patchified for each prompt, from the batch's grids.

    model_inputs holds video_grid_thw [V, 3] and image_grid_thw [I, 3] in prompt order within
    each modality (the collator's layout); data_types says which one each prompt has.
    """
    grids = {"video": iter(model_inputs.get("video_grid_thw", torch.empty(0, 3)).tolist()),
             "image": iter(model_inputs.get("image_grid_thw", torch.empty(0, 3)).tolist())}
    sizes = []
    for i, kind in enumerate(data_types):
        grid = next(grids[kind], None) if kind in grids else None
        if grid is None:
            raise ValueError(f"prompt {i}: no {kind} grid in the batch's model inputs")
        sizes.append((int(grid[1]) * patch_size, int(grid[2]) * patch_size))
    return sizes
