"""Shared helpers for the throughput suites.

Every benchmark compares providers side by side in one run and records its derived figures in
`benchmark.extra_info` under the keys of docs/design.md §7: provider, device, shape, tokens_per_s,
tflops, gb_per_s, peak_mem_mib. Record results with
`pytest bench/ --benchmark-json=bench/results/<hardware>/<suite>-<yyyymmdd>.json`; `--guard` turns
the guarded figures into a regression gate (bench/guard.py).
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

from bench.guard import (  # noqa: E402,F401  (the plugin)
    guard, pytest_addoption, pytest_configure, pytest_sessionfinish, pytest_terminal_summary)

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")


def device_name() -> str:
    """"NVIDIA H100 80GB HBM3"-style name of the GPU, or "cpu"."""
    return torch.cuda.get_device_name() if HAS_CUDA else "cpu"


def stamp(benchmark, provider: str, shape: dict, **figures) -> None:
    """Fill extra_info with the standard keys; figures with value None are left out."""
    benchmark.extra_info.update({"provider": provider, "device": device_name(), "shape": shape})
    benchmark.extra_info.update({k: v for k, v in figures.items() if v is not None})


def pytest_collection_modifyitems(config, items):
    """Benchmarks marked `gpu` skip cleanly without CUDA."""
    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
