"""Noise injection: append a Gaussian noise map to a generator's input (the BGAN's source of
variety, so one sharp image can map to many plausible blurs)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class NoiseInjection(nn.Module):
    """Wrap a net so that its input gets ``channels`` channels of N(0, scale²) noise appended.

    The wrapped net must accept ``C + channels`` input channels (e.g.
    ``UNet(in_channels=4)`` for RGB with one noise channel). Fresh noise is drawn on every call,
    in train and eval mode alike, so sampling several blurs of one image is just calling the net
    several times; seed the global RNG for a repeatable sample.

    Args:
        net: the generator to wrap.
        channels: noise channels to append; 0 turns injection off.
        scale: standard deviation of the noise.

    Shape:
        - Input: :math:`(B, C, H, W)` in [0, 1]
        - Output: whatever ``net`` returns for :math:`(B, C + channels, H, W)`

    Example:
        >>> g = NoiseInjection(UNet(in_channels=4, width=8, depth=2), channels=1)
        >>> g(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, net: nn.Module, channels: int = 1, scale: float = 1.0) -> None:
        super().__init__()
        if channels < 0:
            raise ValueError(f"channels must be >= 0, got {channels}")
        self.net = net
        self.channels = channels
        self.scale = scale
        self.stride: int = getattr(net, "stride", 1)

    def forward(self, x: Tensor) -> Tensor:
        """Append noise and run the wrapped net.

        Args:
            x: input batch.

        Returns:
            The wrapped net's output.

        Shape:
            - x: :math:`(B, C, H, W)`
        """
        if self.channels == 0:
            return self.net(x)
        b, _, h, w = x.shape
        noise = torch.randn(b, self.channels, h, w, device=x.device, dtype=x.dtype) * self.scale
        return self.net(torch.cat([x, noise], dim=1))
