"""Time one case: real training steps of a stage through a Lightning ``Trainer``, then profile.

One ``Trainer.fit`` runs, in order: one step whose FLOPs are counted (:class:`FlopCount`),
``warmup`` dropped steps, ``repeats`` timed steps (no profiler: its per-operator cost would
inflate them), ``profile_steps`` steps and ``val_batches`` validation batches under
``torch.profiler`` (:mod:`bench.ranges`). A float32 matmul timed before and after the fit is the
floor the step's FLOP rate is compared with (:mod:`bench.floor`).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.flop_counter import FlopCounterMode

from realblur_gan.errors import UserError

from .batches import loader, random_batches
from .floor import matmul_gflops
from .machine import contention, peak_memory_gb, reset_peak_memory, synchronize
from .ranges import ProfileWindow, summarise
from .stages import Case, build_module, case_config, stage_trainer, variant

LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")


@dataclass(frozen=True)
class Budget:
    """How many batches a case runs, and where."""

    repeats: int
    warmup: int
    profile_steps: int
    val_batches: int
    device: torch.device
    overrides: Sequence[str] = ()


class StepTimer(L.Callback):
    """Wall time of each training batch, and of Lightning's loop between batches.

    ``step_s[i]``: ``on_train_batch_start`` to ``on_train_batch_end`` of batch ``i`` (the
    ``training_step`` with its backward passes and optimiser steps; the batch is on the device
    already). ``gap_s[i]``: from the end of batch ``i`` to the start of the next (fetching and
    moving the next batch, loop bookkeeping).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.step_s: list[float] = []
        self.gap_s: list[float] = []
        self._start = 0.0
        self._end: float | None = None

    def on_train_batch_start(self, *args: Any) -> None:
        synchronize(self.device)
        self._start = time.perf_counter()
        if self._end is not None:
            self.gap_s.append(self._start - self._end)

    def on_train_batch_end(self, *args: Any) -> None:
        synchronize(self.device)
        self._end = time.perf_counter()
        self.step_s.append(self._end - self._start)


class FlopCount(L.Callback):
    """FLOPs of one training batch (forward, backward and optimiser steps of every net).

    Args:
        at: Index of the batch to count; counting slows it, so it is one not timed.
    """

    def __init__(self, at: int = 0) -> None:
        self.at = at
        self.gflop = float("nan")
        self._mode: FlopCounterMode | None = None

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx == self.at:
            self._mode = FlopCounterMode(display=False)
            self._mode.__enter__()

    def on_train_batch_end(self, trainer: Any, module: Any, *args: Any) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self.gflop = self._mode.get_total_flops() / 1e9
            self._mode = None

    def on_exception(self, *args: Any) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self._mode = None


def stats_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median, min and max in milliseconds, and how many values (``n``)."""
    if not seconds:
        return {"ms": float("nan"), "ms_min": float("nan"), "ms_max": float("nan"), "n": 0}
    ms = [1000.0 * s for s in seconds]
    return {"ms": statistics.median(ms), "ms_min": min(ms), "ms_max": max(ms), "n": len(ms)}


@dataclass
class Notes:
    """Warnings the library logged while the cases were built (each said once at the end,
    not once per case), e.g. a perceptual term dropped for want of VGG19 weights."""

    messages: list[str] = field(default_factory=list)

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Collect ``realblur_gan`` warnings and silence Lightning's per-fit lines and warnings
        about tiny loaders and frozen nets in eval mode."""
        notes = self

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.getMessage() not in notes.messages:
                    notes.messages.append(record.getMessage())

        library = logging.getLogger("realblur_gan")
        handler, propagate = Collect(logging.WARNING), library.propagate
        levels = {name: logging.getLogger(name).level for name in LIGHTNING_LOGGERS}
        library.addHandler(handler)
        library.propagate = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for name in LIGHTNING_LOGGERS:
                    logging.getLogger(name).setLevel(logging.ERROR)
                yield
        finally:
            library.removeHandler(handler)
            library.propagate = propagate
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def time_case(case: Case, budget: Budget, notes: Notes) -> dict[str, Any]:
    """Train ``case`` for its batches and return its result row (see the package docstring).

    A failure of the case itself (a compiler missing for ``perf.compile``, bf16 on a GPU
    without it) becomes the row's ``error``; a mistake in the user's overrides is raised.

    Raises:
        realblur_gan.errors.UserError: The config refuses the user's overrides.
    """
    row: dict[str, Any] = {
        "part": "train" if case.switch is None else "switches",
        "stage": case.stage,
        "scheme": case.scheme,
        "switch": None if case.switch is None else case.switch.name,
        "size": case.size,
        "batch": case.batch,
        "device": str(budget.device),
    }
    counted = 1  # the first step, whose FLOPs are counted
    timed = counted + budget.warmup + budget.repeats
    with tempfile.TemporaryDirectory() as tmp, notes.quiet():
        root = Path(tmp)
        cfg, typed = case_config(case, budget.overrides, root)
        row.update(variant(cfg, case.stage))
        row["overrides"] = typed
        try:
            module = build_module(cfg, case.stage)
            row["module"] = type(module).__name__
            row["target"] = str(cfg.stages[case.stage].module._target_)
            row["nets"] = sorted(getattr(module, "net_configs", {}))
            timer = StepTimer(budget.device)
            flops = FlopCount(at=0)
            window = ProfileWindow(first=timed, device=budget.device)
            trainer = stage_trainer(
                cfg,
                case.stage,
                budget.device,
                train_batches=timed + budget.profile_steps,
                val_batches=budget.val_batches,
                callbacks=[flops, timer, window],
                root=root,
            )
            channels = int(cfg.model.image_channels)
            train = random_batches(timed + budget.profile_steps, case.batch, case.size, channels)
            val = random_batches(
                budget.val_batches, case.batch, case.size, channels, validation=True, seed=1
            )
            row["mem_at_start_gb"] = reset_peak_memory(budget.device)
            floor = matmul_gflops(budget.device)
            with contention(row):
                trainer.fit(
                    module,
                    train_dataloaders=loader(train),
                    val_dataloaders=loader(val) if val else None,
                )
            floor = (floor + matmul_gflops(budget.device)) / 2
            first = counted + budget.warmup
            row.update(stats_ms(timer.step_s[first:timed]))
            row["warmup_ms"] = [round(1000 * s, 1) for s in timer.step_s[counted:first]]
            row["loop_ms"] = stats_ms(timer.gap_s[first:timed])["ms"]
            row["gflop_per_step"] = flops.gflop
            row["gflops"] = flops.gflop / (row["ms"] / 1000)
            row["matmul_gflops"] = floor
            row["floor_ratio"] = row["gflops"] / floor
            row["peak_mem_gb"] = peak_memory_gb(budget.device)
            row["images_per_s"] = 1000.0 * case.batch / row["ms"]
            row.update(summarise(window.events()))
        except UserError:
            raise
        except Exception as err:  # the case failed, not the benchmark: a row saying why
            row["error"] = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
        finally:
            gc.collect()
    return row
