"""The floor every speed is measured against: a plain float32 matmul on the same device, now.

On a CPU shared with other jobs every timing moves with the load; a 2048² matmul timed right
before and right after a measurement moves with it, so ``(FLOPs / time) / matmul FLOP rate``
says how close the measured code comes to what the machine can do at that moment. FLOPs are
counted by ``torch.utils.flop_counter`` (a multiply-add is 2 FLOPs; convolutions, matmuls and
their backward passes, not element-wise operations).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch.utils.flop_counter import FlopCounterMode

MATMUL_N = 2048


def matmul_gflops(device: torch.device | str = "cpu", n: int = MATMUL_N) -> float:
    """FLOP rate of one ``n``² float32 matmul on ``device`` (after an untimed one), GFLOP/s."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    sync: Callable[[], None] = torch.cuda.synchronize if a.is_cuda else (lambda: None)
    a @ b
    sync()
    start = time.perf_counter()
    a @ b
    sync()
    return 2 * n**3 / (time.perf_counter() - start) / 1e9


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
