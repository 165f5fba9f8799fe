"""Image panels (sharp | fake blur | real blur | restored) for W&B and for the run folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import make_grid, save_image

log = logging.getLogger(__name__)


def make_panel(columns: dict[str, torch.Tensor], max_rows: int = 4) -> torch.Tensor:
    """Tile images as rows of examples and named columns.

    Args:
        columns: Column name -> (B, C, H, W) images in [0, 1]; gray columns are shown as RGB.
        max_rows: How many examples (rows) to show.

    Returns:
        (3, H', W') grid in [0, 1].
    """
    tensors = [c[:max_rows].detach().float().clamp(0, 1).cpu() for c in columns.values()]
    tensors = [t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t for t in tensors]
    rows = torch.stack(tensors, dim=1).flatten(0, 1)  # row-major: example, then column
    return make_grid(rows, nrow=len(tensors), padding=2, pad_value=1.0)


def batch_step(trainer: Any) -> int:
    """The step Lightning stamps logged scalars with: training batches so far.

    ``trainer.global_step`` counts optimizer steps (two to four per GAN batch); panels use the
    scalars' counter so a panel and the losses of its batch line up on one axis. Lightning
    keeps that counter in its fit loop (``_batches_that_stepped``, also what it resumes).
    """
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    return int(getattr(loop, "_batches_that_stepped", trainer.global_step))


def log_panel(module: Any, key: str, columns: dict[str, torch.Tensor]) -> None:
    """Send a panel to every logger that takes images and save it as PNG in the run folder.

    Args:
        module: The LightningModule (for its trainer, loggers and step).
        key: Panel name, e.g. ``"val/panel"``.
        columns: Column name -> (B, C, H, W) images.
    """
    trainer = module.trainer
    grid = make_panel(columns)
    caption = " | ".join(columns)
    step = batch_step(trainer)
    for logger in trainer.loggers:
        if hasattr(logger, "log_image"):
            logger.log_image(key=key, images=[grid], caption=[caption], step=step)
    out_dir = getattr(module, "panel_dir", None)
    if out_dir is not None and trainer.is_global_zero:
        path = Path(out_dir) / f"{key.replace('/', '_')}_step{step:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(grid, path)
