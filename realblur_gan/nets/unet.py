"""U-Net generator (pix2pix-style encoder/decoder with skips) with a global residual."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from realblur_gan.errors import ArgumentError
from realblur_gan.nets.init import (
    ResidualGenerator,
    check_multiple,
    check_residual_channels,
    generator_init,
    make_norm,
    residual_output,
)


def _conv_block(c_in: int, c_out: int, norm: str, act: nn.Module) -> nn.Sequential:
    # Conv bias is redundant in front of a norm layer that subtracts the mean.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=norm == "none"), make_norm(norm, c_out), act
    )


class _Down(nn.Module):
    """Halve the resolution with a strided 4x4 conv (as pix2pix), then refine with a 3x3 conv."""

    def __init__(self, c_in: int, c_out: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=norm == "none"),
            make_norm(norm, c_out),
            nn.LeakyReLU(0.2, inplace=True),
            *_conv_block(c_out, c_out, norm, nn.LeakyReLU(0.2, inplace=True)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


def _decoder_act(slope: float) -> nn.Module:
    return nn.ReLU(inplace=True) if slope == 0 else nn.LeakyReLU(slope, inplace=True)


class _Up(nn.Module):
    """Double the resolution, merge the encoder skip, refine.

    Bilinear upsampling followed by a conv instead of pix2pix's transposed conv: transposed convs
    leave checkerboard patterns, which a blur generator would pass off as blur texture.
    """

    def __init__(
        self, c_in: int, c_skip: int, c_out: int, norm: str, dropout: float, slope: float
    ) -> None:
        super().__init__()
        self.reduce = _conv_block(c_in, c_out, norm, _decoder_act(slope))
        self.merge = nn.Sequential(
            *_conv_block(c_out + c_skip, c_out, norm, _decoder_act(slope)),
            # Dropout as pix2pix's source of stochasticity in the decoder; off by default.
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
        )

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = self.reduce(x)
        return self.merge(torch.cat([x, skip], dim=1))


class UNet(ResidualGenerator):
    """U-Net generator: ``depth`` down/up levels with skip connections and a global residual.

    Channel widths double per level from ``width`` and are capped at ``max_width``. Extra input
    channels beyond ``out_channels`` (a noise map appended at the end, as in the BGAN) are read by
    the network but are not part of the residual: ``output = input[:, :out_channels] + body``.

    Args:
        in_channels: input channels (image channels first, then any extra maps such as noise).
        out_channels: output image channels.
        width: channels at full resolution.
        depth: number of 2x downsamplings; H and W must be multiples of ``2 ** depth``.
        max_width: cap on the channel count at deep levels.
        norm: ``"none"``, ``"batch"`` or ``"instance"`` (instance norm needs the deepest level
            to have more than one pixel, i.e. inputs larger than ``2 ** depth``).
        dropout: dropout probability in the decoder blocks.
        global_residual: add the input image to the body's output (else a sigmoid output).
        init: ``"auto"`` (N(0, 0.02) with norm layers, He init without), ``"normal"`` or
            ``"kaiming"``; see :func:`~realblur_gan.nets.init.generator_init`.
        tail_scale: factor on the He-initialised output conv (how far from the identity a
            residual net starts).
        keep_mean: keep the input's channel means (the residual's mean is removed; see
            :func:`~realblur_gan.nets.init.residual_output`).
        decoder_slope: negative slope of the decoder's activations. 0 (pix2pix's ReLU) is the
            default only because older weight files were trained with it: with a near-zero
            output conv and a learning rate of 1e-3, the decoder's ReLUs die within a few dozen
            steps (the share of active units in the last block fell from 31% to 11% in 60
            steps, docs/generalisation.md) and the net freezes at the identity. New configs
            set 0.2.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)` in [0, 1], with H, W multiples of ``stride``
        - Output: :math:`(B, C_{out}, H, W)`; in [0, 1] in eval mode (see
          :func:`~realblur_gan.nets.init.residual_output`)

    Example:
        >>> net = UNet(in_channels=4, width=8, depth=2)
        >>> net(torch.rand(1, 4, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        width: int = 32,
        depth: int = 4,
        max_width: int = 256,
        norm: str = "none",
        dropout: float = 0.0,
        global_residual: bool = True,
        init: str = "auto",
        tail_scale: float = 0.01,
        keep_mean: bool = False,
        decoder_slope: float = 0.0,
    ) -> None:
        super().__init__()
        check_residual_channels(global_residual, in_channels, out_channels)
        if keep_mean and not global_residual:
            raise ArgumentError("keep_mean", keep_mean, "needs global_residual=true")
        self.keep_mean = keep_mean
        if depth < 1:
            raise ArgumentError("depth", depth, "must be >= 1")
        if width < 1:
            raise ArgumentError("width", width, "must be >= 1")
        if not 0 <= decoder_slope < 1:
            raise ArgumentError("decoder_slope", decoder_slope, "must be in [0, 1)")
        self.global_residual = global_residual
        self.stride = 2**depth
        widths = [min(width * 2**i, max_width) for i in range(depth + 1)]
        self.head = _conv_block(in_channels, widths[0], norm, nn.LeakyReLU(0.2, inplace=True))
        self.downs = nn.ModuleList(_Down(widths[i], widths[i + 1], norm) for i in range(depth))
        self.ups = nn.ModuleList(
            _Up(widths[i + 1], widths[i], widths[i], norm, dropout, decoder_slope)
            for i in reversed(range(depth))
        )
        self.tail = nn.Conv2d(widths[0], out_channels, 3, padding=1)
        generator_init(self, norm, self.tail, init, tail_scale)

    def forward(self, x: Tensor) -> Tensor:
        """Generate an image.

        Args:
            x: input batch in [0, 1].

        Returns:
            The output image batch.

        Shape:
            - x: :math:`(B, C_{in}, H, W)`
            - output: :math:`(B, C_{out}, H, W)`
        """
        check_multiple(x, self.stride, type(self).__name__)
        feat = self.head(x)
        skips = [feat]
        for down in self.downs:
            feat = down(feat)
            skips.append(feat)
        skips.pop()
        for up in self.ups:
            feat = up(feat, skips.pop())
        residual = self.tail(feat)
        return residual_output(x, residual, self.global_residual, self.training, self.keep_mean)
