"""Training callbacks: mid-epoch checkpoints for resuming after a crash."""

from __future__ import annotations

from pathlib import Path

import lightning as L


class PeriodicCheckpoint(L.Callback):
    """Write ``last.ckpt`` every ``every_n_batches`` training batches.

    Lightning's ``global_step`` counts optimiser steps (two to four per GAN batch, fewer during
    the D warm-up), so intervals are counted in batches instead. The write is Lightning's
    atomic save (a complete file is renamed over the old one), so a crash mid-write leaves the
    previous checkpoint intact.

    Args:
        dirpath: Folder of the stage's checkpoints.
        every_n_batches: Interval; 0 or None disables it.
    """

    def __init__(self, dirpath: str | Path, every_n_batches: int | None) -> None:
        self.path = Path(dirpath) / "last.ckpt"
        self.every = int(every_n_batches or 0)
        self._batches = 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_) -> None:
        self._batches += 1
        if self.every and self._batches % self.every == 0 and not trainer.sanity_checking:
            trainer.save_checkpoint(self.path, weights_only=False)
