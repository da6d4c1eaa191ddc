"""Append-only stage files: <output_dir>/<stage>.jsonl, one JSON line per finished sample.

A line is written with one write() of the whole line and flushed at once, so a kill leaves at most
one torn line at the end, which the next open cuts off. Reopening reads which samples are finished;
the stage then works only on the rest, so no sample gets two lines. When a stage completes, its
file is rewritten in pool order (atomically), which makes the outputs of an interrupted-and-resumed
run byte-identical to those of an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable


class StageFile:
    """The results of one stage, keyed by sample id."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: dict[str, dict[str, Any]] = {}
        self._recover()
        self._file = open(self.path, "a", encoding="utf-8")

    def _recover(self) -> None:
        """Read finished rows; cut a torn last line left by a kill."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        good_end = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                break
            self.rows[row["id"]] = row
            good_end += len(line)
        if good_end < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(good_end)

    def __contains__(self, sample_id: str) -> bool:
        return sample_id in self.rows

    def get(self, sample_id: str) -> dict[str, Any] | None:
        """The row of a finished sample."""
        return self.rows.get(sample_id)

    def append(self, row: dict[str, Any]) -> None:
        """Record one finished sample (row["id"] must be new)."""
        if row["id"] in self.rows:
            raise ValueError(f"{self.path}: sample {row['id']} already has a line")
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()
        self.rows[row["id"]] = row

    def compact(self, order: Iterable[str]) -> None:
        """Rewrite the file with its rows in `order` (ids not in `order` are kept at the end)."""
        self._file.close()
        ids = [i for i in order if i in self.rows]
        placed = set(ids)
        ids += [i for i in self.rows if i not in placed]
        write_jsonl(self.path, (self.rows[i] for i in ids))
        self._file = open(self.path, "a", encoding="utf-8")

    def close(self) -> None:
        """Close the file."""
        self._file.close()


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows as JSONL to a temporary file, fsync it and rename it over `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
