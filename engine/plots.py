"""PNG plots of a run's metrics.jsonl, readable at a glance.

rewards.png: the total reward and each reward function (accuracy is the accuracy reward, drawn
once), each as a moving average over its faint raw points. phases.png: where the time went (seconds
per phase over the whole run), seconds per step over time, and throughput (tokens/s) over time.
"""

from __future__ import annotations

import json
from pathlib import Path

PHASES = ("decode", "preprocess", "rollout", "reward", "logprob", "update", "sync")


def read_metrics(path: Path) -> list[dict]:
    """Rows of a metrics.jsonl file."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one metric, where it was logged."""
    pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pts], [float(p[1]) for p in pts]


def moving_average(values: list[float], window: int) -> list[float]:
    """Trailing mean over the last `window` values (fewer at the start)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def reward_curves(rows: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """The reward curves to draw: "reward" and every "reward/<name>" that was logged."""
    keys = ["reward"] + sorted({k for r in rows for k in r if k.startswith("reward/")})
    return {k: s for k in keys if (s := series(rows, k))[0]}


def step_seconds(rows: list[dict]) -> tuple[list[int], list[float]]:
    """(steps, seconds) of the timed phases of each logged step."""
    pts = [(r["step"], sum(v for k, v in r.items() if k.startswith("time/") and isinstance(v, (int, float))))
           for r in rows if any(k.startswith("time/") for k in r)]
    return [p[0] for p in pts], [p[1] for p in pts]


def _smoothed(ax, steps, values, label, color) -> None:
    window = max(1, len(values) // 20)
    ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
    ax.plot(steps, moving_average(values, window), color=color, label=label, linewidth=1.6)


def plot_run(metrics_file: Path, out_dir: Path) -> list[Path]:
    """Write rewards.png and phases.png next to the metrics; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_file)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    written = []
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (key, (steps, values)) in enumerate(reward_curves(rows).items()):
        _smoothed(ax, steps, values, key, colors[i % len(colors)])
    ax.set(xlabel="step", ylabel="mean over rollouts", title="GRPO rewards (moving average over raw points)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(Path(out_dir) / "rewards.png")
    fig.savefig(written[-1], dpi=110)
    plt.close(fig)

    totals = {p: sum(series(rows, f"time/{p}")[1]) for p in PHASES}
    totals = {p: s for p, s in totals.items() if s > 0}
    if totals:
        fig, (bars, per_step, speed) = plt.subplots(1, 3, figsize=(13, 3.6))
        bars.barh(list(totals), list(totals.values()), color="tab:blue")
        bars.set(xlabel="seconds (whole run)", title="time per phase")
        _smoothed(per_step, *step_seconds(rows), "seconds", "tab:orange")
        per_step.set(xlabel="step", ylabel="seconds", title="seconds per step")
        if (tokens := series(rows, "tokens_per_s"))[0]:
            _smoothed(speed, *tokens, "tokens/s", "tab:green")
        speed.set(xlabel="step", ylabel="tokens/s", title="throughput")
        fig.tight_layout()
        written.append(Path(out_dir) / "phases.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written
