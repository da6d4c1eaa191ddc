"""Benchmark figures from per-record scores.

VideoRFT's scoring: `mean_acc` over non-regression items, `mean_mra` over regression items, and
for VSI-Bench (which mixes both) the reported score is their average. `accuracy` here is the mean
per-record score over all items (MRA standing in for regression items), the single number the
tiny pipeline's table shows; `score` is the benchmark's reported number.

The official VSI-Bench code (and lmms-eval) reports a different number for the same answers: the
unweighted mean of per-task scores, some question types merged into one task first
(`mean_of_tasks`). Each item's score is the same in both; only the weighting differs.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping


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


def category_scores(rows: Iterable[dict[str, Any]], key: str = "category") -> tuple[dict[str, float], dict[str, int]]:
    """(mean accuracy, item count) per value of `key`; rows whose `key` is missing or None are left out."""
    groups: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        if row.get(key) is not None:
            groups[str(row[key])].append(float(row["accuracy"]))
    return {k: sum(v) / len(v) for k, v in groups.items()}, {k: len(v) for k, v in groups.items()}


def mean_of_tasks(scores: Mapping[str, float], merged: Mapping[str, str]) -> float | None:
    """Unweighted mean over tasks of per-category scores, where `merged` maps categories that form
    one task (VSI-Bench's three relative-direction levels) to that task, averaged first."""
    tasks: dict[str, list[float]] = defaultdict(list)
    for category, value in scores.items():
        tasks[merged.get(category, category)].append(value)
    return _mean([sum(v) / len(v) for v in tasks.values()])
