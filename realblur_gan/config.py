"""Hydra/OmegaConf glue: custom resolvers and the location of the config tree."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from realblur_gan.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"


def _wandb_offline(online: bool | str) -> bool:
    """W&B is offline unless the config switch or ``WANDB_MODE=online`` asks for the dashboard."""
    if str(online).lower() in {"true", "1", "yes"}:
        return False
    return os.environ.get("WANDB_MODE", "offline").lower() != "online"


def register_resolvers() -> None:
    """Register the ``rbg.*`` resolvers used by the configs (idempotent)."""
    if not OmegaConf.has_resolver("rbg.add"):
        OmegaConf.register_new_resolver("rbg.add", lambda *xs: sum(int(x) for x in xs))
    if not OmegaConf.has_resolver("rbg.wandb_offline"):
        OmegaConf.register_new_resolver("rbg.wandb_offline", _wandb_offline)


def available_schemes() -> list[str]:
    """Names of the training schemes shipped in ``conf/scheme``."""
    return sorted(p.stem for p in (CONFIG_DIR / "scheme").glob("*.yaml"))


# --------------------------------------------------------------------------------------------------
# A stage's effective trainer and optimiser settings: one precedence rule for every key
# --------------------------------------------------------------------------------------------------

_ABSENT = object()


def typed_overrides(overrides: Sequence[str] | None = None) -> list[str]:
    """The overrides the user typed on the command line.

    Args:
        overrides: Given explicitly (tests, scripts composing a config themselves); None reads
            them from the running Hydra job, and outside one there are none.

    Returns:
        Override strings as typed, e.g. ``["+scheme=joint", "trainer.max_epochs=5"]``.
    """
    if overrides is not None:
        return list(overrides)
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return list(HydraConfig.get().overrides.task)
    return []


def _typed_keys(overrides: Sequence[str]) -> list[str]:
    """Config keys that ``overrides`` set a value for (group choices and deletions excluded)."""
    keys = []
    for text in overrides:
        if text.startswith("~"):
            continue
        key = text.split("=", 1)[0].lstrip("+")  # `+key` adds, `++key` forces
        if "@" not in key and "." in key:  # `trainer=gpu` picks a group option: not a key
            keys.append(key)
    return keys


def _plain(value: Any) -> Any:
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def stage_settings(
    cfg: DictConfig, name: str, block: str, overrides: Sequence[str] | None = None
) -> DictConfig:
    """Stage ``name``'s effective ``block`` (``"trainer"`` or ``"optim"``).

    One rule for every key, lowest precedence first:

    1. the global block (``conf/trainer``, ``conf/optim``: the chosen group option);
    2. the stage's own block (``conf/stage/<stage>.yaml``: ``trainer``, ``optim``);
    3. a global key typed on the command line (``trainer.max_epochs=50``,
       ``optim.generator.lr=1e-4``): it reaches every stage;
    4. a stage key typed on the command line (``stages.dbgan.trainer.max_epochs=5``).

    Keys the global block lacks are allowed in a stage's block (``limit_train_batches``,
    ``max_time``: the Trainer takes many more arguments than the yaml lists); the training run
    checks the result against the Trainer's arguments before any stage starts.

    Args:
        cfg: The composed config.
        name: A key of ``cfg.stages``.
        block: ``"trainer"`` or ``"optim"``.
        overrides: The typed overrides; None reads them from the running Hydra job.

    Returns:
        A resolved config, detached from ``cfg`` and open to new keys.
    """
    stage = cfg.stages[name]
    own = _plain(stage.get(block)) or {}
    merged = OmegaConf.merge(OmegaConf.create(_plain(cfg.get(block)) or {}), own)
    OmegaConf.set_struct(merged, False)

    def set_typed(key: str, prefix: str) -> None:
        value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
        if value is not _ABSENT:
            OmegaConf.update(merged, key.removeprefix(prefix), _plain(value), merge=False)

    keys = _typed_keys(typed_overrides(overrides))
    for key in keys:  # global keys first, so that a typed stage key beats a typed global one
        if key.startswith(f"{block}."):
            set_typed(key, f"{block}.")
    stage_key = f"stages.{name}.{block}"
    for key in keys:
        if key == stage_key:  # the whole block typed: `stages.dbgan.trainer={max_epochs:5}`
            merged = OmegaConf.merge(merged, own)
        elif key.startswith(f"{stage_key}."):
            set_typed(key, f"{stage_key}.")
    return merged


# --------------------------------------------------------------------------------------------------
# Validation: bad numbers are refused when the config is built, naming the key and the range
# --------------------------------------------------------------------------------------------------


class ConfigError(UserError, ValueError):
    """A config value is out of range; the message names the key, the value and what is allowed."""


_NET_KEYS = ("bgan_g", "bgan_d", "dbgan_g", "dbgan_d")
_LARGEST_CROP = 4096


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _check(
    cfg: DictConfig,
    key: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    optional: bool = False,
) -> None:
    """Refuse ``cfg.<key>`` unless it is a number in the range (absent keys pass)."""
    value = OmegaConf.select(cfg, key, default="__absent__")
    if value == "__absent__" or (value is None and optional):
        return
    number = _number(value)
    kind = "an integer" if integer else "a number"
    left = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
    right = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
    allowed = " and ".join(p for p in (left, right) if p) or "finite"
    ok = number is not None and math.isfinite(number) and not (integer and number != int(number))
    if ok and low is not None:
        ok = number > low if low_open else number >= low
    if ok and high is not None:
        ok = number < high if high_open else number <= high
    if not ok:
        null = " or null" if optional else ""
        raise ConfigError(f"{key}={value!r}: must be {kind} {allowed}{null}; fix the override")


def _check_kernel_size(cfg: DictConfig, key: str) -> None:
    value = OmegaConf.select(cfg, key, default=None)
    if value is None:
        return
    sizes = [value] if _number(value) is not None else list(value)
    ok = 1 <= len(sizes) <= 2 and all(
        _number(s) is not None and s == int(s) and s >= 1 for s in sizes
    )
    if not ok or sizes[0] > sizes[-1]:
        raise ConfigError(
            f"{key}={OmegaConf.to_container(value) if isinstance(value, ListConfig) else value!r}: "
            "must be a kernel side >= 1 or a range [low, high] with 1 <= low <= high"
        )


def _forward_on_meta(net_cfg: DictConfig, channels: int, size: int) -> None:
    """Build a net on the meta device (no memory, no compute) and push a ``size`` crop through."""
    import torch
    from hydra.utils import instantiate

    with torch.device("meta"):
        net = instantiate(net_cfg)
        x = torch.empty(1, channels, size, size)
        cond = int(net_cfg.get("cond_channels") or 0)
        with torch.no_grad():
            net(x, cond=torch.empty(1, cond, size, size)) if cond else net(x)


def _check_crop(cfg: DictConfig) -> None:
    """The training crop must fit every net: a multiple of the generators' stride and at least
    the discriminators' smallest input. Checked by a forward pass on the meta device."""
    crop = OmegaConf.select(cfg, "data.crop_size", default=None)
    channels = OmegaConf.select(cfg, "model.image_channels", default=3)
    if not isinstance(crop, int) or not isinstance(channels, int):
        return
    nets: dict[str, DictConfig] = {}
    for stage_name, stage in (cfg.get("stages") or {}).items():
        for key, node in (stage.get("module") or {}).items():
            if key.startswith(_NET_KEYS) and isinstance(node, DictConfig) and "_target_" in node:
                nets.setdefault(f"stages.{stage_name}.module.{key}", node)
    for key, node in nets.items():
        try:
            _forward_on_meta(node, channels, crop)
        except NotImplementedError:
            continue  # an op without a meta kernel: no verdict, the run will tell
        except Exception as err:
            reason = " ".join(str(err).split(";")[0].split())[:160]
            sizes = range(8, _LARGEST_CROP + 1, 8)
            fits = next((s for s in sizes if all(_fits(n, channels, s) for n in nets.values())), 0)
            hint = f"; the smallest crop all nets take is data.crop_size={fits}" if fits else ""
            raise ConfigError(
                f"data.crop_size={crop}: {key} ({node._target_}) cannot train on it ({reason})"
                f"{hint}"
            ) from None


def _fits(node: DictConfig, channels: int, size: int) -> bool:
    try:
        _forward_on_meta(node, channels, size)
    except Exception:
        return False
    return True


def _check_clip_precision(cfg: DictConfig, overrides: Sequence[str] | None) -> None:
    """Refuse gradient clipping under float16 AMP: manual optimisation clips before the step
    unscales, so the norm would be measured on loss-scaled gradients (clipped far too hard)."""
    for name in cfg.get("stages") or {}:
        precision = str(stage_settings(cfg, name, "trainer", overrides).get("precision"))
        clip = stage_settings(cfg, name, "optim", overrides).get("gradient_clip_val")
        if clip and precision in ("16-mixed", "16"):
            raise ConfigError(
                f"optim.gradient_clip_val={clip} with trainer.precision={precision} (stage "
                f"{name}): clipping would see loss-scaled gradients; use bf16-mixed or 32-true, "
                "or gradient_clip_val=null"
            )


def validate_config(cfg: DictConfig, overrides: Sequence[str] | None = None) -> None:
    """Check the numbers of a composed training config before anything is built.

    Batch and crop sizes, learning rates and optimiser constants, ratios, kernel sizes, stage
    lengths, channels, gradient clipping against float16 AMP, and the crop against every net
    (stride, discriminator depth).

    Args:
        cfg: The composed config.
        overrides: The typed overrides (see :func:`stage_settings`); None reads them from the
            running Hydra job.

    Raises:
        ConfigError: One line naming the key, the value and the allowed range.
    """
    _check(cfg, "data.batch_size", low=1, integer=True)
    _check(cfg, "data.val_batch_size", low=1, integer=True)
    _check(cfg, "data.crop_size", low=1, integer=True)
    _check(cfg, "data.val_crop_size", low=1, integer=True, optional=True)
    _check(cfg, "data.resize", low=1, integer=True, optional=True)
    _check(cfg, "data.num_workers", low=0, integer=True)
    _check(cfg, "data.val_fraction", low=0, high=1, low_open=True, high_open=True)
    _check(cfg, "data.timeout", low=0, low_open=True)
    for blur in ("synthetic_blur", "val_blur"):
        _check_kernel_size(cfg, f"data.{blur}.kernel_size")
    _check(cfg, "checkpoint_every_n_batches", low=0, integer=True, optional=True)
    channels = OmegaConf.select(cfg, "model.image_channels", default=None)
    _check(cfg, "model.image_channels", low=1, high=3, integer=True)
    data_channels = OmegaConf.select(cfg, "data.channels", default=None)
    if data_channels not in (None, 1, 3):
        raise ConfigError(f"data.channels={data_channels!r}: must be 1 (gray) or 3 (RGB)")
    if data_channels is not None and channels is not None and data_channels != channels:
        raise ConfigError(
            f"data.channels={data_channels} but model.image_channels={channels}: the nets must "
            f"see what the data gives; set model.image_channels={data_channels} (data.channels "
            "follows it)"
        )
    optims = {"optim": cfg.get("optim")}
    for name, stage in (cfg.get("stages") or {}).items():
        if stage.get("optim"):
            optims[f"stages.{name}.optim"] = stage.optim
        for key in stage.get("module") or {}:
            if "ratio" in str(key):
                _check(cfg, f"stages.{name}.module.{key}", low=0, high=1)
        _check(cfg, f"stages.{name}.trainer.max_epochs", low=1, integer=True)
    for prefix, optim in optims.items():
        if not isinstance(optim, DictConfig):
            continue
        for kind in ("generator", "discriminator"):
            _check(cfg, f"{prefix}.{kind}.lr", low=0, low_open=True)
            _check(cfg, f"{prefix}.{kind}.weight_decay", low=0)
            betas = OmegaConf.select(cfg, f"{prefix}.{kind}.betas", default=None)
            if betas is not None:
                for i in range(len(betas)):
                    _check(cfg, f"{prefix}.{kind}.betas[{i}]", low=0, high=1, high_open=True)
        _check(cfg, f"{prefix}.ema_decay", low=0, high=1, high_open=True, optional=True)
        _check(cfg, f"{prefix}.gradient_clip_val", low=0, low_open=True, optional=True)
        _check(cfg, f"{prefix}.d_warmup_steps", low=0, integer=True, optional=True)
    _check(cfg, "trainer.max_epochs", low=1, integer=True)
    _check_clip_precision(cfg, overrides)
    _check_crop(cfg)
