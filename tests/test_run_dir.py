"""Every training launch gets a run dir of its own, checked before Hydra writes into it."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from realblur_gan.training.config import CONFIG_DIR
from realblur_gan.training.run_dir import ClaimRunDir


def _hydra_config(*overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=["+scheme=joint", *overrides], return_hydra_config=True)


def _train_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WANDB_MODE": "disabled"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "realblur_gan", "+scheme=joint", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_launches_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    claimed = []
    for _ in range(3):
        cfg = _hydra_config("hydra.run.dir=outputs/joint/2026-01-01_12-00-00")
        # As Hydra records the launch's own overrides: the dir here is the default, not typed.
        cfg.hydra.overrides.hydra = []
        ClaimRunDir().on_run_start(cfg)
        claimed.append(cfg.hydra.run.dir)
    assert claimed == [
        "outputs/joint/2026-01-01_12-00-00",
        "outputs/joint/2026-01-01_12-00-00_2",
        "outputs/joint/2026-01-01_12-00-00_3",
    ]


def test_a_typed_run_dir_is_used_as_given(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    cfg = _hydra_config(f"hydra.run.dir={folder}")
    ClaimRunDir().on_run_start(cfg)
    assert cfg.hydra.run.dir == str(folder)  # no suffix: the run's lock guards it instead


def test_an_unwritable_run_dir_is_one_error_line(tmp_path, capsys):
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the run dir should go")
    cfg = _hydra_config(f"hydra.run.dir={blocker}/run")
    with pytest.raises(SystemExit) as caught:
        ClaimRunDir().on_run_start(cfg)
    assert caught.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"error: hydra.run.dir {blocker}/run: cannot write there")


def test_cli_launch_into_a_taken_second_writes_to_a_new_folder(tmp_path):
    """The default run dir of this very second (and the next few) exists already: the launch
    must not write its .hydra/ files and log into it."""
    now = datetime.now()
    taken = []
    for seconds in range(30):
        folder = (
            tmp_path
            / "outputs"
            / "joint"
            / (now + timedelta(seconds=seconds)).strftime("%Y-%m-%d_%H-%M-%S")
        )
        folder.mkdir(parents=True)
        taken.append(folder)
    done = _train_cli("logger=none", "data.batch_size=0", cwd=tmp_path)  # fails after the claim
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: data.batch_size=0")
    assert all(not any(folder.iterdir()) for folder in taken)
    (used,) = [p for p in (tmp_path / "outputs" / "joint").iterdir() if (p / ".hydra").is_dir()]
    assert used.name.endswith("_2") and used.with_name(used.name[:-2]) in taken


def test_cli_unwritable_run_dir_is_one_error_line(tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the run dir should go")
    done = _train_cli("logger=none", f"hydra.run.dir={blocker}/run", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: hydra.run.dir {blocker}/run: cannot write there (Not a directory); "
        "pass a writable folder"
    ]
