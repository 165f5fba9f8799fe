"""Progress of long work: a bar on a terminal, plain lines in a log, on every long step.

Under pytest stderr is captured, not a terminal: what a job writing to a log file sees. The
quiet period and the interval are shrunk to zero so the tests need no waiting.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from realblur_gan import progress
from realblur_gan.progress import progress_bar


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Report at once and at every step, off a terminal."""
    monkeypatch.setattr(progress, "QUIET_SECONDS", 0.0)
    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.0)


def test_off_a_terminal_progress_is_written_as_whole_lines(eager, capsys) -> None:
    with progress_bar(total=3, desc="work", unit="img") as bar:
        for _ in range(3):
            bar.update(1)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert lines[-1].startswith("work: 100%") and "3/3" in lines[-1]
    assert any("1/3" in line for line in lines)


def test_short_work_writes_nothing_off_a_terminal(capsys) -> None:
    for _ in progress_bar(range(3), desc="quick"):
        pass
    for _ in progress_bar(range(3), desc="off", enabled=False):
        pass
    assert capsys.readouterr().err == ""


def test_demo_generation_reports_its_progress(eager, tmp_path: Path, capsys) -> None:
    from realblur_gan.data.demo import ensure_demo

    ensure_demo(tmp_path, n_sharp=2, n_real=2, n_val=1, image_size=32)
    lines = capsys.readouterr().err.splitlines()
    assert lines and lines[-1].startswith("demo data: 100%") and "5/5" in lines[-1]


def test_the_frames_cache_reports_its_progress(eager, tmp_path: Path, capsys) -> None:
    from test_frames_data import frames_dm, write_clip

    write_clip(tmp_path / "frames" / "clip")
    frames_dm(tmp_path / "frames", tmp_path / "cache").setup()
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("frames cache: 100%") for line in lines)


def test_blind_map_reports_its_iterations_off_a_terminal(eager, capsys) -> None:
    """MAP's default budget takes minutes: a job writing to a log must see it move."""
    from realblur_gan.blind.map import map_deblur

    image = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    map_deblur(image, kernel_size=5, iterations=40, names=["photo.png"], progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("photo.png:") and "/40" in line for line in lines)
    assert lines[-1].startswith("photo.png: 100%")
