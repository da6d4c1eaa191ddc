"""Whether an optional package is installed, asked without importing it.

GPU-only and optional libraries (vllm, flash_attn, DALI, decord, OpenCV) are probed with
importlib.util.find_spec, so a probe never pays an import or initialises CUDA.
"""

from __future__ import annotations

import importlib.util


def has_package(name: str) -> bool:
    """Whether module `name` (dotted names allowed, e.g. "nvidia.dali") is importable here."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
