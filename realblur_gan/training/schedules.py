"""Per-epoch learning-rate schedules for the GAN optimisers (stepped by hand at epoch end)."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class _Factor:
    """Picklable multiplicative LR factor of the epoch (LambdaLR needs a callable)."""

    def __init__(self, total_epochs: int, decay_start: float, kind: str, floor: float) -> None:
        self.total = max(1, int(total_epochs))
        self.start = round(decay_start * self.total)
        self.kind = kind
        self.floor = floor

    def __call__(self, epoch: int) -> float:
        if epoch < self.start:
            return 1.0
        progress = min(1.0, (epoch - self.start) / max(1, self.total - self.start))
        if self.kind == "linear":
            shape = 1.0 - progress
        else:
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.floor + (1.0 - self.floor) * shape


def linear_decay(
    optimizer: Optimizer, total_epochs: int, decay_start: float = 0.5, floor: float = 0.0
) -> LambdaLR:
    """pix2pix's schedule: constant LR, then linear decay to ``floor`` over the stage.

    Args:
        optimizer: The optimiser to schedule.
        total_epochs: The stage length (the Trainer's ``max_epochs``, filled in by the module).
        decay_start: Fraction of the stage after which decay starts.
        floor: Final LR as a fraction of the initial LR.
    """
    return LambdaLR(optimizer, _Factor(total_epochs, decay_start, "linear", floor))


def cosine(
    optimizer: Optimizer, total_epochs: int, decay_start: float = 0.0, floor: float = 0.0
) -> LambdaLR:
    """Cosine decay from the initial LR to ``floor`` (after an optional constant phase)."""
    return LambdaLR(optimizer, _Factor(total_epochs, decay_start, "cosine", floor))


class _WarmupCosine:
    """Picklable per-step factor: linear warm-up from ``start``, then cosine to ``floor``.

    ``total`` may be set after construction (a LightningModule knows its stage length only once
    the Trainer has set up the data); it is part of the scheduler's state dict.
    """

    def __init__(
        self, total_steps: int | None, warmup_steps: int, start: float, floor: float
    ) -> None:
        self.total = total_steps
        self.warmup_steps = max(0, int(warmup_steps))
        self.start = start
        self.floor = floor

    def __call__(self, step: int) -> float:
        total = max(1, int(self.total or 1))
        warmup = min(self.warmup_steps, total - 1)
        if step < warmup:
            return self.start + (1.0 - self.start) * step / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(
    optimizer: Optimizer,
    total_steps: int | None,
    warmup_steps: int = 100,
    start: float = 0.01,
    floor: float = 0.01,
) -> LambdaLR:
    """Per-batch schedule of restoration nets (NAFNet, Restormer): warm-up, then cosine decay.

    Stepped after every training batch (the module sees the ``total_steps`` argument and fills
    it with the stage's batch count), unlike the per-epoch schedules above.

    Args:
        optimizer: The optimiser to schedule.
        total_steps: Training batches in the stage (None: set later through
            :func:`set_total_steps`, as the LightningModule does once the Trainer knows it).
        warmup_steps: Batches of linear warm-up from ``start`` x LR (Adam's first steps on a
            fresh net are its largest; a short ramp avoids a bad early jump).
        start: LR factor at step 0.
        floor: Final LR as a fraction of the initial LR.
    """
    return LambdaLR(optimizer, _WarmupCosine(total_steps, warmup_steps, start, floor))


def set_total_steps(scheduler: LambdaLR, total_steps: int) -> bool:
    """Tell a per-batch schedule its length; False if ``scheduler`` has none to set."""
    factors = [f for f in getattr(scheduler, "lr_lambdas", []) if isinstance(f, _WarmupCosine)]
    for factor in factors:
        factor.total = int(total_steps)
    if factors:
        # LambdaLR set the current LR when it was built, from a schedule without its length.
        for group, base, factor in zip(
            scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True
        ):
            group["lr"] = base * factor(scheduler.last_epoch)
    return bool(factors)
