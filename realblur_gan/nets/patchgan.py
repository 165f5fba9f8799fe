"""PatchGAN discriminators: one scale (pix2pix) and two scales (DeblurGAN-v2 style)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from realblur_gan.errors import ArgumentError
from realblur_gan.nets.init import init_weights, make_norm


class PatchGAN(nn.Module):
    """Fully convolutional discriminator that scores overlapping patches (pix2pix ``n_layers``).

    ``n_layers`` 4x4 stride-2 convs followed by two 4x4 stride-1 convs; the default
    ``n_layers=3`` gives each output logit a 70x70 receptive field. With ``cond_channels > 0`` the
    condition (e.g. the sharp image a blur was generated from) is concatenated to the input along
    channels, as pix2pix's conditional D.

    Args:
        in_channels: channels of the image being judged.
        width: channels of the first conv; doubled per layer up to ``8 * width``.
        n_layers: number of stride-2 convs (receptive field 16, 34, 70, 142, ... for 1, 2, 3,
            4, ...).
        norm: ``"none"``, ``"batch"`` or ``"instance"``; never on the first conv.
        spectral_norm: wrap every conv in spectral normalisation.
        cond_channels: channels of the optional condition; 0 for an unconditional D.

    Shape:
        - x: :math:`(B, C_{in}, H, W)` in [0, 1]
        - cond: :math:`(B, C_{cond}, H, W)` in [0, 1], only when ``cond_channels > 0``
        - output: :math:`(B, 1, H', W')` raw logits, :math:`H' \\approx H / 2^{n} - 2`

    Example:
        >>> d = PatchGAN(width=8)
        >>> d(torch.rand(2, 3, 64, 64)).shape
        torch.Size([2, 1, 6, 6])
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        spectral_norm: bool = False,
        cond_channels: int = 0,
    ) -> None:
        super().__init__()
        if width < 1:
            raise ArgumentError("width", width, "must be >= 1")
        if cond_channels < 0:
            raise ArgumentError("cond_channels", cond_channels, "must be >= 0 (0: unconditional)")
        self.cond_channels = cond_channels
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels + cond_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        c_out = width
        for i in range(1, n_layers + 1):
            c_in, c_out = c_out, width * min(2**i, 8)
            # The last of these keeps the resolution (pix2pix): it widens the receptive field
            # without shrinking the patch map further.
            stride = 2 if i < n_layers else 1
            layers += [
                nn.Conv2d(c_in, c_out, 4, stride=stride, padding=1, bias=norm == "none"),
                make_norm(norm, c_out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(nn.Conv2d(c_out, 1, 4, stride=1, padding=1))
        self.body = nn.Sequential(*layers)
        init_weights(self)
        if spectral_norm:
            for module in self.body:
                if isinstance(module, nn.Conv2d):
                    _spectral_norm(module)

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Score patches of ``x`` (optionally conditioned on ``cond``).

        Args:
            x: images in [0, 1].
            cond: condition images in [0, 1]; required iff ``cond_channels > 0``.

        Returns:
            Patch logits.

        Shape:
            - x: :math:`(B, C_{in}, H, W)`
            - cond: :math:`(B, C_{cond}, H, W)`
            - output: :math:`(B, 1, H', W')`
        """
        if self.cond_channels:
            if cond is None:
                raise ValueError(f"PatchGAN(cond_channels={self.cond_channels}) needs a cond")
            x = torch.cat([x, cond], dim=1)
        elif cond is not None:
            raise ValueError("PatchGAN got a cond but was built with cond_channels=0")
        # Map [0, 1] to [-1, 1] so the first conv sees zero-centred input, as in pix2pix.
        return self.body(x * 2 - 1)


class MultiScalePatchGAN(nn.Module):
    """Several PatchGANs, each on a 2x smaller copy of the input (full res, 1/2, ...).

    The full-resolution D judges fine texture (the blur's local look); the downsampled one sees a
    twice larger context with the same weights budget (the blur's extent). The defaults give
    DeblurGAN-v2's double-scale D. Inputs are downsampled with 3x3 average pooling, as
    pix2pixHD.

    Args:
        in_channels: channels of the image being judged.
        width: first-conv channels of every scale's PatchGAN.
        n_layers: stride-2 convs of every scale's PatchGAN.
        norm: ``"none"``, ``"batch"`` or ``"instance"``.
        spectral_norm: wrap every conv in spectral normalisation.
        cond_channels: channels of the optional condition (downsampled alongside ``x``).
        num_scales: number of scales.

    Shape:
        - x: :math:`(B, C_{in}, H, W)` in [0, 1]
        - cond: :math:`(B, C_{cond}, H, W)`, only when ``cond_channels > 0``
        - output: list of ``num_scales`` logit maps :math:`(B, 1, H_s', W_s')`, full res first

    Example:
        >>> d = MultiScalePatchGAN(width=8)
        >>> [o.shape[-1] for o in d(torch.rand(1, 3, 128, 128))]
        [14, 6]
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 64,
        n_layers: int = 3,
        norm: str = "instance",
        spectral_norm: bool = False,
        cond_channels: int = 0,
        num_scales: int = 2,
    ) -> None:
        super().__init__()
        if num_scales < 1:
            raise ArgumentError("num_scales", num_scales, "must be >= 1")
        # Read by BlurGAN: a D built with a condition is fed one (pix2pix pre-training).
        self.cond_channels = cond_channels
        self.discriminators = nn.ModuleList(
            PatchGAN(in_channels, width, n_layers, norm, spectral_norm, cond_channels)
            for _ in range(num_scales)
        )

    def forward(self, x: Tensor, cond: Tensor | None = None) -> list[Tensor]:
        """Score patches at every scale.

        Args:
            x: images in [0, 1].
            cond: condition images in [0, 1]; required iff ``cond_channels > 0``.

        Returns:
            One logit map per scale, full resolution first.

        Shape:
            - x: :math:`(B, C_{in}, H, W)`
            - output: ``list`` of :math:`(B, 1, H_s', W_s')`
        """
        outputs = []
        for i, d in enumerate(self.discriminators):
            if i:
                x = _downsample(x)
                cond = None if cond is None else _downsample(cond)
            outputs.append(d(x, cond))
        return outputs


def _downsample(x: Tensor) -> Tensor:
    # count_include_pad=False keeps border means unbiased by the zero padding.
    return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
