"""Frame/caption pairs from a synthetic world, for training a small image-text encoder.

Frames are decoded from the world's own video files (the same decoder the training run uses),
and each caption says literally what that frame shows according to the scene graph: every
visible shape with its current colour, its size and where it is, and any sign with its word.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from videorft.loaders.synth.phrases import frame_caption
from videorft.loaders.synth.world import read_scene


def caption_pairs(world_dir: str | Path, split: str = "train", frames_per_video: int = 4,
                  backend: str = "auto") -> tuple[torch.Tensor, list[str]]:
    """(frames uint8 [N, H, W, 3], N captions) from the videos of `split` in a world folder.

    frames_per_video frames (rounded to even) are sampled uniformly from each clip, so
    N = records * frames_per_video; frames keep the world's resolution. Caption example:
    "a large red circle on the left and a small blue square at the top right".
    """
    from videorft.loaders.video import load_video

    root = Path(world_dir)
    records_file = root / f"{split}.jsonl"
    if not records_file.is_file():
        raise FileNotFoundError(f"{records_file} does not exist; write the world with `videorft synth`")
    frames, captions = [], []
    for line in records_file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        video = root / record["path"]
        scene, _ = read_scene(root, video.stem)
        clip = load_video(video, num_frames=frames_per_video, backend=backend)
        frames.append(clip.frames.cpu())                                     # [T, H, W, 3]
        captions.extend(frame_caption(scene, k) for k in clip.indices)
    if not frames:
        raise ValueError(f"{records_file} holds no records")
    return torch.cat(frames), captions
