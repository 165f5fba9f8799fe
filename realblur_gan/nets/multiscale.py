"""DeepDeblur-style coarse-to-fine generator (Nah et al., CVPR 2017).

Its multi-scale loss is ``realblur_gan.training.losses.PyramidLoss``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from realblur_gan.errors import ArgumentError
from realblur_gan.nets.init import build_inner, check_multiple
from realblur_gan.nets.resnet import ResNetGenerator


class MultiScaleGenerator(nn.Module):
    """Coarse-to-fine generator: one sub-network per scale, coarsest first.

    The input is average-pooled to scales ``1/2**(n-1), ..., 1/2, 1``. The coarsest
    sub-network sees its own input only; every finer one sees its own input concatenated with the
    bilinearly upsampled output of the scale below, and refines it. Each sub-network adds its
    global residual to its own input image (the first ``out_channels`` channels), so extra input
    channels such as a noise map stay last and are pooled like the image.

    Sub-networks are built by calling ``scale_net(in_channels=..., out_channels=...)``; in a
    Hydra config pass a ``_partial_: true`` node, e.g. a :class:`ResNetGenerator` or a
    :class:`~realblur_gan.nets.unet.UNet` with its other arguments filled in.

    With ``share_weights`` one network serves every scale (scale-recurrent, as SRN-DeblurNet):
    each scale's network sees its own input and the upsampled estimate of the scale below (at
    the coarsest scale, its own input twice), so the input count is the same at every scale.
    Every training crop then teaches the same weights blur at three sizes (a 60 px blur is
    15 px at the coarsest scale), and the parameters do not grow with scales. A residual net's
    global residual adds its own scale's input, so an untrained net starts as the identity;
    an upsampled estimate as the residual's base would start it as a 4x-blurred image.

    Args:
        in_channels: input channels (image first, then any extra maps such as noise).
        out_channels: output image channels.
        num_scales: number of scales (DeepDeblur: 3, i.e. 1/4, 1/2, 1).
        scale_net: factory for one scale's network; default a 64-wide, 6-block
            :class:`ResNetGenerator` per scale.
        share_weights: one network for every scale (see above).

    Shape:
        - Input: :math:`(B, C_{in}, H, W)` in [0, 1], H, W multiples of ``stride``
        - Output: :math:`(B, C_{out}, H, W)`

    Example:
        >>> sub = functools.partial(ResNetGenerator, width=8, n_blocks=1)
        >>> g = MultiScaleGenerator(scale_net=sub)
        >>> [o.shape[-1] for o in g.forward_pyramid(torch.rand(1, 3, 32, 32))]
        [8, 16, 32]
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_scales: int = 3,
        scale_net: Callable[..., nn.Module] | None = None,
        share_weights: bool = False,
    ) -> None:
        super().__init__()
        if num_scales < 1:
            raise ArgumentError("num_scales", num_scales, "must be >= 1")
        if scale_net is None:
            scale_net = functools.partial(ResNetGenerator, width=64, n_blocks=6)
        self.num_scales = num_scales
        self.share_weights = share_weights
        self.nets = nn.ModuleList(
            build_inner(
                scale_net,
                "scale_net",
                in_channels=in_channels
                if i == 0 and not share_weights
                else in_channels + out_channels,
                out_channels=out_channels,
            )
            for i in range(1 if share_weights else num_scales)
        )
        inner = max(getattr(net, "stride", 1) for net in self.nets)
        self.stride = 2 ** (num_scales - 1) * inner
        self.out_channels = out_channels
        # What the generator takes (its shared inner net takes twice as much).
        self.image_channels = in_channels

    def forward_pyramid(self, x: Tensor) -> list[Tensor]:
        """Run every scale and return all outputs, coarsest first.

        Args:
            x: input batch in [0, 1].

        Returns:
            One output per scale, ``num_scales`` tensors from coarse to fine.

        Shape:
            - x: :math:`(B, C_{in}, H, W)`
            - output: list of :math:`(B, C_{out}, H / 2^{n-1-s}, W / 2^{n-1-s})`
        """
        check_multiple(x, self.stride, type(self).__name__)
        n = self.num_scales
        outputs: list[Tensor] = []
        for s in range(n):
            factor = 2 ** (n - 1 - s)
            x_s = F.avg_pool2d(x, factor) if factor > 1 else x
            coarse = None
            if outputs:
                coarse = F.interpolate(
                    outputs[-1], size=x_s.shape[-2:], mode="bilinear", align_corners=False
                )
            if self.share_weights:
                estimate = x_s[:, : self.out_channels] if coarse is None else coarse
                outputs.append(self.nets[0](torch.cat([x_s, estimate], dim=1)))
            else:
                inp = x_s if coarse is None else torch.cat([x_s, coarse], dim=1)
                outputs.append(self.nets[s](inp))
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        """Run every scale and return the full-resolution output.

        Args:
            x: input batch in [0, 1].

        Returns:
            The finest scale's output.

        Shape:
            - x: :math:`(B, C_{in}, H, W)`
            - output: :math:`(B, C_{out}, H, W)`
        """
        return self.forward_pyramid(x)[-1]
