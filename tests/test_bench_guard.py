"""The throughput gate of `pytest bench/ --guard` (bench/guard.py): ratios between providers measured
in one session, compared with a recorded baseline.

End to end, a tiny benchmark module runs under pytest in a subprocess three times: the first run
records the baseline, the second passes against it, and the third, with "ours" slowed down, fails
naming the figure and both values.
"""

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURE = "tiny/case/plain_over_ours"

# Two providers of the same work: a 2 ms sleep stands in for it (its length holds on a loaded
# machine, so the unchanged run cannot drift past the tolerance) plus a cheap sum. "ours" sleeps
# SLOWDOWN_S longer, read from the environment, to play a regression.
TINY_BENCH = '''
import os
import time

import pytest

from bench.guard import fastest_round

SLOWDOWN_S = float(os.environ.get("SLOWDOWN_S", "0"))


def work(extra_s=0.0):
    time.sleep(0.002 + extra_s)
    return sum(range(1000))


PROVIDERS = {"plain": work, "ours": lambda: work(SLOWDOWN_S)}


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_provider(benchmark, guard, provider):
    benchmark.pedantic(PROVIDERS[provider], rounds=5, warmup_rounds=1)
    guard.measured("tiny/case", provider, fastest_round(benchmark))


def test_guarded_ratios(guard):
    guard.ratios("tiny", [("plain", "ours")])
'''


@pytest.fixture
def guard_module(monkeypatch):
    """bench/guard.py, imported from the checkout (bench/ is not an installed package)."""
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("bench.guard")


def _run_gate(tmp_path: Path, slowdown_s: float) -> subprocess.CompletedProcess:
    # without the xdist worker's variables, which would make pytest-benchmark disable timing
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env = {**inherited, "SLOWDOWN_S": str(slowdown_s),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    # the gate as a plugin; hypothesis' plugin alone takes a second to load
    plugins = ["-p", "bench.guard", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
    gate = ["--guard", "--guard-dir", str(tmp_path / "baseline")]
    return subprocess.run([sys.executable, "-m", "pytest", "-q", *plugins, "test_tiny_bench.py", *gate],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)


def test_slowed_provider_fails_the_gate(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")        # keeps the checkout's pytest settings out
    (tmp_path / "test_tiny_bench.py").write_text(TINY_BENCH)

    first = _run_gate(tmp_path, 0.0)
    assert first.returncode == 0, first.stdout + first.stderr
    [baseline] = (tmp_path / "baseline").glob("guard-*.json")
    recorded = json.loads(baseline.read_text())["figures"]
    assert list(recorded) == [FIGURE] and 0.7 < recorded[FIGURE]["value"] < 1.4
    assert "recorded 1 new figures" in first.stdout

    second = _run_gate(tmp_path, 0.0)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 of 1 figures compared" in second.stdout
    assert json.loads(baseline.read_text())["figures"] == recorded          # a passing run records nothing

    third = _run_gate(tmp_path, 0.006)                                       # ours: 2 ms -> 8 ms
    assert third.returncode == 1, third.stdout + third.stderr
    found = re.search(rf"guarded figure {FIGURE}: ([\d.]+) against baseline ([\d.]+)", third.stdout)
    assert found, third.stdout
    assert float(found[1]) < 0.5 and found[2] == f"{recorded[FIGURE]['value']:.4g}"


def test_ratio_from_two_sides_and_missing_side(guard_module, tmp_path):
    gate = guard_module.Guard(True, tmp_path, tolerance=0.15)
    gate.measured("s/a/fwd", "naive", 0.3)
    gate.measured("s/a/fwd", "ours", 0.1)
    gate.measured("s/b/fwd", "ours", 0.1)                   # naive skipped here
    gate.measured("s/c/fwd", "other", 0.1)                  # neither side of the pair: not mentioned
    gate.measured("s/d/fwd", "naive", None)                 # --benchmark-disable: nothing timed
    gate.measured("t/a/fwd", "naive", 0.5)                  # another suite's
    gate.measured("t/a/fwd", "ours", 0.1)
    gate.ratios("s", [("naive", "ours")])
    assert gate.figures == {"s/a/fwd/naive_over_ours": {"value": pytest.approx(3.0), "higher_is_better": True}}
    assert gate.unguarded == ["s/b/fwd/naive_over_ours (naive not measured)"]
    assert "guard: not guarded, one side did not run: s/b/fwd/naive_over_ours (naive not measured)" in gate.summary()
    assert gate.write_new_baseline().is_file()


def test_ratios_fail_once_naming_every_regressed_figure(guard_module, tmp_path):
    (tmp_path / "guard-20260101.json").write_text(json.dumps({"figures": {
        "s/a/naive_over_ours": {"value": 3.0, "higher_is_better": True},
        "s/b/naive_over_ours": {"value": 2.0, "higher_is_better": True}}}))
    gate = guard_module.Guard(True, tmp_path, tolerance=0.15)
    for case, ours in (("s/a", 0.2), ("s/b", 0.11)):        # a: 3.0 -> 1.0, b: 2.0 -> 1.82 (within 15%)
        gate.measured(case, "naive", 0.2)
        gate.measured(case, "ours", ours)
    with pytest.raises(pytest.fail.Exception) as failed:
        gate.ratios("s", [("naive", "ours")])
    assert str(failed.value).splitlines() == [
        "guarded figure s/a/naive_over_ours: 1 against baseline 3 (guard-20260101.json); higher is better "
        "and the tolerance is 15%"]
    assert gate.compared == 2 and gate.write_new_baseline() is None     # nothing new to record
