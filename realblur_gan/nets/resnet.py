"""The paper's generator: residual blocks of five 3x3 convs, a long skip and a global residual.

Zhang et al. (CVPR 2020) build both the BGAN and the DBGAN generator from ResBlocks of five 3x3
convolutions with LeakyReLU and no normalisation (9 blocks for the BGAN, 16 for the DBGAN), at
full resolution throughout, so any input size works.
"""

from __future__ import annotations

from torch import Tensor, nn

from realblur_gan.errors import ArgumentError
from realblur_gan.nets.init import (
    ResidualGenerator,
    check_multiple,
    check_residual_channels,
    init_weights,
    residual_output,
)


class ResBlock(nn.Module):
    """Five 3x3 convs (LeakyReLU between them, none after the last) plus an identity skip.

    Args:
        width: feature channels.

    Shape:
        - Input: :math:`(B, width, H, W)`
        - Output: :math:`(B, width, H, W)`
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(5):
            layers.append(nn.Conv2d(width, width, 3, padding=1))
            if i < 4:
                layers.append(nn.LeakyReLU(0.2, inplace=True))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResNetGenerator(ResidualGenerator):
    """The paper's BGAN/DBGAN generator.

    head conv -> ``n_blocks`` :class:`ResBlock` -> conv, plus a long skip from the head's output
    around all blocks, then a tail conv to ``out_channels`` and the global residual
    ``output = input[:, :out_channels] + body``. Extra input channels (a noise map appended last)
    are read but not part of the residual.

    Args:
        in_channels: input channels (image first, then any extra maps such as noise).
        out_channels: output image channels.
        width: feature channels.
        n_blocks: residual blocks (paper: 9 for the BGAN, 16 for the DBGAN).
        global_residual: add the input image to the body's output (else a sigmoid output).

    Shape:
        - Input: :math:`(B, C_{in}, H, W)` in [0, 1], any H, W
        - Output: :math:`(B, C_{out}, H, W)`; in [0, 1] in eval mode

    Example:
        >>> g = ResNetGenerator(width=8, n_blocks=2)
        >>> g(torch.rand(1, 3, 17, 23)).shape
        torch.Size([1, 3, 17, 23])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        width: int = 64,
        n_blocks: int = 9,
        global_residual: bool = True,
    ) -> None:
        super().__init__()
        check_residual_channels(global_residual, in_channels, out_channels)
        if width < 1:
            raise ArgumentError("width", width, "must be >= 1")
        if n_blocks < 0:
            raise ArgumentError("n_blocks", n_blocks, "must be >= 0")
        self.global_residual = global_residual
        self.stride = 1
        self.head = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)
        )
        self.blocks = nn.Sequential(
            *(ResBlock(width) for _ in range(n_blocks)), nn.Conv2d(width, width, 3, padding=1)
        )
        self.tail = nn.Conv2d(width, out_channels, 3, padding=1)
        init_weights(self)

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
        feat = feat + self.blocks(feat)
        return residual_output(x, self.tail(feat), self.global_residual, self.training)
