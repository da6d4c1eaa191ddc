"""Throughput regression gate of `pytest bench/`: guarded figures against a recorded baseline.

Each suite declares the figures it guards through the `guard` fixture: ratios between providers
measured side by side in the same run (ours vs naive torch, prefix-shared vs per-row, our decoder
vs decord, native vs torch preprocessing), which hold on a noisy machine where absolute times do
not; absolute times are guarded on GPU machines only. A ratio between two parametrized provider
tests is formed from this session's measurements: each provider test notes its time
(`guard.measured(case, provider, fastest_round(benchmark))`) and the module's last test,
`test_guarded_ratios`, calls `guard.ratios(suite, pairs)`; a ratio one of whose sides did not run
here (skipped, deselected, failed) is not guarded, and the summary says so.

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

RESULTS = Path(__file__).resolve().parent / "results"


def _has_cuda() -> bool:
    import torch                                     # here, so a run with --guard-dir starts without torch

    return torch.cuda.is_available()


def hardware_folder() -> str:
    """bench/results sub-folder of this machine: the GPU's name, or cpu-<cores>core."""
    import torch

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
        self.times: dict[str, dict[str, float]] = {}  # case -> provider -> seconds, filled by measured()
        self.unguarded: list[str] = []               # ratios with one side missing
        self.compared = 0                            # figures checked against the baseline
        self.written: Path | None = None             # the baseline file this session wrote

    def __call__(self, name: str, value: float, higher_is_better: bool = True, absolute: bool = False) -> None:
        """Record figure `name` and, with --guard, fail when it is worse than its baseline."""
        if absolute and not _has_cuda():
            return                                   # wall times of a shared CPU are not a baseline
        if (failure := self.check(name, value, higher_is_better)) is not None:
            pytest.fail(failure, pytrace=False)

    def check(self, name: str, value: float, higher_is_better: bool = True) -> str | None:
        """Record figure `name`; with --guard, the failure message when it is worse than its baseline."""
        self.figures[name] = {"value": value, "higher_is_better": higher_is_better}
        base = self.baseline.get(name)
        if not self.enabled or base is None:
            return None
        self.compared += 1
        limit = base["value"] * (1 - self.tolerance if higher_is_better else 1 + self.tolerance)
        if not (value < limit if higher_is_better else value > limit):
            return None
        return (f"guarded figure {name}: {value:.4g} against baseline {base['value']:.4g} "
                f"({self.baseline_file.name}); {'higher' if higher_is_better else 'lower'} is better and the "
                f"tolerance is {self.tolerance:.0%}")

    def measured(self, case: str, provider: str, seconds: float | None) -> None:
        """Note `provider`'s time on `case` ("<suite>/<case>[/<mode>]") for the ratios of this session."""
        if seconds:                                  # None or 0: nothing was timed (--benchmark-disable)
            self.times.setdefault(case, {})[provider] = seconds

    def ratios(self, suite: str, pairs: list[tuple[str, str]]) -> None:
        """Guard `<case>/<other>_over_<ours>` for every case of `suite` measured in this session.

        Each pair (other, ours) gives other's time / ours' time: higher is better, and it drops
        when ours slows down, whatever the machine's load did to both. A pair applies to a case
        where at least one of its providers ran; when only one did, the ratio is noted as not
        guarded (shown in the summary) rather than failed. Every regression fails this one call.
        """
        failures = []
        for case, times in sorted(self.times.items()):
            if not case.startswith(suite + "/"):
                continue
            for other, ours in pairs:
                name = f"{case}/{other}_over_{ours}"
                missing = [p for p in (other, ours) if p not in times]
                if len(missing) == 1:
                    self.unguarded.append(f"{name} ({missing[0]} not measured)")
                elif not missing:
                    failures.append(self.check(name, times[other] / times[ours]))
        if failures := [f for f in failures if f is not None]:
            pytest.fail("\n".join(failures), pytrace=False)

    def summary(self) -> list[str]:
        """Lines for the end of the session: what was compared, what was not guarded, what was recorded."""
        if not self.enabled:
            return []
        against = self.baseline_file.name if self.baseline_file else f"no baseline in {self.folder}"
        lines = [f"guard: {self.compared} of {len(self.figures)} figures compared ({against}, "
                 f"tolerance {self.tolerance:.0%})"]
        lines += [f"guard: not guarded, one side did not run: {entry}" for entry in self.unguarded]
        if self.written is not None:
            new = sum(name not in self.baseline for name in self.figures)
            lines.append(f"guard: recorded {new} new figures in {self.written}")
        return lines

    def write_new_baseline(self) -> Path | None:
        """Record the figures the baseline lacks (all of them when there is none)."""
        missing = {k: v for k, v in self.figures.items() if k not in self.baseline}
        if not (self.enabled and missing):
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"guard-{datetime.date.today():%Y%m%d}.json"
        figures = {**self.baseline, **missing}
        path.write_text(json.dumps({"hardware": self.folder.name, "figures": figures}, indent=1, sort_keys=True) + "\n")
        self.written = path
        return path


def fastest_round(benchmark) -> float | None:
    """Seconds of a finished benchmark's fastest round (the least disturbed by other load), for
    Guard.measured; None under --benchmark-disable, where nothing was timed."""
    return benchmark.stats.stats.min if benchmark.stats is not None else None


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
    if guard is not None:
        guard.write_new_baseline()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    guard = getattr(config, "_videorft_guard", None)
    for line in guard.summary() if guard is not None else []:
        terminalreporter.write_line(line)


@pytest.fixture
def guard(request) -> Guard:
    """Record a guarded figure: guard(name, value, higher_is_better=True, absolute=False); or note a
    provider's time with guard.measured(...) and guard the ratios with guard.ratios(...)."""
    return request.config._videorft_guard
