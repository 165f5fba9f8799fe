"""CPU threads for this process: as many as the cores it may really use, waiting passively.

Two things make torch slow on a CPU that other jobs share. Threads beyond the cores the process
may run on (its CPU affinity, a container's CPU quota) only take turns; and OpenMP threads that
spin while they wait for the next parallel region burn the cores another thread needs, so each
region ends when the slowest, preempted thread gets a turn. Measured on 2 cores with two busy
processes competing (``scripts/bench_load.py``, ``docs/speed.md``): blind MAP 100 s with spinning
waits against 6 s with sleeping ones, ``realblur-evaluate --shift 5`` over 150 s against 17 s.

:func:`passive_waits` must run before torch is imported (the OpenMP runtime reads
``OMP_WAIT_POLICY`` when it loads): the package's ``__init__`` calls it, which every command
imports first. :func:`use_available_cpus` is for the command-line entry points. Neither
overrides what the user set in the environment.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["available_cpus", "cgroup_cpu_quota", "passive_waits", "use_available_cpus"]

_CGROUP_ROOT = Path("/sys/fs/cgroup")


def passive_waits() -> None:
    """Make idle OpenMP threads sleep instead of spin (``OMP_WAIT_POLICY=PASSIVE``), unless the
    environment says otherwise. Has an effect only before torch is imported."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_quota(root: Path = _CGROUP_ROOT, proc_cgroup: Path | None = None) -> float | None:
    """The CPU quota of this process's cgroup in cores (e.g. ``1.5``), or None without one.

    Reads cgroup v2 (``cpu.max`` of the process's group and its parents: the smallest limit
    holds) or v1 (``cpu.cfs_quota_us / cpu.cfs_period_us``).

    Args:
        root: where the cgroup file system is mounted.
        proc_cgroup: the process's cgroup list (``/proc/self/cgroup``); a parameter for tests.
    """
    listing = _read(proc_cgroup or Path("/proc/self/cgroup")) or ""
    quotas: list[float] = []
    for line in listing.splitlines():
        _, controllers, group = line.split(":", 2)
        if controllers == "":  # cgroup v2: one unified hierarchy
            folder = root / group.lstrip("/")
            while True:
                text = _read(folder / "cpu.max")
                if text and not text.startswith("max"):
                    quota, period = text.split()[:2]
                    quotas.append(int(quota) / int(period))
                if folder == root or root not in folder.parents:
                    break
                folder = folder.parent
        elif "cpu" in controllers.split(","):
            # The group's folder, or the mount itself where a container sees only its own.
            mounts = (root / "cpu,cpuacct", root / "cpu")
            for folder in [m / group.lstrip("/") for m in mounts] + list(mounts):
                quota = _read(folder / "cpu.cfs_quota_us")
                period = _read(folder / "cpu.cfs_period_us")
                if quota and period and int(quota) > 0:
                    quotas.append(int(quota) / int(period))
                    break
    return min(quotas) if quotas else None


def available_cpus() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup quota (rounded up)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def use_available_cpus(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads``, else to :func:`available_cpus`.

    An ``OMP_NUM_THREADS`` in the environment is the user's choice and is kept when
    ``threads`` is None.

    Returns:
        The thread count torch now uses.
    """
    import torch

    if threads is None and "OMP_NUM_THREADS" in os.environ:
        return torch.get_num_threads()
    count = threads or available_cpus()
    if count != torch.get_num_threads():
        torch.set_num_threads(count)
    return count
