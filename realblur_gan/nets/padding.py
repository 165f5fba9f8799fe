"""Run a net on any image size: pad to its stride, run, crop back.

U-Nets and multi-scale generators compute at multiples of their ``stride`` (the product of their
down-samplings); inference and validation hand them images of any size through these helpers.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def pad_to_multiple(x: Tensor, multiple: int) -> Tensor:
    """Reflect-pad H and W at the bottom/right up to ``multiple``; replicate where too small.

    Shape:
        - x: :math:`(B, C, H, W)`
        - output: :math:`(B, C, H', W')`, H' and W' the next multiples of ``multiple``
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return x
    # Reflect padding needs the pad to be smaller than the side.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def forward_padded(net: nn.Module, x: Tensor) -> Tensor:
    """``net(x)`` for any H, W: padded to the net's ``stride`` (1 when absent), cropped back.

    Shape:
        - x: :math:`(B, C, H, W)`, any H, W
        - output: :math:`(B, C', H, W)`

    Example:
        >>> from realblur_gan.nets import UNet
        >>> forward_padded(UNet(width=4, depth=2), torch.rand(1, 3, 37, 53)).shape
        torch.Size([1, 3, 37, 53])
    """
    h, w = x.shape[-2:]
    return net(pad_to_multiple(x, int(getattr(net, "stride", 1))))[..., :h, :w]
