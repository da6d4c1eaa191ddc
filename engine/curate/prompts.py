"""The curation prompts: data files in engine/data/curate/, filled per sample.

Each file says where its text comes from (VideoRFT's appendix D as the project's notes summarise
it, in the project's own words). A file's `version` goes into every request's cache key, so editing
a prompt re-asks the model instead of reusing answers to the old wording.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml

from videorft.engine.curate.requests import VIDEO_SLOT
from videorft.loaders.prompts import problem_with_options
from videorft.loaders.records import Record

PROMPT_DIR = Path(__file__).resolve().parent.parent / "data" / "curate"


@functools.cache
def load_prompt(stage: str) -> dict[str, Any]:
    """The prompt file of a stage ("represent", "reason", "revise")."""
    path = PROMPT_DIR / f"{stage}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("version", "system", "user"):
        if not isinstance(data.get(key), str):
            raise ValueError(f"{path}: '{key}' must be a string")
    return data


def question(record: Record) -> str:
    """The question as the reasoner and the reviser read it: the problem with its options once."""
    return problem_with_options(record, options="auto", template="eval")


def represent_messages(num_frames: int, timestamps: list[str]) -> list[dict[str, Any]]:
    """Stage (a): the frames, then the request for the JSON representation."""
    p = load_prompt("represent")
    user = p["user"].format(num_frames=num_frames, timestamps=", ".join(timestamps))
    return [{"role": "system", "content": p["system"]},
            {"role": "user", "content": [VIDEO_SLOT, {"type": "text", "text": user}]}]


def represent_retry(messages: list[dict[str, Any]], answer: str, error: str) -> list[dict[str, Any]]:
    """The same conversation with the invalid answer and the error appended (one retry)."""
    p = load_prompt("represent")
    return messages + [{"role": "assistant", "content": answer},
                       {"role": "user", "content": p["retry"].format(error=error)}]


def reason_inputs(record: Record, representation: dict[str, Any]) -> dict[str, Any]:
    """The values stage (b)'s prompt is filled with."""
    p = load_prompt("reason")
    return {"video_caption": representation["video_caption"],
            "frames_json": json.dumps(representation["frames"], ensure_ascii=False),
            "question": question(record), "answer_format": p["answer_format"][record.problem_type],
            "representation": representation}


def reason_messages(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    """Stage (b): text only."""
    p = load_prompt("reason")
    fields = {k: v for k, v in inputs.items() if k != "representation"}
    return [{"role": "system", "content": p["system"]}, {"role": "user", "content": p["user"].format(**fields)}]


def revise_messages(record: Record, cot: str) -> list[dict[str, Any]]:
    """Stage (c): the video, the question and the original chain."""
    p = load_prompt("revise")
    user = p["user"].format(question=question(record), cot=cot)
    return [{"role": "system", "content": p["system"]},
            {"role": "user", "content": [VIDEO_SLOT, {"type": "text", "text": user}]}]


def version(stage: str) -> str:
    """The prompt version of a stage."""
    return load_prompt(stage)["version"]
