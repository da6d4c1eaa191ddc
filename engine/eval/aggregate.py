"""Benchmark figures from per-record scores.

VideoRFT's scoring: `mean_acc` over non-regression items, `mean_mra` over regression items, and
for VSI-Bench (which mixes both) the reported score is their average. `accuracy` here is the mean
per-record score over all items (MRA standing in for regression items), the single number the
tiny pipeline's table shows; `score` is the benchmark's reported number.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def aggregate(rows: Iterable[dict[str, Any]]) -> dict[str, float]:
    """accuracy, format, semantic, mean_acc, mean_mra, score and accuracy/<problem type>."""
    rows = list(rows)
    by_type: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        by_type[row["problem_type"]].append(float(row["accuracy"]))
    non_reg = [float(r["accuracy"]) for r in rows if r["problem_type"] != "regression"]
    reg = by_type.get("regression", [])
    out: dict[str, float | None] = {
        "accuracy": _mean([float(r["accuracy"]) for r in rows]),
        "format": _mean([float(r["format"]) for r in rows]),
        "semantic": _mean([float(r["semantic"]) for r in rows if "semantic" in r]),
        "mean_acc": _mean(non_reg),
        "mean_mra": _mean(reg),
    }
    parts = [v for v in (out["mean_acc"], out["mean_mra"]) if v is not None]
    out["score"] = _mean(parts)
    for problem_type, values in sorted(by_type.items()):
        out[f"accuracy/{problem_type}"] = _mean(values)
    return {k: v for k, v in out.items() if v is not None}


def accuracy_by(rows: Iterable[dict[str, Any]], key: str) -> dict[str, float]:
    """Mean accuracy per value of `key` (e.g. data_source: the question kind of a benchmark)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        groups[str(row.get(key, ""))].append(float(row["accuracy"]))
    return {k: sum(v) / len(v) for k, v in sorted(groups.items())}
