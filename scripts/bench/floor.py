"""The floor every speed is measured against: a plain float32 matmul on the same device, now.

On a CPU shared with other jobs every timing moves with the load; a 2048² matmul timed right
before and right after a measurement moves with it, so ``(FLOPs / time) / matmul FLOP rate``
says how close the measured code comes to what the machine can do at that moment. FLOPs are
counted by ``torch.utils.flop_counter`` (a multiply-add is 2 FLOPs; convolutions, matmuls and
their backward passes, not element-wise operations): ``steps.FlopCount`` for a training step.
This module imports no more than torch, so that a memory measurement next to it stays honest.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

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
