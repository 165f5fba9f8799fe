"""Low-frequency content loss: ties an image to a reference without forbidding blur."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LowPassL1Loss(nn.Module):
    """L1 distance between area-downsampled images.

    BGAN must keep the sharp input's content and colours while adding blur; a plain L1 to the
    sharp image would pull it back to the identity, whereas comparing ``factor``-times
    downsampled copies only constrains the frequencies that blur leaves (mostly) untouched.

    Args:
        factor: Downsampling factor (area average over ``factor x factor`` blocks).

    Shape:
        - pred, target: (B, C, H, W), H and W multiples of ``factor``.
        - output: scalar.
    """

    def __init__(self, factor: int = 4) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError(f"LowPassL1Loss factor must be >= 1, got {factor}")
        self.factor = factor

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.factor > 1:
            pred = F.avg_pool2d(pred, self.factor)
            target = F.avg_pool2d(target, self.factor)
        return F.l1_loss(pred, target)
