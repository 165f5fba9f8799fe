"""A weighted mean of several generators' outputs: one deblurrer made of nets that err apart.

Two deblurrers trained differently (another architecture, another recipe) make different
mistakes on blur neither has seen: where one over-sharpens a texture the other may leave it,
and their errors partly cancel in the mean. Averaging outputs, unlike averaging weights
(:mod:`realblur_gan.weights.interpolation`), needs no shared architecture. The mean of nets
that each keep their input's channel means keeps them too.

The ensemble is an ordinary net: its config nests its members' configs, so an exported
``.safetensors`` rebuilds it from the file alone (``python -m realblur_gan.export
--average-with``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["OutputAverage"]


class OutputAverage(nn.Module):
    """``sum_i w_i * net_i(x)`` with weights that sum to one.

    Args:
        nets: the member generators; each maps (B, C, H, W) images in [0, 1] to the same shape.
        weights: one non-negative weight per net (normalised to sum 1); ``None`` for equal ones.

    Attributes:
        stride: the least common multiple of the members' size multiples, so that tiled
            inference pads for every member.
        traceable: whether every member can be traced to ONNX.

    Example:
        >>> import torch
        >>> from realblur_gan.nets.unet import UNet
        >>> pair = OutputAverage([UNet(3, 3, width=4, depth=2), UNet(3, 3, width=4, depth=2)])
        >>> pair(torch.rand(1, 3, 16, 16)).shape
        torch.Size([1, 3, 16, 16])
    """

    def __init__(self, nets: Sequence[nn.Module], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        nets = list(nets)
        if len(nets) < 2:
            raise ValueError(f"OutputAverage needs at least two nets, got {len(nets)}")
        if weights is None:
            weights = [1.0] * len(nets)
        weights = [float(w) for w in weights]
        if len(weights) != len(nets):
            raise ValueError(f"OutputAverage: {len(weights)} weights for {len(nets)} nets")
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"OutputAverage: weights must be >= 0 and not all 0, got {weights}")
        total = sum(weights)
        self.nets = nn.ModuleList(nets)
        self.weights = [w / total for w in weights]
        self.stride = math.lcm(*(int(getattr(net, "stride", 1)) for net in nets))
        self.traceable = all(getattr(net, "traceable", True) for net in nets)

    def forward(self, x: Tensor) -> Tensor:
        """Deblur ``x`` (B, C, H, W) with every member and return the weighted mean (B, C, H, W)."""
        out = None
        for weight, net in zip(self.weights, self.nets, strict=True):
            if weight == 0:
                continue
            term = weight * net(x)
            out = term if out is None else out + term
        return out
