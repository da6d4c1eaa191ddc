"""The completions of an evaluation, one JSON line per record: written as they are made, read back
to resume an interrupted run or to rescore without generating.

    {"problem_id": "17", "completion": "<think>...</think><answer>B</answer>", "semantic": 0.41}

`semantic` is present when a reward encoder scored the completion against its clip (it cannot be
recomputed without the video). A single process appends to predictions.jsonl; under a launcher
each rank appends to predictions.rank<r>.jsonl and rank 0 merges them into predictions.jsonl in
record order once every rank is done. A run killed mid-write leaves a torn last line: it is
dropped, so that record is simply generated again.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable, Optional

log = logging.getLogger("videorft")

PREDICTIONS = "predictions.jsonl"
RANK_PATTERN = "predictions.rank*.jsonl"


def predictions_file(run_dir: Path, rank: int, world_size: int) -> Path:
    """Where this rank appends its completions."""
    return run_dir / (PREDICTIONS if world_size == 1 else f"predictions.rank{rank}.jsonl")


def read_predictions(path: Path) -> dict[str, dict[str, Any]]:
    """problem_id -> row of a predictions file (the first row of an id wins).

    A last line that is not valid JSON (a write cut short) is dropped with a warning; any other
    malformed line is an error naming the file, the line and the field.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file {path} does not exist")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    rows: dict[str, dict[str, Any]] = {}
    repeated = 0
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            if i == last:
                log.warning("%s:%d: dropped a torn last line (%s)", path, i + 1, err.msg)
                continue
            raise ValueError(f"{path}:{i + 1}: not valid JSON: {err.msg}") from None
        _check_row(row, f"{path}:{i + 1}")
        key = str(row["problem_id"])
        if key in rows:
            repeated += 1
            continue
        rows[key] = row
    if repeated:
        log.warning("%s: %d repeated problem_id(s); the first completion of each is kept", path, repeated)
    return rows


def _check_row(row: Any, where: str) -> None:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object with problem_id and completion")
    if not isinstance(row.get("problem_id"), (str, int)) or isinstance(row.get("problem_id"), bool):
        raise ValueError(f"{where}: problem_id: missing or not a string/integer")
    if not isinstance(row.get("completion"), str):
        raise ValueError(f"{where}: completion: missing or not a string")


def run_predictions(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Every completion a run directory holds, merged over predictions.jsonl and the rank files."""
    rows: dict[str, dict[str, Any]] = {}
    for path in [run_dir / PREDICTIONS, *sorted(run_dir.glob(RANK_PATTERN))]:
        if path.is_file():
            for key, row in read_predictions(path).items():
                rows.setdefault(key, row)
    return rows


def merge_predictions(run_dir: Path, order: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Fold the rank files into predictions.jsonl (records in `order`, then any others), atomically,
    and remove them; returns the merged rows."""
    rows = run_predictions(run_dir)
    ordered = [key for key in order if key in rows]
    ordered += sorted(set(rows) - set(ordered))
    tmp = run_dir / (PREDICTIONS + ".tmp")
    tmp.write_text("".join(json.dumps(rows[k], ensure_ascii=False) + "\n" for k in ordered), encoding="utf-8")
    os.replace(tmp, run_dir / PREDICTIONS)
    for path in run_dir.glob(RANK_PATTERN):
        path.unlink()
    return rows


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line without its newline (a write cut short), so appending starts on a fresh line."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


class PredictionSink:
    """Appends one completion per line and flushes after every batch, so a kill loses at most a line."""

    def __init__(self, path: Path):
        self.path = path
        _drop_torn_tail(path)
        self._file = open(path, "a", encoding="utf-8")

    def write(self, problem_id: str, completion: str, semantic: Optional[float] = None) -> None:
        """Record one completion (and its semantic score when one was computed)."""
        row: dict[str, Any] = {"problem_id": problem_id, "completion": completion}
        if semantic is not None:
            row["semantic"] = semantic
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()
