"""`videorft curate`: run the configured curation stages and write cot.jsonl and stats.json.

    <output_dir>/represent.jsonl, reason.jsonl, revise.jsonl   one line per sample and stage
    <output_dir>/filter.jsonl                                  kept or dropped, with the reason
    <output_dir>/cot.jsonl                                     the kept chains as SFT records
    <output_dir>/stats.json                                    requests, cache hits, failures, retries,
                                                               tokens, latency, cost; drops by reason
    <output_dir>/cache/requests.sqlite                         every answered request
With curate.shard = "i/n" all of it goes to <output_dir>/shards/i-of-n/; `videorft curate --merge`
joins the shards into <output_dir> (merge.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from videorft.engine.config import RunConfig
from videorft.engine.config_loader import ConfigError
from videorft.engine.curate.backends import make_backend
from videorft.engine.curate.cache import RequestCache
from videorft.engine.curate.chain_filter import run_filter
from videorft.engine.curate.handlers import HANDLERS
from videorft.engine.curate.pool import parse_shard, read_pool
from videorft.engine.curate.runner import run_stage
from videorft.engine.curate.stats import curation_table
from videorft.engine.curate.store import write_jsonl

log = logging.getLogger("videorft")
STAGE_ORDER = ("represent", "reason", "revise", "filter")


class CurationIncomplete(RuntimeError):
    """Some samples failed for good in this run; a rerun retries exactly those."""


def check_stages(stages: list[str]) -> list[str]:
    """The stage list in pipeline order; each needs the one before it (revise may be left out)."""
    unknown = [s for s in stages if s not in STAGE_ORDER]
    if unknown:
        raise ConfigError(f"curate.stages: unknown stage {unknown[0]!r}; choose from {list(STAGE_ORDER)}")
    ordered = [s for s in STAGE_ORDER if s in stages]
    if ordered != list(stages):
        raise ConfigError(f"curate.stages: list them in pipeline order {list(STAGE_ORDER)}, got {stages}")
    for need, stage in (("represent", "reason"), ("reason", "revise"), ("reason", "filter")):
        if stage in ordered and need not in ordered:
            raise ConfigError(f"curate.stages: {stage!r} needs {need!r} before it")
    return ordered


def output_dir(cfg: RunConfig) -> Path:
    """Where this run writes: output_dir, or its shard folder."""
    shard = parse_shard(cfg.curate.shard)
    root = Path(cfg.curate.output_dir)
    return root if shard is None else root / "shards" / f"{shard[0]}-of-{shard[1]}"


def _read_rows(path: Path) -> dict[str, dict]:
    from videorft.engine.curate.store import StageFile

    store = StageFile(path)
    store.close()
    return store.rows


async def _model_stages(cfg: RunConfig, samples, out: Path, device: str) -> tuple[dict, dict]:
    c = cfg.curate
    cache = RequestCache(Path(c.cache_dir) if c.cache_dir else out / "cache")
    rows: dict[str, dict] = {}
    stats: dict[str, Any] = {}
    try:
        for stage in (s for s in c.stages if s in HANDLERS):
            backend = make_backend(stage, cfg, device)
            try:
                rows[stage], st = await run_stage(stage, samples, out, getattr(c, stage), cfg.data.media_root,
                                                  backend, cache, rows, cfg.run.progress)
            finally:
                await backend.aclose()
            stats[stage] = st.summary()
            log.info("curate %s: %s", stage, stats[stage])
    finally:
        cache.close()
    return rows, stats


def curate(cfg: RunConfig, device: str = "cpu") -> dict[str, Any]:
    """Run the configured stages over the pool (or this shard of it); returns stats.json's content."""
    c = cfg.curate
    stages = check_stages(list(c.stages))
    started = time.perf_counter()
    pool = read_pool(c.input_file, cfg.data.on_bad_record, c.max_samples, parse_shard(c.shard))
    if "filter" in stages and not c.filter.encoder_path and \
            any(s.record.problem_type == "free-form" for s in pool.samples):
        raise ConfigError("curate.filter.encoder_path: the pool has free-form questions, whose answers are "
                          "compared with the reference through a text encoder; name a SigLIP checkpoint")
    out = output_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    rows, stage_stats = asyncio.run(_model_stages(cfg, pool.samples, out, device))
    failed = {s: len(pool.samples) - len(r) for s, r in rows.items() if len(r) < len(pool.samples)}
    stats: dict[str, Any] = {"samples": len(pool.samples), "duplicates": pool.duplicates,
                             "bad_records": pool.bad_records, "stages": stage_stats}
    if "filter" in stages and not failed:
        filter_rows, records, counts = run_filter(pool.samples, rows, stages, c.filter, pool.duplicates)
        write_jsonl(out / "filter.jsonl", filter_rows)
        write_jsonl(out / "cot.jsonl", records)
        stats["filter"] = counts
    stats["seconds"] = round(time.perf_counter() - started, 2)
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    print(curation_table(stats))
    if failed:
        raise CurationIncomplete(f"curation of {out} is incomplete: unfinished samples per stage {failed}; "
                                 "rerun the same command to retry them (finished work is kept)")
    return stats


def run(cfg: RunConfig) -> dict[str, Any]:
    """Stage entry point of `videorft curate`."""
    from videorft.engine.backends import resolve_device
    from videorft.engine.run_dir import RunDir

    run_dir = RunDir(cfg, "curate")
    try:
        stats = curate(cfg, str(resolve_device(cfg.run.device)))
    finally:
        run_dir.close()
    return {"output_dir": str(output_dir(cfg)), **{k: v for k, v in stats.items() if k != "stages"}}
