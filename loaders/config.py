"""Settings of the data path that the loaders read: decoding and preprocessing, records and
prompts, and the synthetic world.

They are the `video`, `data` and `synth` sections of the engine's RunConfig (engine/config.py
composes them; recipes and `section.field=value` overrides fill them in). They live here, next to
the code that reads them, so the loaders take their own settings and never import the engine.
The string under each field documents it (`videorft config --explain`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from videorft.loaders.synth.kinds import KINDS

QuestionKind = Literal[tuple(sorted(KINDS))]  # type: ignore[valid-type]
"""A question kind of the synthetic world (loaders/synth/kinds.py)."""


@dataclass(kw_only=True)
class VideoConfig:
    backend: Literal["auto", "pyav", "decord", "opencv", "dali"] = "auto"
    """Decoder: "auto" is DALI on CUDA and the measured fastest installed decoder on CPU."""
    num_frames: Optional[int] = None
    """Exact frame count (rounded to even); None samples `fps` clamped to [min_frames, max_frames]."""
    fps: float = 2.0
    """Sampling rate used when num_frames is None."""
    min_frames: int = 4
    """Lower clamp of the frame count."""
    max_frames: int = 16
    """Upper clamp of the frame count (16 in training, 32 in evaluation)."""
    min_pixels: Optional[int] = 128 * 28 * 28
    """Per-frame pixel floor for smart_resize; None keeps the native resolution."""
    max_pixels: Optional[int] = 128 * 28 * 28
    """Per-frame pixel ceiling for smart_resize (128*28*28 training, 256*28*28 evaluation)."""
    max_pixels_floor: float = 1.05
    """The ceiling is raised to at least int(min_pixels * this), as qwen-vl-utils does for videos, so
    4:3 videos get the released token grid (364x280 at 128*28*28, not 364x252); 1.0 turns it off."""
    image_min_pixels: int = 4 * 28 * 28
    """Pixel floor for image samples."""
    image_max_pixels: int = 256 * 28 * 28
    """Pixel ceiling for image samples."""
    preprocess: Literal["auto", "torch", "native", "gpu"] = "auto"
    """Resize/normalise/patchify path: "auto" is gpu on CUDA, native when built, else torch."""


@dataclass(kw_only=True)
class DataConfig:
    train_file: str = ""
    """JSON or JSONL records in the VideoRFT / Video-R1 schema for training."""
    eval_file: str = ""
    """Records for evaluation."""
    media_root: str = "."
    """One root for every media path (`./x.mp4` resolves to media_root/x.mp4) for policy and rewards."""
    options: Literal["auto", "append", "never"] = "auto"
    """How options reach the prompt: appended unless the problem already lists them ("auto"), always, never."""
    system_prompt: Literal["default", "r1", "none"] = "default"
    """System message: the model's default, the R1 reasoning prompt (VideoRFT SFT), or none."""
    template: Literal["train", "eval"] = "train"
    """Question template and option layout: VideoRFT's training text or its evaluation text."""
    on_bad_record: Literal["error", "skip"] = "error"
    """A malformed record line stops with file, line and field named, or is skipped and counted."""
    max_samples: Optional[int] = None
    """Use at most this many records (None: all)."""
    num_workers: int = 0
    """DataLoader worker processes that decode and preprocess ahead of the trainer."""
    prefetch: int = 2
    """Batches each worker prepares ahead."""


@dataclass(kw_only=True)
class SynthConfig:
    output_dir: str = "data/synth"
    """Where videos, scene graphs and train/test records are written."""
    num_train: int = 200
    """Training records."""
    num_test: int = 50
    """Held-out records."""
    seed: int = 0
    """World seed: the same seed writes the same videos and records."""
    width: int = 224
    """Frame width in pixels."""
    height: int = 224
    """Frame height in pixels."""
    fps: int = 8
    """Frame rate of the encoded videos."""
    duration_s: float = 4.0
    """Clip length in seconds."""
    codec: Literal["h264", "vp9"] = "h264"
    """H.264 mp4 or VP9 webm."""
    max_objects: int = 4
    """Most shapes in one scene (difficulty)."""
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    """"easy": 1-3 big shapes in four colours, colour/direction/count multiple choice (for a tiny VLM);
    "medium": events, signs and all five problem types; "hard": more, smaller, faster-changing shapes."""
    question_kinds: list[QuestionKind] = field(default_factory=list)
    """Question kinds to ask, e.g. ["count", "direction"] (empty: the difficulty's own mix)."""
    cot_style: Literal["full", "brief"] = "full"
    """Reference reasoning: the five cognitive steps, or one or two short sentences."""
    workers: int = 1
    """Processes that render and encode videos (0: one per CPU core)."""
