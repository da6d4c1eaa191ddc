"""`videorft report`: tables and one JSON over several evaluations.

Evaluations of plain record files (the tiny pipeline's base / SFT / GRPO) give a table of the
configured metric columns and, when the evaluations recorded it, the accuracy per data source,
so a gain can be traced to the kinds of question that carry it.

Evaluations of the paper's benchmarks give one row per checkpoint with the six scores and their
mean, printed beside the paper's rows (engine/data/paper_results.yaml), a breakdown table per
benchmark and a grouped bar chart beside results.json (engine/report_benchmarks.py). A
checkpoint's folder in report.evaluations holds either one eval.json or one evaluation per
benchmark in its subfolders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from videorft.engine.config import RunConfig
from videorft.engine.curate.stats import curation_table
from videorft.engine.report_benchmarks import benchmark_report
from videorft.engine.run_dir import RunDir, log

EVAL_FILE = "eval.json"


def format_table(stages: dict[str, dict[str, Any]], columns: list[str]) -> str:
    """A fixed-width text table: one row per stage, one column per metric."""
    header = ["stage"] + columns
    rows = [[label] + [f"{m[c]:.3f}" if isinstance(m.get(c), (int, float)) else "-" for c in columns]
            for label, m in stages.items()]
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def read_evaluations(label: str, folder: str) -> dict[str, dict[str, Any]]:
    """benchmark -> eval.json summary of the evaluation(s) in `folder` (itself, or its subfolders)."""
    root = Path(folder)
    paths = [root / EVAL_FILE] if (root / EVAL_FILE).is_file() else sorted(root.glob(f"*/{EVAL_FILE}"))
    if not paths:
        raise FileNotFoundError(f"report.evaluations.{label}: {root / EVAL_FILE} does not exist (run the eval first)")
    found: dict[str, dict[str, Any]] = {}
    origin: dict[str, Path] = {}
    for path in paths:
        summary = json.loads(path.read_text(encoding="utf-8"))
        name = summary.get("benchmark", "records")
        if name in found:
            raise ValueError(f"report.evaluations.{label}: two evaluations of {name}: {origin[name]} and {path}")
        found[name], origin[name] = summary, path
    return found


def records_report(evaluations: dict[str, dict[str, Any]], columns: list[str]) -> tuple[str, dict[str, Any]]:
    """The metric table (and accuracy per data source) of record evaluations, label -> eval.json."""
    stages = {}
    for label, summary in evaluations.items():
        stages[label] = dict(summary["metrics"])
        if summary.get("by_source"):
            stages[label]["by_source"] = summary["by_source"]
    table = format_table(stages, columns)
    by_source = {label: m["by_source"] for label, m in stages.items() if "by_source" in m}
    if by_source:
        sources = sorted({s for per_stage in by_source.values() for s in per_stage})
        table += "\n\naccuracy by data source\n" + format_table(by_source, sources)
    for label, metrics in stages.items():
        log.info("%s: %s", label, {c: metrics.get(c) for c in columns})
    return table, stages


def read_curation(path: str) -> dict[str, Any]:
    """The stats.json of a curation (report.curation)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"report.curation: {file} does not exist (run the curation first)")
    return json.loads(file.read_text())


def run(cfg: RunConfig) -> dict[str, Any]:
    """Read each evaluation's eval.json, print the tables and write report.output_file."""
    run_dir = RunDir(cfg, "report")
    found = {label: read_evaluations(label, folder) for label, folder in cfg.report.evaluations.items()}
    records = {label: evs["records"] for label, evs in found.items() if "records" in evs}
    benchmarks = {label: {b: s for b, s in evs.items() if b != "records"} for label, evs in found.items()}
    benchmarks = {label: evs for label, evs in benchmarks.items() if evs}
    out = Path(cfg.report.output_file)
    results: dict[str, Any] = {}
    texts = []
    if cfg.report.curation:
        results["curation"] = read_curation(cfg.report.curation)
        texts.append("curation\n" + curation_table(results["curation"]))
    if records or not benchmarks:
        table, results["stages"] = records_report(records, cfg.report.columns)
        texts.append(table)
    if benchmarks:
        text, part = benchmark_report(benchmarks, cfg.report.paper_rows, out.with_suffix(".png"))
        texts.append(text)
        results.update(part)
    print("\n\n".join(texts))          # the tables on stdout; the log keeps one line per stage
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    run_dir.close()
    return {"results": str(out), **results}
