"""`videorft report`: tables and one JSON over a pipeline's evaluations (base / SFT / GRPO).

The first table holds the configured metric columns; the second, when the evaluations recorded
it, the accuracy per data source (a benchmark's task or the synthetic world's question kind), so
a gain can be traced to the kinds of question that carry it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from videorft.engine.config import RunConfig
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


def run(cfg: RunConfig) -> dict[str, Any]:
    """Read each evaluation's eval.json, print the tables and write report.output_file."""
    run_dir = RunDir(cfg, "report")
    stages = {}
    for label, folder in cfg.report.evaluations.items():
        path = Path(folder) / EVAL_FILE
        if not path.is_file():
            raise FileNotFoundError(f"report.evaluations.{label}: {path} does not exist (run the eval first)")
        summary = json.loads(path.read_text())
        stages[label] = dict(summary["metrics"])
        if summary.get("by_source"):
            stages[label]["by_source"] = summary["by_source"]
    table = format_table(stages, cfg.report.columns)
    by_source = {label: m["by_source"] for label, m in stages.items() if "by_source" in m}
    if by_source:
        sources = sorted({s for per_stage in by_source.values() for s in per_stage})
        table += "\n\naccuracy by data source\n" + format_table(by_source, sources)
    curation = None
    if cfg.report.curation:
        from videorft.engine.curate.stats import curation_table

        path = Path(cfg.report.curation)
        if not path.is_file():
            raise FileNotFoundError(f"report.curation: {path} does not exist (run the curation first)")
        curation = json.loads(path.read_text())
        table = "curation\n" + curation_table(curation) + "\n\n" + table
    print(table)                      # the tables on stdout; the log keeps one line per stage
    for label, metrics in stages.items():
        log.info("%s: %s", label, {c: metrics.get(c) for c in cfg.report.columns})
    out = Path(cfg.report.output_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = {"stages": stages} if curation is None else {"curation": curation, "stages": stages}
    out.write_text(json.dumps(results, indent=2) + "\n")
    run_dir.close()
    return {"results": str(out), "stages": stages}
