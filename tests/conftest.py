"""Shared fixtures: the real Hydra config, shrunk to run in seconds on a CPU."""

from __future__ import annotations

import os

# Test tensors are tiny: one thread is faster than two (no sync overhead) and keeps the suite's
# time stable on a busy 2-core machine. Set before torch starts; subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import importlib.util
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from realblur_gan.training.config import CONFIG_DIR

torch.set_num_threads(1)

# The data shared beside the checkout (../shared/data); tests that read it skip without it.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """Import ``scripts/<name>.py`` (not a package) as the module ``realblur_script_<name>``.

    It is registered in ``sys.modules`` before it runs, as an import would be, so that what it
    defines (dataclasses, pickled objects) can find its module.
    """
    spec = importlib.util.spec_from_file_location(f"realblur_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_MODE", "offline")

# Tiny but complete: every stage, every net and every loss runs, on 32 px crops.
TINY = [
    "data.n_sharp=12",
    "data.n_real=8",
    "data.n_val=4",
    "data.image_size=64",
    "data.crop_size=32",
    "data.batch_size=4",
    "data.val_batch_size=4",
    "model.bgan_d.width=4",
    "model.bgan_d_conditional.width=4",
    "model.dbgan_g.width=4",
    "model.dbgan_d.width=4",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1",
]


@pytest.fixture(autouse=True)
def same_random_start() -> None:
    """Every test starts from one random state, whatever ran before it and in any process.

    torch seeds its default generator from the operating system when it is imported (2.14 does:
    ``python -c "import torch; print(torch.initial_seed())"`` differs run to run), so a test that
    draws without seeding drew different numbers in every pytest process: the DBGAN clamp test
    failed in 1 run of 16 that way. Training seeds itself (``seed``, then every stage afresh).
    """
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)


# `--dtype` choices; gradchecks take float64 whatever is chosen.
DTYPES = {"float32": torch.float32, "float64": torch.float64}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu", help="device for tensor tests (cpu or cuda)")
    parser.addoption(
        "--dtype",
        default="float32",
        choices=tuple(DTYPES),
        help="dtype for tensor tests (gradchecks always take float64)",
    )


@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.config.getoption("--device"))


@pytest.fixture
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    """The dtype of tensor tests: ``--dtype``, float32 by default, as training runs. Gradchecks
    take float64 (``@pytest.mark.parametrize("dtype", [torch.float64])``): finite differences
    in float32 are too coarse for ``torch.autograd.gradcheck``."""
    return DTYPES[request.config.getoption("--dtype")]


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated tiny demo dataset shared by every test (generation is deterministic)."""
    return tmp_path_factory.mktemp("demo_data")


def make_config(
    scheme: str | None, out_dir: Path, data_dir: Path, overrides: list[str] | None = None
) -> DictConfig:
    """Compose ``conf/train.yaml`` + scheme exactly as the CLI does, pointed at ``out_dir``."""
    args = [*TINY, *(overrides or [])]
    if scheme is not None:
        args.insert(0, f"+scheme={scheme}")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=args)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
        cfg.paths.data_dir = str(data_dir)
    return cfg


@pytest.fixture
def tiny_config(tmp_path: Path, demo_cache: Path):
    def factory(scheme: str | None, *overrides: str) -> DictConfig:
        return make_config(scheme, tmp_path / "run", demo_cache, list(overrides))

    return factory


def build_module(cfg: DictConfig, name: str) -> torch.nn.Module:
    """Stage ``name``'s module as a training run builds it
    (``realblur_gan.training.runner.build_stage``:
    the stage's effective optimiser settings, its nets' configs, the perf switches), with no
    earlier stage's weights to load (``init_from`` emptied: no earlier stage ran here)."""
    from realblur_gan.training.runner import build_stage

    with open_dict(cfg):
        cfg.stages[name].init_from = {}
    return build_stage(cfg, name)


def quiet_trainer(**kwargs: Any) -> L.Trainer:
    """A Trainer for a test: no logger, no checkpoints, no progress bar, no model summary."""
    return L.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


class ModeMarkingBlur(torch.nn.Module):
    """A stand-in BGAN (``_target_: conftest.ModeMarkingBlur``) that blurs to 0.25 in training
    mode and 0.75 in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.0))

    def forward(self, sharp: torch.Tensor) -> torch.Tensor:
        return torch.full_like(sharp, 0.25 if self.training else 0.75) + 0.0 * self.w


class OvershootingBlur(torch.nn.Module):
    """A stand-in BGAN (``_target_: conftest.OvershootingBlur``) whose output leaves [0, 1] in
    training and eval mode alike."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(3.0))

    def forward(self, sharp: torch.Tensor) -> torch.Tensor:
        return sharp * self.scale - 1.0


# A generator small enough to load, run and save in milliseconds, and its stored config.
TINY_NET = {"_target_": "realblur_gan.nets.UNet", "in_channels": 3, "out_channels": 3}
TINY_NET |= {"width": 4, "depth": 2}


def save_net_checkpoint(
    path: Path,
    net: torch.nn.Module,
    config: dict | None = TINY_NET,
    name: str = "dbgan_g",
    init_from: torch.nn.Module | None = None,
) -> Path:
    """A checkpoint shaped like training's: prefixed state dict plus ``net_configs`` (and, with
    ``init_from``, the record of the weights its net was fine-tuned from)."""
    from realblur_gan.weights.interpolation import weights_fingerprint

    blob: dict = {"state_dict": {f"{name}.{k}": v for k, v in net.state_dict().items()}}
    blob["state_dict"]["iteration"] = torch.tensor(3)
    if config is not None:
        blob["net_configs"] = {name: config}
    if init_from is not None:
        record = {"source": "start", "fingerprint": weights_fingerprint(init_from.state_dict())}
        blob["init_sources"] = {name: record}
    torch.save(blob, path)
    return path


@pytest.fixture
def tiny_net() -> torch.nn.Module:
    """A random tiny U-Net in eval mode (the net of :data:`TINY_NET`)."""
    from realblur_gan.nets import UNet

    torch.manual_seed(0)
    return UNet(3, 3, width=4, depth=2).eval()


@pytest.fixture
def packaged_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install an identity U-Net as the packaged DBGAN, laid out as ``realblur_gan/weights/``.

    The weights are written the way export writes them (config in the metadata) and renamed; no
    ``.json`` sidecar, as the package ships none. The registry's entry gets the file's hash.
    """
    from dataclasses import replace

    from realblur_gan.export import export_safetensors
    from realblur_gan.nets import UNet
    from realblur_gan.weights import model_zoo

    net = UNet(3, 3, width=4, depth=2).zero_residual_().eval()
    weights, sidecar = export_safetensors(net, TINY_NET, tmp_path / "weights", "dbgan_g")
    sidecar.unlink()
    entry = model_zoo.MODELS[model_zoo.DEFAULT_MODEL]
    path = weights.rename(weights.with_name(entry.file))
    monkeypatch.setattr(model_zoo, "WEIGHTS_DIR", path.parent)
    fake = replace(entry, sha256=model_zoo.file_sha256(path))
    monkeypatch.setitem(model_zoo.MODELS, model_zoo.DEFAULT_MODEL, fake)
    return path


@pytest.fixture
def no_packaged_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the packaged DBGAN absent (whether or not this checkout ships one)."""
    from realblur_gan.weights import model_zoo

    monkeypatch.setattr(model_zoo, "WEIGHTS_DIR", tmp_path / "empty")
    return model_zoo.MODELS[model_zoo.DEFAULT_MODEL].path
