"""The structured video representation of stage (a), its schema and its validation.

The fields follow VideoRFT's appendix D: an overall caption and one entry per sampled frame with a
timestamp, a caption and key elements (objects, actions, scene, notable features, spatial relations,
human attributes, potential interactions). Model output is parsed leniently (a ```json fence or
text around the object is tolerated) and validated strictly; an error names the field, e.g.
"frames[2].key_elements.objects: Input should be a valid list", and is sent back to the model once.
"""

from __future__ import annotations

import json
import re
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

_TIMESTAMP = r"^\d{2}:\d{2}:\d{2}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class HumanAttributes(_Strict):
    """A person's look, when the frame shows one."""

    gender: Literal["male", "female", "unknown"]
    clothing: str
    posture: str


class KeyElements(_Strict):
    """What one frame contains."""

    objects: list[str]
    actions: list[str]
    scene: str
    notable_features: list[str]
    spatial_relations: list[str]
    human_attributes: Optional[HumanAttributes]
    potential_interactions: list[str]


class FrameDescription(_Strict):
    """One sampled frame."""

    timestamp: str = Field(pattern=_TIMESTAMP)
    caption: str = Field(min_length=1)
    key_elements: KeyElements


class VideoRepresentation(_Strict):
    """The whole representation of one video."""

    video_caption: str = Field(min_length=1)
    frames: list[FrameDescription]


class RepresentationError(ValueError):
    """Model output that is not a valid representation; the message names the problem."""


def clock(seconds: float) -> str:
    """A time in seconds as "HH:MM:SS"."""
    s = int(round(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _json_object(text: str) -> dict:
    """The JSON object in `text` (bare, fenced, or with words around it)."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise RepresentationError("the answer holds no JSON object")
    try:
        value = json.loads(body[start:end + 1])
    except json.JSONDecodeError as err:
        raise RepresentationError(f"the JSON does not parse: {err.msg} at character {err.pos}") from None
    if not isinstance(value, dict):
        raise RepresentationError("the answer is not a JSON object")
    return value


def parse_representation(text: str, num_frames: int) -> VideoRepresentation:
    """Validate a model's answer; raises RepresentationError naming the first bad field."""
    data = _json_object(text)
    try:
        rep = VideoRepresentation.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in first["loc"]).replace(".[", "[")
        raise RepresentationError(f"{where or 'the object'}: {first['msg']}") from None
    if len(rep.frames) != num_frames:
        raise RepresentationError(f"frames: expected {num_frames} entries (one per frame), got {len(rep.frames)}")
    return rep
