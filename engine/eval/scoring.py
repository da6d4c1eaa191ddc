"""Scores of an evaluation from its records and completions: per record, then eval.json.

Every record is scored by the one rewards module with the evaluation rules (whole-output
fallback, MRA for regression, exact letters unless eval.lenient_choice, the official MRA unless
eval.released_mra). The summary holds the benchmark's reported number (`metrics.score`: mean
accuracy over non-regression items, averaged with the mean MRA where a benchmark has both, as
VideoRFT reports VSI-Bench), the official per-task mean where the benchmark defines one
(`metrics.score_task_mean`), and the breakdown the benchmark defines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from videorft.engine.eval.aggregate import accuracy_by, aggregate, category_scores, mean_of_tasks
from videorft.engine.eval.benchmarks import Benchmark
from videorft.engine.rewards import ScoringRules, accuracy_reward, extract_answer, format_reward, solution_answer
from videorft.loaders.records import Record, RecordSet

EVAL_FILE = "eval.json"
SCORES_FILE = "scores.jsonl"


def score_record(record: Record, prediction: dict[str, Any], rules: ScoringRules,
                 benchmark: Benchmark) -> dict[str, Any]:
    """One record's row: its category, the answer read from the completion, accuracy and format."""
    completion = prediction["completion"]
    row = {"problem_id": str(record.problem_id), "problem_type": record.problem_type,
           "category": benchmark.category(record), "data_source": record.data_source,
           "answer": extract_answer(completion, whole_output_fallback=rules.whole_output_fallback),
           "truth": solution_answer(record.solution),
           "accuracy": accuracy_reward(completion, record.solution, record.problem_type, rules),
           "format": format_reward(completion)}
    if prediction.get("semantic") is not None:
        row["semantic"] = float(prediction["semantic"])
    return row


def summarise(benchmark: Benchmark, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """metrics (score, score_task_mean, mean_acc, mean_mra, ...) and the breakdown of scored rows."""
    metrics = aggregate(rows)
    scores, counts = category_scores(rows)
    summary: dict[str, Any] = {"metrics": metrics}
    if scores:
        order = benchmark.ordered(scores)
        summary["breakdown"] = {"by": benchmark.breakdown, "scores": {c: scores[c] for c in order},
                                "counts": {c: counts[c] for c in order},
                                "uncategorised": sum(1 for r in rows if r.get("category") is None)}
    if benchmark.merged_tasks and scores:
        task_mean = mean_of_tasks(scores, benchmark.merged_tasks)
        if task_mean is not None:
            metrics["score_task_mean"] = task_mean
    if benchmark.name == "records":
        summary["by_source"] = accuracy_by(rows, "data_source")
    return summary


def write_summary(run_dir: Path, benchmark: Benchmark, records: RecordSet, predictions: dict[str, dict[str, Any]],
                  rules: ScoringRules, details: dict[str, Any]) -> dict[str, Any]:
    """Score every record that has a completion, write scores.jsonl and eval.json; return the summary.

    details: what produced the completions (model, decoding or the rescored file), copied into eval.json.
    """
    rows = [score_record(r, predictions[str(r.problem_id)], rules, benchmark)
            for r in records.records if str(r.problem_id) in predictions]
    known = {str(r.problem_id) for r in records.records}
    summary = {"benchmark": benchmark.name, "title": benchmark.title, **summarise(benchmark, rows),
               "count": len(rows), "records": len(records.records), "unanswered": len(records.records) - len(rows),
               "unmatched_predictions": sum(1 for key in predictions if key not in known),
               "skipped_records": len(records.skipped), "renamed_ids": len(records.renamed),
               "scoring": {"lenient_choice": rules.lenient_choice,
                           "mra": "released-float32" if rules.released_mra else "official"},
               **details}
    _write_lines(run_dir / SCORES_FILE, rows)
    _write_json(run_dir / EVAL_FILE, summary)
    return summary


def expected_items(benchmark: Benchmark, records: RecordSet, max_samples: Optional[int]) -> Optional[str]:
    """A warning when a full benchmark file holds fewer questions than its release, else None."""
    if benchmark.items is None or max_samples is not None or len(records.records) >= benchmark.items:
        return None
    return (f"{benchmark.title}: {len(records.records)} records, the release has {benchmark.items}; "
            "scores are not comparable with the paper's")


def _write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, path)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
