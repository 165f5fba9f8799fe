"""Training callbacks: mid-epoch checkpoints and RNG streams for resuming, and a stop on
non-finite values."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from realblur_gan.errors import UserError
from realblur_gan.weights.checkpoints import non_finite_tensors

_LISTED = 3


class NonFiniteError(UserError):
    """Training produced a NaN/Inf loss or weight; the last finite checkpoint is kept."""


class PeriodicCheckpoint(L.Callback):
    """Write ``last.ckpt`` every ``every_n_batches`` training batches.

    Lightning's ``global_step`` counts optimiser steps (two to four per GAN batch, fewer during
    the D warm-up), so intervals are counted in batches instead. The file is the same
    ``last.ckpt`` that the stage's ``ModelCheckpoint`` writes at epoch ends, so it is always the
    newest save; the write is atomic (see
    :class:`~realblur_gan.weights.checkpoints.AtomicCheckpointIO`).

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
        # Not after an epoch's last batch: the epoch-end save follows its validation, and
        # Lightning resumes a checkpoint taken there by skipping that validation (and the RNG
        # draws in it), so the resumed run would part from an uninterrupted one.
        if trainer.is_last_batch or trainer.sanity_checking:
            return
        if self.every and self._batches % self.every == 0:
            trainer.save_checkpoint(self.path, weights_only=False)


class RNGState(L.Callback):
    """Save the global RNG streams in every resumable checkpoint and restore them on resume.

    The nets draw from them (BGAN's noise maps, the synthetic mix of DBGAN's inputs), so a
    resumed run continues exactly where an uninterrupted one would. They go under the
    checkpoint's ``rng_states`` key, where older checkpoints (written by the LightningModule
    itself) keep them too, and everything in them is a tensor or a builtin type: checkpoints are
    read with ``weights_only=True``. Lightning calls these hooks for full checkpoints only
    (``weights_only=False``), which is what every save of a run writes.
    """

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": _numpy_state_to_plain(np.random.get_state()),
            "python": _python_state_to_plain(random.getstate()),
        }

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        states = checkpoint.get("rng_states")
        if not states:
            return
        torch.set_rng_state(states["torch"])
        if states["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])
        np.random.set_state(_numpy_state_from_plain(states["numpy"]))
        random.setstate(_python_state_from_plain(states["python"]))


def _numpy_state_to_plain(state: tuple) -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = state
    return {
        "name": name,
        "keys": torch.from_numpy(keys.astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached": float(cached),
    }


def _numpy_state_from_plain(d: dict[str, Any]) -> tuple:
    keys = d["keys"].numpy().astype(np.uint32)
    return (d["name"], keys, d["pos"], d["has_gauss"], d["cached"])


def _python_state_to_plain(state: tuple) -> list[Any]:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _python_state_from_plain(state: list[Any]) -> tuple:
    return (state[0], tuple(state[1]), state[2])


def _net_of(key: str) -> str:
    """The net a logged training value belongs to: ``train/bgan/loss_d`` -> ``bgan_d``."""
    parts = key.split("/")
    if len(parts) < 3:
        return "?"
    gan, name = parts[1], parts[-1]
    return f"{gan}_d" if name in ("loss_d", "d_real", "d_fake") else f"{gan}_g"


class FiniteGuard(L.Callback):
    """Stop training at the first non-finite training loss or weight, with one line naming the
    stage, the step and the net.

    It runs before any checkpoint callback of the batch (it must come first in the Trainer's
    callbacks; Lightning runs every ``ModelCheckpoint`` last), so the checkpoint on disk is the
    last finite one. As a second line of defence, :meth:`on_save_checkpoint` refuses to write
    non-finite weights whoever asks for the save.

    Args:
        stage: Stage name, for the message.
        last: The stage's ``last.ckpt``, named in the message when it exists.
    """

    def __init__(self, stage: str, last: str | Path | None = None) -> None:
        self.stage = stage
        self.last = None if last is None else Path(last)

    def _tensors(self, pl_module: L.LightningModule) -> Iterator[tuple[str, torch.Tensor]]:
        yield from pl_module.named_parameters()
        for name, buffer in pl_module.named_buffers():
            if buffer.is_floating_point():
                yield name, buffer

    def _where(self, trainer: L.Trainer, batch_idx: int | None = None) -> str:
        batch = "" if batch_idx is None else f", batch {batch_idx}"
        return (
            f"stage {self.stage}, step {trainer.global_step} (epoch {trainer.current_epoch}{batch})"
        )

    def _stop(self, what: str) -> NonFiniteError:
        if self.last is not None and self.last.exists():
            kept = f"the last finite checkpoint {self.last} is kept"
        else:
            kept = "no checkpoint was written yet"
        return NonFiniteError(
            f"{what}; training stopped and {kept}. Lower the learning rate "
            "(optim.generator.lr, optim.discriminator.lr) or set optim.gradient_clip_val=1.0"
        )

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        losses = {
            k: v
            for k, v in trainer.callback_metrics.items()
            if k.startswith("train/") and isinstance(v, torch.Tensor)
        }
        named = list(self._tensors(pl_module))
        # One flag per tensor and a single host sync per batch, not one per tensor.
        flags = [torch.isfinite(v.detach()).all().cpu() for v in losses.values()]
        flags += [torch.isfinite(t.detach()).all() for _, t in named]
        device = named[0][1].device if named else torch.device("cpu")
        if not flags or bool(torch.stack([f.to(device) for f in flags]).all()):
            return
        bad_losses = [k for k, v in losses.items() if not bool(torch.isfinite(v).all())]
        bad = [name for name, t in named if not bool(torch.isfinite(t).all())]
        parts = []
        if bad_losses:
            key = bad_losses[0]
            value = float(losses[key].float().mean())
            parts.append(f"non-finite loss {key} = {value} (net {_net_of(key)})")
        if bad:
            nets = ", ".join(sorted({name.split(".")[0] for name in bad}))
            parts.append(f"non-finite weights in net {nets} ({len(bad)} tensors, e.g. {bad[0]})")
        raise self._stop(f"{self._where(trainer, batch_idx)}: {'; '.join(parts)}")

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        bad = non_finite_tensors(checkpoint.get("state_dict", {}))
        if bad:
            nets = sorted({name.split(".")[0] for name in bad})
            raise self._stop(
                f"{self._where(trainer)}: refusing to save a checkpoint with non-finite weights "
                f"in net {', '.join(nets)} ({', '.join(bad[:_LISTED])})"
            )
