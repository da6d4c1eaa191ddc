"""What a curation stage asks a model, and what it gets back.

A `ChatRequest` holds OpenAI-style chat messages whose user turn may carry the video, which stays
as decoded frames (`FrameSet`) until a backend renders it: base64 JPEG image parts for HTTP servers,
Qwen-VL video inputs for in-process transformers. Its cache key hashes everything that decides the
answer (stage, model, prompt version, messages, sampling parameters, frame pixels), never the API key.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from videorft.loaders.clip import VideoClip
from videorft.loaders.records import Record

VIDEO_SLOT = {"type": "video_slot"}
"""Marks where a user turn's video goes; backends replace it with their own rendering."""


@dataclass
class FrameSet:
    """Frames sampled from one video for one stage."""

    clip: VideoClip
    """The decoded frames (uint8 [T, H, W, 3]), their times and source indices."""

    @property
    def frames(self) -> torch.Tensor:
        """uint8 [T, H, W, 3] RGB frames."""
        return self.clip.frames

    @property
    def timestamps(self) -> list[float]:
        """Time of each frame in seconds."""
        return self.clip.timestamps

    @property
    def indices(self) -> list[int]:
        """Source frame index of each frame."""
        return self.clip.indices

    @property
    def path(self) -> str:
        """The video file (sent whole when a stage's `video_as` is "video")."""
        return self.clip.path

    @property
    def digest(self) -> str:
        """sha256 of the pixels and their times: the video's part of a request's cache key."""
        h = hashlib.sha256()
        h.update(json.dumps([list(self.frames.shape), self.timestamps]).encode())
        h.update(self.frames.contiguous().numpy().tobytes())
        return h.hexdigest()

    def jpeg_data_urls(self, quality: int = 90) -> list[str]:
        """One "data:image/jpeg;base64,..." URL per frame."""
        from PIL import Image

        urls = []
        for frame in self.frames.numpy().astype(np.uint8):                 # [H, W, 3]
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
            urls.append("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))
        return urls

    def video_data_url(self) -> str:
        """The whole video file as a base64 data URL (mp4 or webm)."""
        mime = "video/webm" if self.path.endswith(".webm") else "video/mp4"
        with open(self.path, "rb") as f:
            return f"data:{mime};base64," + base64.b64encode(f.read()).decode("ascii")


@dataclass
class Sampling:
    """Sampling parameters sent with a request."""

    temperature: float
    top_p: float
    max_tokens: int
    seed: Optional[int] = None

    def as_dict(self) -> dict[str, Any]:
        """The parameters as OpenAI chat-completions fields (seed only when set)."""
        out = {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens}
        if self.seed is not None:
            out["seed"] = self.seed
        return out


@dataclass
class ChatRequest:
    """One call to a stage's model."""

    stage: str
    model: str
    prompt_version: str
    messages: list[dict[str, Any]]
    """system/user turns; user content is a string or a list of text parts and VIDEO_SLOT."""
    sampling: Sampling
    record: Record
    """The question the request is about (the world backend reads its scene graph)."""
    frames: Optional[FrameSet] = None
    """The video, for stages that see it."""
    inputs: dict[str, Any] = field(default_factory=dict)
    """The values the prompt was filled with (the world backend reads them instead of parsing text)."""
    video_as: str = "frames"
    """How an HTTP backend sends the video: "frames" (JPEG parts) or "video" (the file)."""

    def cache_key(self) -> str:
        """sha256 over stage, model, prompt version, messages, sampling and the frames' digest."""
        payload = {"stage": self.stage, "model": self.model, "prompt": self.prompt_version,
                   "messages": self.messages, "sampling": self.sampling.as_dict(),
                   "frames": self.frames.digest if self.frames is not None else None,
                   "video_as": self.video_as if self.frames is not None else None}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def text_messages(self) -> list[dict[str, Any]]:
        """The messages with the video slot dropped (for text-only backends and logs)."""
        out = []
        for m in self.messages:
            content = m["content"]
            if isinstance(content, list):
                content = "\n".join(p["text"] for p in content if p.get("type") == "text")
            out.append({"role": m["role"], "content": content})
        return out


@dataclass
class Completion:
    """A model's answer to one request, with what it cost."""

    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    retries: int = 0
    """Attempts that failed before this answer came (not stored in the cache)."""

    def to_cache(self) -> dict[str, Any]:
        """What the cache keeps: the text and its token counts."""
        return {"text": self.text, "tokens_in": self.tokens_in, "tokens_out": self.tokens_out}


class BackendError(RuntimeError):
    """A request that failed for good (retries spent, or an error retrying cannot fix)."""

    def __init__(self, message: str, retries: int = 0):
        super().__init__(message)
        self.retries = retries
        """Attempts that were retried before giving up."""
