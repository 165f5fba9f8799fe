"""Threads: cores from the affinity and cgroup quota, passive OpenMP waits set before torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from realblur_gan import threads
from realblur_gan.threads import available_cpus, cgroup_cpu_quota, use_available_cpus


def _tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def test_cgroup_v2_quota_is_the_smallest_on_the_way_up(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "proc": "0::/user.slice/job",
            "fs/cpu.max": "max 100000",
            "fs/user.slice/cpu.max": "300000 100000",
            "fs/user.slice/job/cpu.max": "150000 100000",
        },
    )
    assert cgroup_cpu_quota(tmp_path / "fs", tmp_path / "proc") == pytest.approx(1.5)
    (tmp_path / "fs/user.slice/job/cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path / "fs", tmp_path / "proc") == pytest.approx(3.0)


def test_cgroup_v1_quota_and_no_limit(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "proc": "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n0::/",
            "fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "50000",
            "fs/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
        },
    )
    assert cgroup_cpu_quota(tmp_path / "fs", tmp_path / "proc") == pytest.approx(0.5)
    (tmp_path / "fs/cpu,cpuacct/docker/abc/cpu.cfs_quota_us").write_text("-1\n")  # unlimited
    assert cgroup_cpu_quota(tmp_path / "fs", tmp_path / "proc") is None
    assert cgroup_cpu_quota(tmp_path / "none", tmp_path / "missing") is None


def test_available_cpus_is_the_affinity_capped_by_the_quota(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    affinity = len(os.sched_getaffinity(0))
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: None)
    assert available_cpus() == affinity
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: 0.5)
    assert available_cpus() == 1  # a fraction of a core still runs one thread
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: affinity + 7.0)
    assert available_cpus() == affinity


def test_use_available_cpus_keeps_the_users_omp_num_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        torch.set_num_threads(1)
        assert use_available_cpus() == 1
        monkeypatch.delenv("OMP_NUM_THREADS")
        monkeypatch.setattr(threads, "available_cpus", lambda: 2)
        assert use_available_cpus() == 2 == torch.get_num_threads()
        assert use_available_cpus(1) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_package_sets_passive_waits_before_torch_loads(given: str | None, expected: str) -> None:
    """Every command imports the package first: the policy is in the environment before
    torch (and its OpenMP runtime) is loaded, and a user's own choice stays."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = (
        "import os, sys; import realblur_gan.predict as p; import torch; "
        "print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    )
    # Before the CLI module's own imports run: the package __init__ alone.
    first = (
        "import os, sys, realblur_gan; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", first], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [expected, "False"]
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [expected, "True"]
