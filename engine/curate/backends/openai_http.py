"""The `openai` backend: any OpenAI-compatible chat-completions server, through the `openai` SDK.

vLLM (`vllm serve`), SGLang, `transformers serve` and hosted APIs all speak this protocol. The
video goes as base64 JPEG image parts at the stage's fps, or as one video part (`video_as: video`).
Several `base_url`s are load-balanced (the least busy server gets the next request); at most
`concurrency` requests are in flight; each has `timeout_s`. Retries are this module's own (the SDK's
are switched off) so that every retry is counted and malformed bodies are retried too.

The API key is read from the environment variable named by `api_key_env` when the backend starts;
it is handed to the SDK only and never logged, cached or written out.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from videorft.engine.config import CurateModelConfig
from videorft.engine.config_loader import ConfigError
from videorft.engine.curate.backends.base import Backend
from videorft.engine.curate.backends.retry import backoff_seconds, retry_after_seconds, retryable_status
from videorft.engine.curate.requests import VIDEO_SLOT, BackendError, ChatRequest, Completion

log = logging.getLogger("videorft")


class MalformedResponse(RuntimeError):
    """A 200 response whose body is not a usable chat completion."""


def read_api_key(stage: str, env_name: str) -> str:
    """The key from the environment ("EMPTY" when no variable is configured, as local servers accept)."""
    if not env_name:
        return "EMPTY"
    key = os.environ.get(env_name)
    if not key:
        raise ConfigError(f"curate.{stage}.api_key_env: the environment variable {env_name} is not set")
    return key


def render_messages(request: ChatRequest) -> list[dict[str, Any]]:
    """OpenAI chat messages, with the video slot turned into image parts or one video part."""
    out = []
    for message in request.messages:
        content = message["content"]
        if isinstance(content, list):
            parts = []
            for part in content:
                if part == VIDEO_SLOT:
                    parts.extend(_video_parts(request))
                else:
                    parts.append(part)
            content = parts
        out.append({"role": message["role"], "content": content})
    return out


def _video_parts(request: ChatRequest) -> list[dict[str, Any]]:
    if request.frames is None:
        raise BackendError(f"stage {request.stage}: the prompt has a video slot but no frames were loaded")
    if request.video_as == "video":
        return [{"type": "video_url", "video_url": {"url": request.frames.video_data_url()}}]
    return [{"type": "image_url", "image_url": {"url": url}} for url in request.frames.jpeg_data_urls()]


def response_text(response: Any) -> str:
    """The answer text; a reasoning server's separate reasoning goes back into <think> tags."""
    try:
        message = response.choices[0].message
        content = message.content
    except (AttributeError, IndexError, TypeError, KeyError) as err:
        raise MalformedResponse(f"no choices[0].message.content in the response ({err})") from None
    if not isinstance(content, str):
        raise MalformedResponse("choices[0].message.content is not text")
    reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
    if isinstance(reasoning, str) and reasoning.strip() and "<think>" not in content:
        content = f"<think>{reasoning.strip()}</think> {content.strip()}"
    return content


class OpenAIBackend(Backend):
    """Chat completions over HTTP with load balancing, bounded concurrency and retries."""

    name = "openai"

    def __init__(self, stage: str, cfg: CurateModelConfig):
        import openai

        if not cfg.base_url:
            raise ConfigError(f"curate.{stage}.base_url: list at least one server, e.g. http://127.0.0.1:8000/v1")
        if not cfg.model:
            raise ConfigError(f"curate.{stage}.model: name the model the server serves")
        key = read_api_key(stage, cfg.api_key_env)
        self.stage, self.cfg, self._openai = stage, cfg, openai
        self.clients = [openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=cfg.timeout_s)
                        for url in cfg.base_url]
        self.in_flight = [0] * len(self.clients)
        self._next = 0
        self._slots = asyncio.Semaphore(max(1, cfg.concurrency))

    def _pick(self) -> int:
        """The least busy server (ties go round-robin)."""
        n = len(self.clients)
        order = [(self._next + i) % n for i in range(n)]
        best = min(order, key=lambda i: self.in_flight[i])
        self._next = (best + 1) % n
        return best

    async def _once(self, request: ChatRequest, messages: list[dict[str, Any]]) -> Completion:
        index = self._pick()
        self.in_flight[index] += 1
        start = time.perf_counter()
        try:
            response = await asyncio.wait_for(
                self.clients[index].chat.completions.create(
                    model=self.cfg.model, messages=messages, **request.sampling.as_dict()),
                timeout=self.cfg.timeout_s + 5.0)
        finally:
            self.in_flight[index] -= 1
        text = response_text(response)
        usage = getattr(response, "usage", None)
        return Completion(text=text, tokens_in=int(getattr(usage, "prompt_tokens", 0) or 0),
                          tokens_out=int(getattr(usage, "completion_tokens", 0) or 0),
                          latency_s=time.perf_counter() - start)

    def _classify(self, err: BaseException) -> tuple[bool, float | None, str]:
        """(retry?, Retry-After seconds, short description) of a failed attempt."""
        o = self._openai
        if isinstance(err, o.APIStatusError):
            headers = getattr(err.response, "headers", None)
            return retryable_status(err.status_code), retry_after_seconds(headers), f"HTTP {err.status_code}"
        if isinstance(err, (o.APITimeoutError, asyncio.TimeoutError)):
            return True, None, "timeout"
        if isinstance(err, o.APIConnectionError):
            return True, None, "connection error"
        if isinstance(err, (MalformedResponse, o.APIResponseValidationError, ValueError)):
            return True, None, f"malformed response ({type(err).__name__})"
        return False, None, f"{type(err).__name__}: {err}"

    async def complete(self, request: ChatRequest) -> Completion:
        messages = await asyncio.to_thread(render_messages, request)
        async with self._slots:
            for attempt in range(self.cfg.max_retries + 1):
                try:
                    completion = await self._once(request, messages)
                    completion.retries = attempt
                    return completion
                except Exception as err:                             # noqa: BLE001 - classified below
                    retry, after, what = self._classify(err)
                    if not retry or attempt == self.cfg.max_retries:
                        raise BackendError(f"{self.stage} {request.record.problem_id}: {what} "
                                           f"after {attempt + 1} attempt(s)", retries=attempt) from None
                    delay = backoff_seconds(attempt, self.cfg.retry_base_s, after)
                    log.debug("%s %s: %s, retry %d in %.2f s", self.stage, request.record.problem_id, what,
                              attempt + 1, delay)
                    await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        for client in self.clients:
            await client.close()
