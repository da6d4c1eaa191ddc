"""Throughput regression gate of `pytest bench/`: guarded figures against a recorded baseline.

Each suite declares the figures it guards through the `guard` fixture: ratios between providers
measured side by side in the same run (ours vs naive torch, prefix-shared vs per-row, our decoder
vs decord, native vs torch preprocessing), which hold on a noisy machine where absolute times do
not; absolute times are guarded on GPU machines only.

    pytest bench/ --guard              # or: make bench-check
    pytest bench/ --guard --guard-tolerance 0.10

With `--guard`, every figure is compared with the newest baseline recorded for this hardware
(bench/results/<hardware>/guard-<date>.json); a figure worse by more than the tolerance (15% by
default) fails its test, naming the figure and both values. Figures without a baseline (or all of
them, when the hardware has none yet) are written to a new baseline at the end of the session.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path

import pytest
import torch

RESULTS = Path(__file__).resolve().parent / "results"


def hardware_folder() -> str:
    """bench/results sub-folder of this machine: the GPU's name, or cpu-<cores>core."""
    if torch.cuda.is_available():
        return re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name().lower()).strip("-")
    return f"cpu-{os.cpu_count()}core"


class Guard:
    """Collects the session's guarded figures and checks them against the baseline."""

    def __init__(self, enabled: bool, folder: Path, tolerance: float):
        self.enabled, self.folder, self.tolerance = enabled, folder, tolerance
        self.baseline_file = max(folder.glob("guard-*.json"), default=None)
        self.baseline = json.loads(self.baseline_file.read_text())["figures"] if self.baseline_file else {}
        self.figures: dict[str, dict] = {}

    def __call__(self, name: str, value: float, higher_is_better: bool = True, absolute: bool = False) -> None:
        """Record figure `name` and, with --guard, fail when it is worse than its baseline."""
        if absolute and not torch.cuda.is_available():
            return                                   # wall times of a shared CPU are not a baseline
        self.figures[name] = {"value": value, "higher_is_better": higher_is_better}
        base = self.baseline.get(name)
        if not self.enabled or base is None:
            return
        limit = base["value"] * (1 - self.tolerance if higher_is_better else 1 + self.tolerance)
        worse = value < limit if higher_is_better else value > limit
        if worse:
            pytest.fail(f"guarded figure {name}: {value:.4g} against baseline {base['value']:.4g} "
                        f"({self.baseline_file.name}); {'higher' if higher_is_better else 'lower'} is better and the "
                        f"tolerance is {self.tolerance:.0%}", pytrace=False)

    def write_new_baseline(self) -> Path | None:
        """Record the figures the baseline lacks (all of them when there is none)."""
        missing = {k: v for k, v in self.figures.items() if k not in self.baseline}
        if not (self.enabled and missing):
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"guard-{datetime.date.today():%Y%m%d}.json"
        figures = {**self.baseline, **missing}
        path.write_text(json.dumps({"hardware": self.folder.name, "figures": figures}, indent=1, sort_keys=True) + "\n")
        return path


def pytest_addoption(parser):
    group = parser.getgroup("guard", "throughput regression gate")
    group.addoption("--guard", action="store_true", help="fail on guarded figures worse than the recorded baseline")
    group.addoption("--guard-tolerance", type=float, default=0.15, help="allowed relative regression (0.15)")
    group.addoption("--guard-dir", default=None, help="baseline folder (bench/results/<hardware>)")


def pytest_configure(config):
    folder = Path(config.getoption("guard_dir") or RESULTS / hardware_folder())
    config._videorft_guard = Guard(config.getoption("guard"), folder, config.getoption("guard_tolerance"))


def pytest_sessionfinish(session, exitstatus):
    guard = getattr(session.config, "_videorft_guard", None)
    if guard is not None and (path := guard.write_new_baseline()) is not None:
        print(f"\nguard: recorded {len(guard.figures)} figures as the baseline in {path}")


@pytest.fixture
def guard(request) -> Guard:
    """Record a guarded figure: guard(name, value, higher_is_better=True, absolute=False)."""
    return request.config._videorft_guard
