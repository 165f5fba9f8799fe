"""Noise injection: append a Gaussian noise map to a generator's input (the BGAN's source of
variety, so one sharp image can map to many plausible blurs)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from realblur_gan.errors import ArgumentError
from realblur_gan.nets.init import build_inner


class NoiseInjection(nn.Module):
    """Wrap a net so that its input gets ``channels`` channels of N(0, scale²) noise appended.

    The inner net is best given as a factory (in a config, a ``_partial_: true`` node) together
    with ``image_channels``: the wrapper then builds it as
    ``net(in_channels=image_channels + channels, out_channels=image_channels)``, so a config
    states the image and noise channels once each and never their sum. A net that is already
    built is wrapped as it is and must take ``C + channels`` input channels; checkpoints written
    before the factory form store their nets that way and still load.

    Fresh noise is drawn on every call, in train and eval mode alike, so sampling several blurs
    of one image is just calling the net several times; seed the global RNG for a repeatable
    sample.

    Args:
        net: Factory of the generator to wrap (called with ``in_channels`` and
            ``out_channels``), or the generator itself.
        channels: Noise channels to append; 0 turns injection off.
        scale: Standard deviation of the noise.
        image_channels: Channels of the images the wrapper maps; required with a factory.

    Shape:
        - Input: :math:`(B, C, H, W)` in [0, 1]
        - Output: whatever ``net`` returns for :math:`(B, C + channels, H, W)`

    Example:
        >>> import functools
        >>> from realblur_gan.nets import UNet
        >>> g = NoiseInjection(functools.partial(UNet, width=8, depth=2), image_channels=3)
        >>> g(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        net: nn.Module | Callable[..., nn.Module],
        channels: int = 1,
        scale: float = 1.0,
        image_channels: int | None = None,
    ) -> None:
        super().__init__()
        if channels < 0:
            raise ArgumentError("channels", channels, "must be >= 0")
        if not isinstance(net, nn.Module):
            if image_channels is None or image_channels < 1:
                raise ArgumentError(
                    "image_channels", image_channels, "must be >= 1 when net is a factory"
                )
            net = build_inner(
                net, "net", in_channels=image_channels + channels, out_channels=image_channels
            )
        self.net = net
        self.channels = channels
        self.scale = scale
        # What predict.net_channels reads; None for a wrapped net built elsewhere (unknown here).
        self.image_channels = image_channels
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
