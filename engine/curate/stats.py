"""Per-stage request accounting and the printed curation table.

Counted per stage and per run: requests sent to a backend, cache hits, requests that failed for
good, retries, prompt and completion tokens, latency percentiles and, when prices are configured,
cost. The filter adds one count per drop reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class StageStats:
    """What one stage's requests cost in this run."""

    samples: int = 0
    """Samples the stage finished in this run (results read back from a previous run not counted)."""
    invalid: int = 0
    """Samples whose model output could not be used (e.g. a representation that broke the schema twice)."""
    requests: int = 0
    cache_hits: int = 0
    failures: int = 0
    retries: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    latencies: list[float] = field(default_factory=list)
    price_in_per_mtok: float = 0.0
    price_out_per_mtok: float = 0.0
    seconds: float = 0.0
    """Wall time of the stage."""

    @property
    def cost(self) -> float | None:
        """Price of the tokens sent and received, or None when no price is configured."""
        if not (self.price_in_per_mtok or self.price_out_per_mtok):
            return None
        return (self.tokens_in * self.price_in_per_mtok + self.tokens_out * self.price_out_per_mtok) / 1e6

    def percentile(self, q: float) -> float | None:
        """Latency percentile q (0-100) of the requests sent, in seconds."""
        return float(np.percentile(self.latencies, q)) if self.latencies else None

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (latency percentiles instead of the raw list)."""
        p50, p95 = self.percentile(50), self.percentile(95)
        return {"samples": self.samples, "invalid": self.invalid, "requests": self.requests,
                "cache_hits": self.cache_hits, "failures": self.failures, "retries": self.retries,
                "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
                "latency_p50_s": None if p50 is None else round(p50, 4),
                "latency_p95_s": None if p95 is None else round(p95, 4),
                "cost": None if self.cost is None else round(self.cost, 4),
                "seconds": round(self.seconds, 2),
                "requests_per_s": round(self.requests / self.seconds, 3) if self.seconds > 0 else None}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def text_table(header: list[str], rows: list[list[Any]]) -> str:
    """A fixed-width table with a rule under the header."""
    cells = [header] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


STAGE_COLUMNS = ["samples", "invalid", "requests", "cache_hits", "failures", "retries", "tokens_in",
                 "tokens_out", "latency_p50_s", "latency_p95_s", "cost"]


def curation_table(stats: dict[str, Any]) -> str:
    """The stage table and the filter table of a stats.json dict."""
    stage_rows = [[name] + [s.get(c) for c in STAGE_COLUMNS] for name, s in stats["stages"].items()]
    out = text_table(["stage"] + STAGE_COLUMNS, stage_rows)
    filt = stats.get("filter")
    if filt:
        rows = [["kept", filt["kept"]]] + [[f"dropped: {r}", n] for r, n in filt["dropped"].items()]
        rows.append(["total", filt["total"]])
        out += "\n\n" + text_table(["filter", "samples"], rows)
    return out
