"""Installs that work: the wheel holds every package and the config tree, and trains.

The last test builds the wheel from a copy of the sources and installs it into a fresh virtual
environment, then uses it from a folder that is not the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# What the wheel is built from (the design card's top level, less tests/ and scripts/).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "conf", "realblur_gan", "data_tools")


def _package_folders() -> set[str]:
    """Every folder the wheel must ship, as a package name: the Python packages (any folder
    holding .py files, or the weights), and conf/ with its groups as realblur_gan.conf."""
    found = set()
    for top in ("realblur_gan", "data_tools"):
        for folder in [ROOT / top, *(ROOT / top).rglob("*")]:
            shipped = any(folder.glob("*.py")) or folder.name == "weights"
            if folder.is_dir() and folder.name != "__pycache__" and shipped:
                found.add(".".join(folder.relative_to(ROOT).parts))
    for folder in [ROOT / "conf", *(p for p in (ROOT / "conf").rglob("*") if p.is_dir())]:
        found.add(".".join(("realblur_gan", *folder.relative_to(ROOT).parts)))
    return found


def test_pyproject_lists_every_package_and_config_folder() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(config["tool"]["setuptools"]["packages"]) == _package_folders()
    assert config["tool"]["setuptools"]["package-dir"] == {"realblur_gan.conf": "conf"}
    assert config["project"]["license"] == "MIT" and (ROOT / "LICENSE").is_file()
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    extras = config["project"]["optional-dependencies"]
    assert {"onnx", "dev"} <= set(extras) and "realblur-gan[onnx]" in extras["dev"]


def test_the_checkout_reads_its_top_level_conf() -> None:
    from realblur_gan.training.config import CONFIG_DIR

    assert CONFIG_DIR == ROOT / "conf"  # no realblur_gan/conf copy in a checkout


def test_the_wheel_installs_into_a_fresh_venv_and_trains(tmp_path: Path) -> None:
    """Build the wheel, install it alone into a fresh venv, and use it outside the checkout.

    The fresh venv reaches the dependencies (torch & co.) through a ``.pth`` line naming this
    environment's site-packages, and the wheel is installed with ``--no-deps``: installing torch
    again would cost gigabytes and minutes and prove nothing about this package. The ``.pth``
    line adds that folder to ``sys.path`` *after* the venv's own site-packages and does not run
    the ``.pth`` files inside it, so this checkout's editable install is not active: every
    ``realblur_gan`` module, the config tree and the packaged weights come from the wheel (the
    test checks where ``realblur_gan`` and its ``conf/`` are imported from). What it proves: the
    wheel's contents suffice for ``realblur-train --help``, ``realblur-deblur`` with the
    packaged model (its SHA-256 checked) and a 2-batch demo training run. About 20 s.
    """
    pytest.importorskip("setuptools")  # the build backend, used from this environment
    src, dist, venv, work = (tmp_path / name for name in ("src", "dist", "venv", "work"))
    src.mkdir()
    for name in SOURCES:  # built from a copy: the build writes build/ and egg-info beside it
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)]
    subprocess.run(build, check=True, capture_output=True)
    (wheel,) = dist.glob("realblur_gan-*.whl")

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)], check=True)

    work.mkdir()
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": ""}

    def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(a) for a in argv], cwd=work, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done

    where = run(
        python,
        "-c",
        "import realblur_gan.training.config as c, realblur_gan.weights.model_zoo as z; "
        "print(c.__file__); print(c.CONFIG_DIR); print(z.verified_path())",
    ).stdout.split()
    assert all(line.startswith(str(venv)) for line in where), where

    assert "+scheme=joint" in run(venv / "bin" / "realblur-train", "--help").stdout

    pixels = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(work / "photo.png")
    run(venv / "bin" / "realblur-deblur", "photo.png", "--out", "restored")
    assert Image.open(work / "restored" / "photo.png").size == (32, 24)

    trained = run(
        venv / "bin" / "realblur-train",
        "+scheme=joint",
        "logger=none",
        *TINY,  # 2 training batches per stage, one validation batch
        "stages.pretrain_bgan.trainer.max_epochs=1",
        "stages.joint.trainer.max_epochs=1",
        f"paths.data_dir={work / 'data'}",
        f"hydra.run.dir={work / 'run'}",
    )
    assert "DBGAN on the validation split" in trained.stdout
    for stage in ("pretrain_bgan", "joint"):
        assert (work / "run" / "checkpoints" / stage / "last.ckpt").is_file()
