"""`videorft curate --merge`: join the outputs of the shards of one curation into output_dir.

Every shard i-of-n under <output_dir>/shards/ must have finished (its stats.json holds filter
counts). cot.jsonl and filter.jsonl are joined in pool order; stats.json adds up the shards'
counts (latency percentiles cannot be added, so each shard's stay in its own stats.json).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from videorft.engine.config import RunConfig
from videorft.engine.config_loader import ConfigError
from videorft.engine.curate.pool import read_pool
from videorft.engine.curate.stats import curation_table
from videorft.engine.curate.store import write_jsonl

ADDITIVE = ("samples", "invalid", "requests", "cache_hits", "failures", "retries", "tokens_in", "tokens_out")


def _shard_dirs(root: Path) -> list[Path]:
    found = sorted((root / "shards").glob("*-of-*")) if (root / "shards").is_dir() else []
    if not found:
        raise ConfigError(f"curate --merge: no shard folders under {root / 'shards'}")
    counts = {int(re.match(r"\d+-of-(\d+)", d.name).group(1)) for d in found}
    if len(counts) != 1:
        raise ConfigError(f"curate --merge: shards of different splits under {root / 'shards'}: {sorted(counts)}")
    n = counts.pop()
    missing = [i for i in range(n) if not (root / "shards" / f"{i}-of-{n}").is_dir()]
    if missing:
        raise ConfigError(f"curate --merge: shard(s) {missing} of {n} have not run")
    return [root / "shards" / f"{i}-of-{n}" for i in range(n)]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def merge(cfg: RunConfig) -> dict[str, Any]:
    """Join the shards' outputs into curate.output_dir; returns the merged stats."""
    root = Path(cfg.curate.output_dir)
    shards = _shard_dirs(root)
    stats = [json.loads((d / "stats.json").read_text()) if (d / "stats.json").is_file() else {} for d in shards]
    unfinished = [str(d) for d, s in zip(shards, stats) if "filter" not in s]
    if unfinished:
        raise ConfigError(f"curate --merge: these shards have not finished: {unfinished}")
    order = {s.id: i for i, s in enumerate(read_pool(cfg.curate.input_file, cfg.data.on_bad_record,
                                                     cfg.curate.max_samples).samples)}
    filter_rows = sorted((r for d in shards for r in _read_jsonl(d / "filter.jsonl")), key=lambda r: order[r["id"]])
    by_problem = {r["problem_id"]: order[r["id"]] for r in filter_rows}
    records = sorted((r for d in shards for r in _read_jsonl(d / "cot.jsonl")),
                     key=lambda r: by_problem[r["problem_id"]])
    write_jsonl(root / "filter.jsonl", filter_rows)
    write_jsonl(root / "cot.jsonl", records)
    merged = _add_stats(stats)
    (root / "stats.json").write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    print(curation_table(merged))
    return merged


def _add_stats(stats: list[dict[str, Any]]) -> dict[str, Any]:
    stages: dict[str, dict[str, Any]] = {}
    for s in stats:
        for name, st in s["stages"].items():
            into = stages.setdefault(name, {k: 0 for k in ADDITIVE} | {"cost": None})
            for k in ADDITIVE:
                into[k] += st.get(k) or 0
            if st.get("cost") is not None:
                into["cost"] = (into["cost"] or 0.0) + st["cost"]
    dropped = Counter()
    for s in stats:
        dropped.update(s["filter"]["dropped"])
    duplicates = stats[0]["duplicates"]           # counted over the whole pool by every shard
    dropped["duplicate"] = duplicates
    if not duplicates:
        del dropped["duplicate"]
    samples = sum(s["samples"] for s in stats)
    return {"samples": samples, "duplicates": duplicates, "shards": len(stats), "stages": stages,
            "filter": {"total": samples + duplicates, "kept": sum(s["filter"]["kept"] for s in stats),
                       "dropped": dict(sorted(dropped.items()))}}
