"""The curation driver: each model stage runs over the samples it has not finished yet.

Within a stage, `concurrency` workers take samples from a queue; each request goes through the
cache (a hit costs nothing and is counted), the backend answers the rest, and every finished sample
is appended to the stage file at once. A sample whose request fails for good (retries spent) gets no
line, so the next run tries it again; all other work is kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from videorft.engine.curate.backends.base import Backend
from videorft.engine.curate.cache import RequestCache
from videorft.engine.curate.handlers import HANDLERS, NotReady
from videorft.engine.curate.pool import Sample
from videorft.engine.curate.requests import BackendError, ChatRequest, Completion
from videorft.engine.curate.stats import StageStats
from videorft.engine.curate.store import StageFile
from videorft.loaders.video_probe import VideoDecodeError

log = logging.getLogger("videorft")


class CachedCaller:
    """Sends a stage's requests through the cache to its backend and counts what happens."""

    def __init__(self, stage: str, backend: Backend, cache: RequestCache, stats: StageStats):
        self.stage, self.backend, self.cache, self.stats = stage, backend, cache, stats

    async def __call__(self, request: ChatRequest) -> Completion:
        key = request.cache_key()
        hit = self.cache.get(key)
        if hit is not None:
            self.stats.cache_hits += 1
            return Completion(**hit)
        self.stats.requests += 1
        try:
            completion = await self.backend.complete(request)
        except BackendError as err:
            self.stats.failures += 1
            self.stats.retries += err.retries
            raise
        self.stats.retries += completion.retries
        self.stats.tokens_in += completion.tokens_in
        self.stats.tokens_out += completion.tokens_out
        self.stats.latencies.append(completion.latency_s)
        self.cache.put(key, self.stage, completion.to_cache())
        return completion


async def run_stage(stage: str, samples: list[Sample], out_dir: Path, stage_cfg, media_root: str,
                    backend: Backend, cache: RequestCache, earlier: dict[str, dict], progress: bool
                    ) -> tuple[dict[str, dict[str, Any]], StageStats]:
    """Finish `stage` for every sample not yet in <out_dir>/<stage>.jsonl; returns (rows by id, stats)."""
    stats = StageStats(price_in_per_mtok=stage_cfg.price_in_per_mtok, price_out_per_mtok=stage_cfg.price_out_per_mtok)
    store = StageFile(out_dir / f"{stage}.jsonl")
    ask = CachedCaller(stage, backend, cache, stats)
    pending = [s for s in samples if s.id not in store]
    queue: asyncio.Queue[Sample] = asyncio.Queue()
    for sample in pending:
        queue.put_nowait(sample)
    bar = _bar(stage, len(samples), len(samples) - len(pending), progress)
    handler = HANDLERS[stage]
    start = time.perf_counter()

    async def worker() -> None:
        while not queue.empty():
            sample = queue.get_nowait()
            try:
                row = await handler(sample, stage_cfg, media_root, ask, earlier)
            except BackendError as err:
                log.warning("%s: %s (the next run retries this sample)", stage, err)
                continue
            except NotReady:
                continue
            except (FileNotFoundError, ValueError, VideoDecodeError) as err:     # bad media: finished, unusable
                row = {"id": sample.id, "problem_id": sample.record.problem_id, "status": "invalid",
                       "error": f"{type(err).__name__}: {err}"}
            store.append(row)
            stats.samples += 1
            stats.invalid += row["status"] == "invalid"
            if bar is not None:
                bar.update(1)

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, min(stage_cfg.concurrency, len(pending) or 1)))))
    finally:
        stats.seconds = time.perf_counter() - start
        if bar is not None:
            bar.close()
    if len(store.rows) >= len(samples):
        store.compact(s.id for s in samples)
    store.close()
    return store.rows, stats


def _bar(stage: str, total: int, done: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc=f"curate {stage}", dynamic_ncols=True, leave=False)
