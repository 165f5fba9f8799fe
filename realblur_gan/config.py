"""Hydra/OmegaConf glue: custom resolvers and the location of the config tree."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

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
