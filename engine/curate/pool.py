"""The question pool: records read once, given stable ids, de-duplicated and sharded.

A sample's id is a hash of its record, so it survives reordering of the pool and is the same on
every machine. The same question about the same video asked twice (after normalising case and
spaces) is curated once; the repeats are dropped before any request, counted as "duplicate".
`shard = "i/n"` keeps the samples whose id falls in slice i of n: deterministic and balanced.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Optional

from videorft.engine.config_loader import ConfigError
from videorft.loaders.records import Record, read_records


@dataclass
class Sample:
    """One question of the pool."""

    id: str
    record: Record


@dataclass
class Pool:
    """The samples to curate, in pool order, and the repeats that were left out."""

    samples: list[Sample]
    duplicates: int
    bad_records: int


def sample_id(record: Record) -> str:
    """A 16-hex-digit hash of the record's schema fields."""
    body = json.dumps({k: v for k, v in record.to_dict().items() if k != "process"}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def parse_shard(text: str) -> Optional[tuple[int, int]]:
    """ "i/n" -> (i, n); "" -> None. Raises ConfigError naming curate.shard."""
    if not text:
        return None
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"curate.shard: expected 'i/n' such as '0/4', got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ConfigError(f"curate.shard: need 0 <= i < n, got {text!r}")
    return i, n


def in_shard(sid: str, shard: Optional[tuple[int, int]]) -> bool:
    """Whether sample `sid` belongs to `shard` (every sample does when there is no shard)."""
    return shard is None or int(sid, 16) % shard[1] == shard[0]


def _question_key(record: Record) -> str:
    words = " ".join(record.problem.lower().split())
    return json.dumps([record.path, words, [" ".join(o.lower().split()) for o in record.options]])


def read_pool(path: str, on_bad_record: str = "error", max_samples: Optional[int] = None,
              shard: Optional[tuple[int, int]] = None) -> Pool:
    """The pool of `path` (JSON or JSONL records), de-duplicated, limited and sharded in that order."""
    if not path:
        raise ConfigError("curate.input_file: name the question pool (JSON or JSONL records)")
    records = read_records(path, on_bad_record=on_bad_record)
    seen, samples, duplicates = set(), [], 0
    for record in records.records:
        key = _question_key(record)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        samples.append(Sample(sample_id(record), record))
    if max_samples is not None:
        samples = samples[:max_samples]
    samples = [s for s in samples if in_shard(s.id, shard)]
    return Pool(samples, duplicates, len(records.skipped))
