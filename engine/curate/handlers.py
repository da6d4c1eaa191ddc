"""One sample through one model stage: build the request, ask (through the cache), parse the answer.

Each handler returns the row written to <stage>.jsonl: {"id", "problem_id", "status", ...}, with
status "ok", or "invalid" when the model's output cannot be used (the filter counts it under that
stage's reason), or "skipped" when an earlier stage left nothing to work on.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from videorft.engine.config import CurateModelConfig
from videorft.engine.curate import prompts
from videorft.engine.curate.frames import load_frames
from videorft.engine.curate.pool import Sample
from videorft.engine.curate.representation import RepresentationError, clock, parse_representation
from videorft.engine.curate.requests import ChatRequest, Completion, Sampling
from videorft.engine.rewards import extract_answer, think_text

Ask = Callable[[ChatRequest], Awaitable[Completion]]
"""Sends one request through the cache to the stage's backend."""


class NotReady(Exception):
    """An earlier stage has not finished this sample (it failed in this run); no line is written."""


def _earlier(earlier: dict, stage: str, sample: Sample) -> dict[str, Any] | None:
    """The sample's row of an earlier stage: None when it is unusable; NotReady when it is missing."""
    row = earlier[stage].get(sample.id)
    if row is None:
        raise NotReady(stage)
    return row if row["status"] == "ok" else None


def _row(sample: Sample, status: str, **fields: Any) -> dict[str, Any]:
    return {"id": sample.id, "problem_id": sample.record.problem_id, "status": status, **fields}


def _request(stage: str, cfg: CurateModelConfig, sample: Sample, messages: list, frames=None,
             inputs: dict | None = None) -> ChatRequest:
    return ChatRequest(stage=stage, model=cfg.model or cfg.backend, prompt_version=prompts.version(stage),
                       messages=messages, sampling=Sampling(cfg.temperature, cfg.top_p, cfg.max_tokens, cfg.seed),
                       record=sample.record, frames=frames, inputs=inputs or {}, video_as=cfg.video_as)


async def represent(sample: Sample, cfg: CurateModelConfig, media_root: str, ask: Ask,
                    earlier: dict) -> dict[str, Any]:
    """Stage (a): frames -> validated JSON; one retry that shows the model its error."""
    frames = await asyncio.to_thread(load_frames, sample.record, media_root, cfg)
    n = len(frames.timestamps)
    messages = prompts.represent_messages(n, [clock(t) for t in frames.timestamps])
    answer = (await ask(_request("represent", cfg, sample, messages, frames))).text
    try:
        rep = parse_representation(answer, n)
    except RepresentationError as err:
        retry = prompts.represent_retry(messages, answer, str(err))
        answer = (await ask(_request("represent", cfg, sample, retry, frames))).text
        try:
            rep = parse_representation(answer, n)
        except RepresentationError as err2:
            return _row(sample, "invalid", error=str(err2))
    return _row(sample, "ok", frames=n, representation=rep.model_dump())


async def reason(sample: Sample, cfg: CurateModelConfig, media_root: str, ask: Ask,
                 earlier: dict) -> dict[str, Any]:
    """Stage (b): representation + question -> "<think>..</think> <answer>..</answer>" (text only)."""
    rep_row = _earlier(earlier, "represent", sample)
    if rep_row is None:
        return _row(sample, "skipped", error="no valid representation")
    inputs = prompts.reason_inputs(sample.record, rep_row["representation"])
    text = (await ask(_request("reason", cfg, sample, prompts.reason_messages(inputs), inputs=inputs))).text
    think = think_text(text)
    if think is None or not extract_answer(text):
        return _row(sample, "invalid", error="no <think> or no <answer> block", text=text)
    return _row(sample, "ok", think=think.strip(), answer=extract_answer(text), text=text)


async def revise(sample: Sample, cfg: CurateModelConfig, media_root: str, ask: Ask,
                 earlier: dict) -> dict[str, Any]:
    """Stage (c): video + question + chain -> the revised "<think>..</think>"."""
    chain = _earlier(earlier, "reason", sample)
    if chain is None:
        return _row(sample, "skipped", error="no valid chain of thought")
    frames = await asyncio.to_thread(load_frames, sample.record, media_root, cfg)
    cot = f"<think>{chain['think']}</think>"
    messages = prompts.revise_messages(sample.record, cot)
    text = (await ask(_request("revise", cfg, sample, messages, frames, inputs={"cot": cot}))).text
    think = think_text(text)
    if think is None or not think.strip():
        return _row(sample, "invalid", error="no <think> block in the revision", text=text)
    return _row(sample, "ok", think=think.strip())


HANDLERS = {"represent": represent, "reason": reason, "revise": revise}
"""Model stages by name, in pipeline order."""
