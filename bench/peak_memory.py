"""Peak memory of one call, on CUDA and on CPU, for the `peak_mem_mib` benchmark figure.

CUDA: the caching allocator's peak (`torch.cuda.max_memory_allocated`) during the call minus
what was allocated just before it. Exact for tensors; excludes the allocator's cache and the
CUDA context.

CPU: the kernel's resident-set high-water mark (VmHWM in /proc/self/status), reset just
before the call by writing 5 to /proc/self/clear_refs (Linux >= 4.0), minus the resident set
(VmRSS) at that moment. Freed heap memory is first handed back with malloc_trim, so the
baseline holds only live data. This counts every page the process touches (tensors, allocator
slack, library workspaces), so it is an upper bound on tensor memory; it cannot see memory
that is freed and re-used within a page that was already resident.
"""

from __future__ import annotations

import ctypes
import gc
import re
from typing import Callable

import torch

_STATUS = "/proc/self/status"


def _status_kib(field: str) -> int:
    with open(_STATUS) as fh:
        return int(re.search(rf"^{field}:\s+(\d+) kB", fh.read(), re.M).group(1))


def _trim_heap() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def cpu_peak_supported() -> bool:
    """Whether the VmHWM reset works here (Linux with a writable /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def measure_peak_mib(fn: Callable[[], object], device: torch.device) -> tuple[object, float | None, str]:
    """Run fn() once; return (its result, peak MiB above the pre-call baseline or None, method)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        result = fn()
        torch.cuda.synchronize(device)
        return result, (torch.cuda.max_memory_allocated(device) - base) / 2**20, "cuda max_memory_allocated"
    if not cpu_peak_supported():
        return fn(), None, "unavailable (no /proc/self/clear_refs)"
    _trim_heap()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = _status_kib("VmRSS")
    result = fn()
    return result, (_status_kib("VmHWM") - base) / 1024, "cpu VmHWM - VmRSS (reset via clear_refs)"
