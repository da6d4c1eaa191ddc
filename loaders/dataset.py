"""The dataset of video (and image) questions: one decode per sample, policy inputs next to it.

`VideoQADataset[i]` decodes record i's media once into a VideoClip, preprocesses it for the
Qwen-VL vision tower, and builds the prompt (and, for SFT, the target) token ids. The clip is
kept in the sample, so the semantic reward embeds exactly the frames the policy saw, without a
second decode. Media that cannot be read gives a `SkippedSample` instead of an exception: the
collate functions drop it, the loader counts and logs it, and the run goes on.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from videorft.loaders.clip import VideoClip
from videorft.loaders.family import ModelFamily, family_named
from videorft.loaders.prompts import build_messages, render_prompt, response_text
from videorft.loaders.records import Record

log = logging.getLogger("videorft")

Decoder = Callable[[Path], VideoClip]


@dataclass
class Sample:
    """One prompt ready for the model, with the decoded clip it was built from."""

    index: int
    """Position of the record in the dataset."""
    record: Record
    clip: VideoClip
    """The decoded frames (uint8 [T, H, W, 3]); one frame for an image record."""
    prompt_text: str
    """Chat-templated prompt with one vision placeholder block (what vLLM-style engines take)."""
    prompt_ids: torch.Tensor
    """long [P]: the prompt with the vision placeholder expanded to the clip's token count."""
    pixel_values: torch.Tensor
    """float32 [N, 3*tps*p*p]: patch rows of the clip (pixel_values_videos or pixel_values)."""
    grid_thw: torch.Tensor
    """long [3]: (gt, gh, gw) of the patch grid."""
    second_per_grid_t: Optional[float] = None
    """Seconds per temporal patch from the true sampling rate (videos of families whose forward
    takes it, i.e. Qwen2.5-VL; None otherwise)."""
    response_ids: Optional[torch.Tensor] = None
    """long [R]: SFT target tokens (reasoning, answer, end-of-turn), when requested."""
    decode_seconds: float = 0.0
    """Wall time spent decoding the media of this sample."""
    preprocess_seconds: float = 0.0
    """Wall time spent resizing, normalising and patchifying it."""

    @property
    def is_video(self) -> bool:
        return self.record.data_type == "video"

    @property
    def length(self) -> int:
        """Tokens of prompt plus target."""
        return int(self.prompt_ids.numel()) + (0 if self.response_ids is None else int(self.response_ids.numel()))


@dataclass
class SkippedSample:
    """A record left out of its batch, and why."""

    index: int
    origin: str
    """ "file:line" of the record."""
    reason: str


def _load_video(path: Path, video_cfg, backend: str, fallback: Optional[str], resize: str) -> VideoClip:
    from videorft.loaders.video import load_video_from_config

    return load_video_from_config(path, video_cfg, backend, fallback=fallback, resize=resize)


def load_image(path: Path) -> VideoClip:
    """An image as a one-frame clip (uint8 [1, H, W, 3]); raises VideoDecodeError when unreadable."""
    from PIL import Image, UnidentifiedImageError

    from videorft.loaders.video_probe import VideoDecodeError
    try:
        with Image.open(path) as img:
            frame = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.uint8).copy())
    except (OSError, UnidentifiedImageError) as err:
        raise VideoDecodeError(f"{path}: cannot read image ({err})") from err
    return VideoClip(frames=frame[None], indices=[0], timestamps=[0.0], fps=0.0, total_frames=1, path=str(path))


def temporal_patch_times(timestamps: Sequence[float], tps: int = 2) -> list[float]:
    """Mean time of each temporal patch (Qwen3-VL writes it before the patch's tokens)."""
    ts = list(timestamps) + [timestamps[-1]] * (-len(timestamps) % tps)
    return [sum(ts[i:i + tps]) / tps for i in range(0, len(ts), tps)]


class VideoQADataset(Dataset):
    """Records -> `Sample`s (or `SkippedSample`s for unreadable media or over-long samples).

    mode "prompt": prompt only (GRPO rollouts, evaluation); "sft": prompt + target tokens.
    video_cfg: a VideoConfig (frames and pixels); data_cfg: a DataConfig (media_root, options,
    system_prompt, template). family: the policy's ModelFamily (placeholder expansion, patch
    geometry; loaders.family.family_of(model.config)). decoder: path -> VideoClip, by default
    load_video with video_cfg; max_length drops SFT samples longer than that many tokens.
    video_decoder, decoder_fallback, preprocess: the decoder name, its fallback and the
    preprocessing path a run resolved at start-up (loaders.video.resolve_video_backends); what is
    not given is resolved here, once, from video_cfg.backend and video_cfg.preprocess.
    """

    def __init__(self, records: Sequence[Record], tokenizer, video_cfg, data_cfg, mode: Literal["prompt", "sft"],
                 family: Optional[ModelFamily] = None, decoder: Optional[Decoder] = None,
                 max_length: Optional[int] = None, *, video_decoder: Optional[str] = None,
                 decoder_fallback: Optional[str] = None, preprocess: Optional[str] = None):
        if mode not in ("prompt", "sft"):
            raise ValueError(f"mode must be 'prompt' or 'sft', got {mode!r}")
        self.records = list(records)
        self.tokenizer = tokenizer
        self.video_cfg = video_cfg
        self.data_cfg = data_cfg
        self.mode = mode
        self.family = family or family_named("qwen2_5_vl")
        self.spec = self.family.spec
        if video_decoder is None or preprocess is None:       # not handed down: resolve once, here
            from videorft.loaders.video import resolve_video_backends

            video_decoder, fallback, preprocess = resolve_video_backends(video_decoder or video_cfg.backend,
                                                                         preprocess or video_cfg.preprocess)
            decoder_fallback = decoder_fallback or fallback
        self.video_decoder, self.decoder_fallback, self.preprocess = video_decoder, decoder_fallback, preprocess
        self.decoder = decoder or functools.partial(_load_video, video_cfg=video_cfg, backend=video_decoder,
                                                    fallback=decoder_fallback, resize=self.preprocess)
        self.max_length = max_length
        self.media_root = Path(data_cfg.media_root)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> Sample | SkippedSample:
        record = self.records[index]
        from videorft.loaders.video_probe import VideoDecodeError
        started = time.perf_counter()
        try:
            clip = self._decode(record)
        except (VideoDecodeError, FileNotFoundError) as err:
            return SkippedSample(index, record.origin, f"unreadable media: {err}")
        sample = self.build(index, record, clip)
        sample.decode_seconds = time.perf_counter() - started - sample.preprocess_seconds
        if self.max_length is not None and sample.length > self.max_length:
            return SkippedSample(index, record.origin, f"{sample.length} tokens > max_length {self.max_length}")
        return sample

    def _decode(self, record: Record) -> VideoClip:
        path = record.media_path(self.media_root)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (media_root {self.media_root})")
        return self.decoder(path) if record.data_type == "video" else load_image(path)

    def _vision_inputs(self, record: Record, clip: VideoClip) -> tuple[torch.Tensor, torch.Tensor, Optional[float]]:
        from videorft.loaders.preprocess import preprocess_frames, target_size, video_inputs
        from videorft.loaders.video import video_pixel_bounds

        v = self.video_cfg
        if record.data_type == "video":
            out = video_inputs(clip, *video_pixel_bounds(v), self.preprocess, self.spec)
            seconds = out["second_per_grid_ts"] if self.family.takes_seconds else None
            return out["pixel_values_videos"], out["video_grid_thw"], seconds
        h, w = int(clip.frames.shape[1]), int(clip.frames.shape[2])
        size = target_size(h, w, v.image_min_pixels, v.image_max_pixels, self.spec.factor)
        rows, grid = preprocess_frames(clip.frames, size, self.preprocess, self.spec)
        return rows, grid, None

    def _expand(self, text: str, record: Record, clip: VideoClip, grid: torch.Tensor) -> str:
        if record.data_type == "image":
            return self.family.expand_image(text, grid.tolist())
        times = [temporal_patch_times(clip.timestamps, self.spec.temporal_patch_size)]
        return self.family.expand_video(text, [grid.tolist()], times)

    def _ids(self, text: str) -> torch.Tensor:
        return torch.tensor(self.tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)

    def build(self, index: int, record: Record, clip: VideoClip) -> Sample:
        """The sample of `record` from an already decoded clip (no decoding here)."""
        d = self.data_cfg
        messages = build_messages(record, d.system_prompt, d.options, d.template)
        prompt_text = render_prompt(self.tokenizer, messages, d.system_prompt)
        started = time.perf_counter()
        rows, grid, spg = self._vision_inputs(record, clip)
        preprocess_seconds = time.perf_counter() - started
        prompt_ids = self._ids(self._expand(prompt_text, record, clip, grid))  # [P]
        response_ids = None
        if self.mode == "sft":
            response_ids = self._ids(response_text(record) + self.tokenizer.eos_token)  # [R]
        return Sample(index=index, record=record, clip=clip, prompt_text=prompt_text, prompt_ids=prompt_ids,
                      pixel_values=rows, grid_thw=grid, second_per_grid_t=spg, response_ids=response_ids,
                      preprocess_seconds=preprocess_seconds)

