"""PNG plots of a run's metrics.jsonl: reward curves and the per-phase time breakdown."""

from __future__ import annotations

import json
from pathlib import Path

PHASES = ("decode", "preprocess", "rollout", "reward", "logprob", "update", "sync")


def read_metrics(path: Path) -> list[dict]:
    """Rows of a metrics.jsonl file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_run(metrics_file: Path, out_dir: Path) -> list[Path]:
    """Write rewards.png and phases.png next to the metrics; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_file)
    written = []
    keys = ["reward", "accuracy"] + sorted({k for r in rows for k in r if k.startswith("reward/")})
    fig, ax = plt.subplots(figsize=(7, 4))
    for key in keys:
        steps, values = _series(rows, key)
        if steps:
            ax.plot(steps, values, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("mean over rollouts")
    ax.set_title("GRPO rewards")
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(Path(out_dir) / "rewards.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    totals = {p: sum(_series(rows, f"time/{p}")[1]) for p in PHASES}
    totals = {p: s for p, s in totals.items() if s > 0}
    if totals:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.barh(list(totals), list(totals.values()), color="tab:blue")
        ax.set_xlabel("seconds (whole run)")
        ax.set_title("time per phase")
        fig.tight_layout()
        written.append(Path(out_dir) / "phases.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written
