"""The benchmark part of `videorft report`: checkpoints beside the paper's rows on the six video
benchmarks, one breakdown table per benchmark, and a grouped bar chart.

Scores are shown in percent, as the paper prints them. The mean column is the mean of the six
scores, shown only for a row that has all six. Notes under the main table flag what makes a
number not comparable with the paper's: a benchmark scored with the released float32 MRA, or an
evaluation that covered fewer records than the benchmark holds.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import yaml

from videorft.engine.eval.benchmarks import BENCHMARKS, PAPER_BENCHMARKS

VSI_ROWS = {"score": "score (VideoRFT: (acc + MRA) / 2)", "score_task_mean": "score (official: mean of 8 tasks)"}
"""The two VSI-Bench numbers, as rows of its breakdown table."""


@functools.lru_cache(maxsize=1)
def paper_results() -> dict[str, Any]:
    """engine/data/paper_results.yaml: {"source": str, "rows": {name: {"note", "scores"}}}."""
    text = resources.files("videorft.engine").joinpath("data", "paper_results.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def paper_rows(names: list[str]) -> dict[str, dict[str, Optional[float]]]:
    """The named rows of the paper's table (percent); an unknown name lists the known ones."""
    rows = paper_results()["rows"]
    unknown = [n for n in names if n not in rows]
    if unknown:
        raise ValueError(f"report.paper_rows: {unknown} not in engine/data/paper_results.yaml ({list(rows)})")
    return {n: dict(rows[n]["scores"]) for n in names}


def percent(value: Optional[float]) -> Optional[float]:
    return None if value is None else 100.0 * value


def checkpoint_scores(evaluations: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One checkpoint's results.json entry from its eval.json summaries (keyed by benchmark), in percent."""
    out: dict[str, Any] = {}
    for name in sorted(evaluations, key=lambda b: PAPER_BENCHMARKS.index(b)):
        summary = evaluations[name]
        metrics = summary["metrics"]
        entry = {"score": percent(metrics.get("score")), "count": summary.get("count"),
                 "records": summary.get("records"), "scoring": summary.get("scoring", {})}
        if "score_task_mean" in metrics:
            entry["score_task_mean"] = percent(metrics["score_task_mean"])
        if "breakdown" in summary:
            entry["breakdown"] = {"by": summary["breakdown"]["by"],
                                  "scores": {k: percent(v) for k, v in summary["breakdown"]["scores"].items()}}
        out[name] = entry
    return out


def mean_of_six(scores: dict[str, Optional[float]]) -> Optional[float]:
    """Mean over the six benchmarks, or None unless every one has a score."""
    values = [scores.get(b) for b in PAPER_BENCHMARKS]
    return None if any(v is None for v in values) else sum(values) / len(values)


def _cell(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}"


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """A fixed-width table with a rule under the header."""
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def main_table(checkpoints: dict[str, dict[str, Any]], paper: dict[str, dict[str, Optional[float]]]) -> str:
    """Checkpoints, then the paper's rows: the six scores and their mean."""
    header = ["checkpoint"] + [BENCHMARKS[b].title for b in PAPER_BENCHMARKS] + ["mean"]
    rows = []
    for label, results in checkpoints.items():
        scores = {b: results[b]["score"] for b in results}
        rows.append([label] + [_cell(scores.get(b)) for b in PAPER_BENCHMARKS] + [_cell(mean_of_six(scores))])
    for name, scores in paper.items():
        rows.append([f"{name} (paper)"] + [_cell(scores.get(b)) for b in PAPER_BENCHMARKS]
                    + [_cell(mean_of_six(scores))])
    return text_table(header, rows)


def notes(checkpoints: dict[str, dict[str, Any]]) -> list[str]:
    """What makes a checkpoint's number differ in kind from the paper's."""
    out = []
    for label, results in checkpoints.items():
        for name, entry in results.items():
            title = BENCHMARKS[name].title
            if entry["scoring"].get("mra") == "released-float32":
                out.append(f"{label} {title}: MRA in float32 as the released script computes it (eval.released_mra)")
            expected = BENCHMARKS[name].items
            if entry["count"] is not None and entry["records"] is not None and entry["count"] < entry["records"]:
                out.append(f"{label} {title}: {entry['count']} of {entry['records']} records answered")
            elif expected and entry["records"] is not None and entry["records"] < expected:
                out.append(f"{label} {title}: {entry['records']} records scored, the release has {expected}")
    return out


def breakdown_table(name: str, checkpoints: dict[str, dict[str, Any]]) -> Optional[str]:
    """Rows: the benchmark's categories (and for VSI-Bench its two scores); columns: checkpoints."""
    have = {label: r[name] for label, r in checkpoints.items() if name in r}
    categories = BENCHMARKS[name].ordered({c for e in have.values() for c in e.get("breakdown", {}).get("scores", {})})
    if not categories:
        return None
    rows = []
    if BENCHMARKS[name].merged_tasks:
        rows += [[title] + [_cell(e.get(key)) for e in have.values()] for key, title in VSI_ROWS.items()]
    rows += [[c] + [_cell(e.get("breakdown", {}).get("scores", {}).get(c)) for e in have.values()]
             for c in categories]
    by = next(e["breakdown"]["by"] for e in have.values() if "breakdown" in e)
    return f"{BENCHMARKS[name].title} by {by}\n" + text_table([by] + list(have), rows)


def draw_chart(path: Path, checkpoints: dict[str, dict[str, Any]],
               paper: dict[str, dict[str, Optional[float]]]) -> Path:
    """A grouped bar chart: one group per benchmark (and the mean), one bar per checkpoint or paper row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {label: {b: e["score"] for b, e in r.items()} for label, r in checkpoints.items()}
    series.update({f"{n} (paper)": s for n, s in paper.items()})
    groups = list(PAPER_BENCHMARKS) + ["mean"]
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(1.6 * len(groups) + 2, 4.2))
    for i, (label, scores) in enumerate(series.items()):
        values = [scores.get(b) for b in PAPER_BENCHMARKS] + [mean_of_six(scores)]
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=label,
               hatch="//" if label.endswith("(paper)") else None)
    ax.set_xticks(range(len(groups)), [BENCHMARKS[b].title for b in PAPER_BENCHMARKS] + ["mean"])
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 100)
    ax.set_title("video benchmarks")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def benchmark_report(evaluations: dict[str, dict[str, dict[str, Any]]], paper_names: list[str],
                     chart: Path) -> tuple[str, dict[str, Any]]:
    """(printed text, results.json part) for label -> {benchmark: eval.json summary}."""
    checkpoints = {label: checkpoint_scores(evs) for label, evs in evaluations.items()}
    paper = paper_rows(paper_names)
    flagged = notes(checkpoints)
    parts = [main_table(checkpoints, paper)]
    parts += ["notes:\n" + "\n".join(f"  {n}" for n in flagged)] if flagged else []
    parts += [t for t in (breakdown_table(b, checkpoints) for b in PAPER_BENCHMARKS) if t]
    draw_chart(chart, checkpoints, paper)
    results = {"unit": "percent",
               "checkpoints": {label: {"benchmarks": r, "mean": mean_of_six({b: e["score"] for b, e in r.items()})}
                               for label, r in checkpoints.items()},
               "paper": paper, "paper_source": paper_results()["source"], "chart": str(chart)}
    return "\n\n".join(parts), results
