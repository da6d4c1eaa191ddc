"""What every curation backend provides: `complete(request) -> Completion`, awaited.

Backends that batch (in-process transformers and vLLM) collect the requests that are waiting and
run them together in a worker thread, so the stage driver treats every backend the same way.
"""

from __future__ import annotations

import asyncio
from typing import Optional

from videorft.engine.curate.requests import ChatRequest, Completion


class Backend:
    """A model (or oracle) that answers one stage's requests."""

    name = "backend"

    async def complete(self, request: ChatRequest) -> Completion:
        """The model's answer; raises BackendError when it cannot be had."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections, threads and models."""


class BatchingBackend(Backend):
    """Runs waiting requests in batches of up to `batch_size` through `generate_batch` in a thread."""

    def __init__(self, batch_size: int):
        self.batch_size = max(1, batch_size)
        self._queue: Optional[asyncio.Queue] = None
        self._worker: Optional[asyncio.Task] = None

    def generate_batch(self, requests: list[ChatRequest]) -> list[Completion]:
        """Answer a batch, in order (runs in a worker thread)."""
        raise NotImplementedError

    async def complete(self, request: ChatRequest) -> Completion:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._drain())
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((request, future))
        return await future

    async def _drain(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(0)                       # let requests queued in the same tick join
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await asyncio.to_thread(self.generate_batch, [r for r, _ in batch])
            except Exception as err:                     # noqa: BLE001 - handed to every waiter
                for _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
