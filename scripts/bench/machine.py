"""What the numbers were measured on, and the device clock and memory readings behind them."""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so host timers see it (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> float:
    """Start a new peak-memory window; returns the memory in use now (GB)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 1e9
    with contextlib.suppress(OSError):  # Linux: "5" resets the peak RSS (ru_maxrss, VmHWM)
        Path("/proc/self/clear_refs").write_text("5")
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return float("nan")
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e9


def peak_memory_gb(device: torch.device) -> float:
    """Peak since :func:`reset_peak_memory`: CUDA allocated, or the process RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB on Linux


@contextlib.contextmanager
def contention(row: dict[str, Any]) -> Iterator[None]:
    """Record the load average and this process's involuntary context switches per second.

    On a shared CPU, preemptions by other processes, not the code, can dominate a timing; the
    two numbers in the row say how much to trust it.
    """
    before = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - start
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - before
        row["preemptions_per_s"] = switches / seconds if seconds > 0 else float("nan")
        row["load_average_1min"] = os.getloadavg()[0]


def describe(device: torch.device) -> dict[str, Any]:
    """The machine, libraries and thread settings, for the JSON's ``meta`` and the header."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "device": str(device),
        "cuda_available": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (OpenMP spins)"),
        "load_average_1min": os.getloadavg()[0],
        "torch": torch.__version__,
        "lightning": L.__version__,
        "python": platform.python_version(),
        "memory": "CUDA max_memory_allocated" if device.type == "cuda" else "process RSS",
    }
