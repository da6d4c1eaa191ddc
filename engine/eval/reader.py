"""The records an evaluation scores: data.eval_file read with the benchmark's layout in mind.

For the six paper benchmarks data.eval_file may name the folder of the evaluation release; the
benchmark's own file (eval_<name>.json) is then read from it. Every record's solution is checked
with the rewards' check_solution as the file is read, so a record that could not be scored is
rejected (or, with data.on_bad_record: skip, skipped and counted) before anything is generated.
"""

from __future__ import annotations

import logging
from pathlib import Path

from videorft.engine.config import RunConfig
from videorft.engine.eval.benchmarks import Benchmark
from videorft.engine.rewards import check_solution
from videorft.loaders.records import RecordSet, read_records

log = logging.getLogger("videorft")


def eval_file(cfg: RunConfig, benchmark: Benchmark) -> Path:
    """data.eval_file, or the benchmark's release file inside it when it names a folder."""
    if not cfg.data.eval_file:
        raise ValueError("data.eval_file is empty; point it at a record file (or, for a paper benchmark, "
                         "at the folder of the evaluation release)")
    path = Path(cfg.data.eval_file)
    if path.is_dir():
        if not benchmark.release_file:
            raise ValueError(f"data.eval_file {path} is a folder; eval.benchmark 'records' needs a record file")
        path = path / benchmark.release_file
    return path


def read_benchmark(cfg: RunConfig, benchmark: Benchmark) -> RecordSet:
    """The evaluation records, validated (data.on_bad_record, data.max_samples apply)."""
    path = eval_file(cfg, benchmark)
    records = read_records(path, cfg.data.on_bad_record, cfg.data.max_samples, validate=check_solution)
    log.info("%s: %d records from %s (%d skipped, %d repeated ids renamed)", benchmark.title,
             len(records.records), path, len(records.skipped), len(records.renamed))
    return records
