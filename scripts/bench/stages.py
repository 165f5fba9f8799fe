"""A benchmark case's config, stage module and Trainer, made as a training run makes them.

A case is what a user would type: ``+scheme=<scheme>`` and their overrides, plus a speed
switch as one more override. The module comes from ``realblur_gan.training.runner.build_stage`` and
the
Trainer from the stage's own trainer settings (``stage_trainer_config``), shortened to the
case's batches. Only what a benchmark cannot have is changed: there is no earlier stage to
initialise from, no logger and no checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from realblur_gan.training.config import CONFIG_DIR, available_schemes, stage_order, validate_config
from realblur_gan.training.runner import build_stage, check_stage_trainers, stage_trainer_config


@dataclass(frozen=True)
class Switch:
    """A speed switch, as the Hydra override that turns it on in training."""

    name: str
    override: str


# channels_last is on by default (conf/train.yaml): the switch measures the step without it.
SWITCHES = (
    Switch("bf16-mixed", "trainer.precision=bf16-mixed"),
    Switch("contiguous", "perf.channels_last=false"),
    Switch("compile", "perf.compile=true"),
)


@dataclass(frozen=True)
class Case:
    """One stage at one crop and batch size, with at most one speed switch."""

    stage: str
    scheme: str
    size: int
    batch: int
    switch: Switch | None = None


def compose_config(scheme: str, overrides: Sequence[str] = ()) -> DictConfig:
    """``conf/train.yaml`` + ``+scheme=<scheme>`` + ``overrides``, composed as the CLI does."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[f"+scheme={scheme}", *overrides])


def stage_schemes(overrides: Sequence[str] = ()) -> dict[str, str]:
    """Every stage of the shipped schemes and a scheme that trains it, in training order.

    A stage in several schemes is taken from the one with the most stages (``pretrain_bgan``
    from ``separate``), so the stages read in the order the longest run trains them.
    """
    orders = [(s, stage_order(compose_config(s, overrides))) for s in available_schemes()]
    found: dict[str, str] = {}
    for scheme, stages in sorted(orders, key=lambda item: -len(item[1])):
        for stage in stages:
            found.setdefault(stage, scheme)
    return found


def case_config(
    case: Case, overrides: Sequence[str], out_dir: Path
) -> tuple[DictConfig, list[str]]:
    """The checked config of ``case`` and the overrides it was typed with.

    Args:
        case: The stage, sizes and switch.
        overrides: The user's Hydra overrides (``--override``).
        out_dir: Where the run would write (panels of the validation batches land here).

    Returns:
        The config and the typed overrides, for ``build_stage`` and the trainer settings.

    Raises:
        realblur_gan.training.config.ConfigError: A value out of range, a crop a net cannot take or
        a
            Trainer argument that does not exist; one line naming the key.
    """
    typed = ["logger=none", *overrides]
    if case.switch is not None:
        typed.append(case.switch.override)
    cfg = compose_config(case.scheme, typed)
    typed.insert(0, f"+scheme={case.scheme}")
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
        cfg.paths.data_dir = str(out_dir / "data")  # no hydra:runtime here; nothing is read
        # The case's own crop and batch, so the checks below test the nets against them.
        cfg.data.crop_size = case.size
        cfg.data.batch_size = case.batch
        # No earlier stage ran: the nets keep their initialisation, which costs the same.
        cfg.stages[case.stage].init_from = {}
    validate_config(cfg)
    check_stage_trainers(cfg, [case.stage])
    return cfg, typed


def variant(cfg: DictConfig, stage: str) -> dict[str, Any]:
    """The precision and speed switches the stage trains with, and a short name for them."""
    precision = str(stage_trainer_config(cfg, stage).get("precision", "32-true"))
    perf = cfg.get("perf") or {}
    channels_last, compiled = bool(perf.get("channels_last")), bool(perf.get("compile"))
    name = "fp32" if precision in ("32", "32-true") else precision
    # Named by what differs from the defaults (channels-last on, no compile).
    name += "+contiguous" * (not channels_last) + "+compile" * compiled
    return {
        "variant": name,
        "precision": precision,
        "channels_last": channels_last,
        "compile": compiled,
    }


def build_module(cfg: DictConfig, stage: str) -> L.LightningModule:
    """``build_stage``'s module, its nets initialised from ``cfg.seed`` as a run's first stage."""
    torch.manual_seed(cfg.seed)
    return build_stage(cfg, stage)


def stage_trainer(
    cfg: DictConfig,
    stage: str,
    device: torch.device,
    train_batches: int,
    val_batches: int,
    callbacks: Sequence[L.Callback],
    root: Path,
) -> L.Trainer:
    """The stage's Trainer (precision, determinism, logging interval as configured), for one
    epoch of ``train_batches`` then ``val_batches`` validation batches on ``device``."""
    settings = stage_trainer_config(cfg, stage)
    with open_dict(settings):
        settings.update(
            accelerator="gpu" if device.type == "cuda" else "cpu",
            devices=1,
            max_epochs=1,
            max_steps=-1,
            limit_train_batches=train_batches,
            limit_val_batches=val_batches,
            num_sanity_val_steps=0,
            check_val_every_n_epoch=1,
            val_check_interval=None,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
    return instantiate(settings, default_root_dir=str(root), logger=False, callbacks=[*callbacks])
