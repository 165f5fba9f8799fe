"""Where a training step's time goes: ``torch.profiler`` over the last batches of a fit.

The modules open ``torch.profiler.record_function`` ranges of their own (:data:`RANGES`). The
:class:`ProfileWindow` callback profiles the last training batches and the validation batches
after them, wrapping each batch in a range of its own, so :func:`summarise` can tell a training
step from a validation batch and give every range's time per step. A range the modules do not
open is listed as absent, never an error.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import ProfilerActivity, record_function

# The ranges the LightningModules open, in the order a step runs them.
RANGES = (
    "bgan/d_step",
    "bgan/g_loss",
    "dbgan/d_step",
    "dbgan/g_loss",
    "generator_step",
    "ema",
    "validation",
)
TRAIN_BATCH = "bench/train_batch"
VAL_BATCH = "bench/val_batch"
# A tensor read by the host: `.item()`, `float(t)`, `if t:` (a device sync when t is on a GPU).
SCALAR_READ = "aten::_local_scalar_dense"


class ProfileWindow(L.Callback):
    """Profile training batches from ``first`` on and the validation batches that follow.

    Args:
        first: Index of the first profiled training batch.
        device: Where the module runs; on a GPU the kernels are recorded too.
    """

    def __init__(self, first: int, device: torch.device) -> None:
        self.first = first
        activities = [ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(ProfilerActivity.CUDA)
        self.profiler = torch.profiler.profile(activities=activities)
        self.running = False
        self._batch: record_function | None = None

    def _open(self, name: str) -> None:
        if self.running:
            self._batch = record_function(name)
            self._batch.__enter__()

    def _close(self) -> None:
        if self._batch is not None:
            self._batch.__exit__(None, None, None)
            self._batch = None

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx == self.first and not self.running:
            self.profiler.start()
            self.running = True
        self._open(TRAIN_BATCH)

    def on_train_batch_end(self, *args: Any) -> None:
        self._close()

    def on_validation_batch_start(self, *args: Any) -> None:
        self._open(VAL_BATCH)

    def on_validation_batch_end(self, *args: Any) -> None:
        self._close()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop()

    def on_exception(self, *args: Any) -> None:
        # A failed case must not leave the profiler on: the next case could not start its own.
        self._close()
        self._stop()

    def _stop(self) -> None:
        if self.running:
            self.profiler.stop()
            self.running = False

    def events(self) -> list[FunctionEvent]:
        """The profiled host-side events (empty when no batch was profiled)."""
        if self.profiler.profiler is None:
            return []
        return [e for e in self.profiler.events() if e.device_type == torch.autograd.DeviceType.CPU]


def _ms(event: FunctionEvent) -> float:
    return event.time_range.elapsed_us() / 1000.0


def _enclosing(event: FunctionEvent) -> list[str]:
    """Names of the ranges and ops around ``event``, innermost first."""
    names, parent = [], event.cpu_parent
    while parent is not None:
        names.append(parent.name)
        parent = parent.cpu_parent
    return names


def summarise(events: Sequence[FunctionEvent], top: int = 5) -> dict[str, Any]:
    """Per-step times of the profiled window.

    Args:
        events: Host-side events of a :class:`ProfileWindow` (``ProfileWindow.events()``).
        top: How many of the costliest operators to list.

    Returns:
        ``profiled_steps``, ``profiled_step_ms``, ``ranges_ms`` (inclusive ms per training step
        of each :data:`RANGES` name found there), ``outside_ranges_ms`` (the step minus its
        outermost ranges), ``val_batches``, ``val_batch_ms``, ``val_ranges_ms`` (ms per
        validation batch), ``ranges_absent``, ``scalar_reads_per_step``, ``top_ops_ms`` (self
        CPU ms per step) and, when kernels were recorded, ``ranges_device_ms``.
    """
    batches: dict[str, list[FunctionEvent]] = {TRAIN_BATCH: [], VAL_BATCH: []}
    found: dict[str, list[FunctionEvent]] = {TRAIN_BATCH: [], VAL_BATCH: []}
    outermost_ms, scalar_reads, self_ms = 0.0, 0, Counter()
    for event in events:
        if event.name in batches:
            batches[event.name].append(event)
            continue
        around = _enclosing(event)
        batch = next((name for name in around if name in batches), None)
        if batch is None:
            continue
        if event.name in RANGES:
            found[batch].append(event)
            if batch == TRAIN_BATCH and not any(name in RANGES for name in around):
                outermost_ms += _ms(event)
        elif batch == TRAIN_BATCH:
            scalar_reads += event.name == SCALAR_READ
            self_ms[event.name] += event.self_cpu_time_total / 1000.0

    steps, val = len(batches[TRAIN_BATCH]), len(batches[VAL_BATCH])
    seen = {event.name for group in found.values() for event in group}
    step_ms = sum(map(_ms, batches[TRAIN_BATCH])) / steps if steps else float("nan")
    result: dict[str, Any] = {
        "profiled_steps": steps,
        "profiled_step_ms": step_ms,
        "ranges_ms": _per_batch(found[TRAIN_BATCH], steps),
        "outside_ranges_ms": step_ms - outermost_ms / steps if steps else float("nan"),
        "val_batches": val,
        "val_batch_ms": sum(map(_ms, batches[VAL_BATCH])) / val if val else float("nan"),
        "val_ranges_ms": _per_batch(found[VAL_BATCH], val),
        "ranges_absent": [name for name in RANGES if name not in seen],
        "scalar_reads_per_step": scalar_reads / steps if steps else float("nan"),
        "top_ops_ms": {k: v / steps for k, v in self_ms.most_common(top)},
    }
    device = _device_ms(found[TRAIN_BATCH], events, steps)
    if device:
        result["ranges_device_ms"] = device
    return result


def _per_batch(found: list[FunctionEvent], batches: int) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for event in found:
        total[event.name] += _ms(event) / batches
    return {name: total[name] for name in RANGES if name in total}


def _device_ms(
    found: list[FunctionEvent], events: Sequence[FunctionEvent], steps: int
) -> dict[str, float]:
    """GPU kernel ms per step launched while each range was open.

    By launch time rather than by parent: backward kernels are launched from autograd's device
    thread, outside the range's own thread, while the range waits for them.
    """
    launches = [
        (e.time_range.start, sum(k.duration for k in e.kernels) / 1000.0)
        for e in events
        if getattr(e, "kernels", None)
    ]
    if not launches or not steps:
        return {}
    total: dict[str, float] = defaultdict(float)
    for event in found:
        start, end = event.time_range.start, event.time_range.end
        total[event.name] += sum(ms for at, ms in launches if start <= at <= end) / steps
    return {name: total[name] for name in RANGES if name in total}
