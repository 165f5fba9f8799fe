"""How far a trained deblurrer looks: its effective receptive field on a real image.

To undo blur of k pixels a net must combine pixels at least k apart, so a generator whose
context is smaller than the blur cannot undo it whatever it is trained on. The theoretical
receptive field of a U-shaped net (or one with a global pool) is the whole image and says
little; what a trained net uses is the gradient of one output pixel with respect to the input
(Luo et al., "Understanding the Effective Receptive Field in Deep CNNs", NeurIPS 2016). This
prints, per net, the radii of the squares around that pixel that hold 50, 90 and 99 % of the
gradient's mass.

    python scripts/receptive_field.py [--checkpoint FILE ...] [--image FILE] [--size 512]

Without ``--checkpoint`` the packaged model is measured; without ``--image``, a seeded random
texture. The gradient is of the net's correction (output minus input) at the centre of a
``--size`` centre crop, summed over colour channels.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from realblur_gan.data.io import read_image
from realblur_gan.errors import UserError

FRACTIONS = (0.5, 0.9, 0.99)


def gradient_map(net: nn.Module, image: Tensor) -> Tensor:
    """|d correction(centre) / d input|, summed over the input's channels.

    Args:
        net: a generator whose output has the image's channels first.
        image: the input crop.

    Shape:
        - image: :math:`(1, C, H, W)`
        - output: :math:`(H, W)`
    """
    x = image.detach().clone().requires_grad_(True)
    out = net(x)
    cy, cx = x.shape[-2] // 2, x.shape[-1] // 2
    (out - x[:, : out.shape[1]])[0, :, cy, cx].sum().backward()
    return x.grad.abs().sum(dim=1)[0]


def mass_radii(grad: Tensor, fractions: tuple[float, ...] = FRACTIONS) -> list[int]:
    """Smallest radii r (Chebyshev, from the centre pixel) whose (2r+1)-sided square holds each
    fraction of ``grad``'s total mass.

    Shape:
        - grad: :math:`(H, W)`, non-negative
    """
    h, w = grad.shape
    cy, cx = h // 2, w // 2
    rows = (torch.arange(h) - cy).abs()[:, None]
    cols = (torch.arange(w) - cx).abs()[None, :]
    radius = torch.maximum(rows, cols).flatten()
    mass = torch.zeros(int(radius.max()) + 1, dtype=torch.float64)
    mass.index_add_(0, radius, grad.flatten().double())
    cumulative = mass.cumsum(0) / mass.sum().clamp_min(1e-300)
    # The last radius whose cumulative share is below the fraction, plus one.
    return [int((cumulative < f - 1e-12).sum()) for f in fractions]


def centre_crop(image: Tensor, size: int, source: str) -> Tensor:
    """The ``size``-sided centre crop of a (C, H, W) image, batched.

    Raises:
        UserError: the image is smaller than ``size``.
    """
    h, w = image.shape[-2:]
    if h < size or w < size:
        raise UserError(f"{source}: {w}x{h} is smaller than --size {size}; pass a smaller --size")
    top, left = (h - size) // 2, (w - size) // 2
    return image[None, :, top : top + size, left : left + size]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--checkpoint", action="append", help="a .ckpt or .safetensors (repeat to compare)"
    )
    parser.add_argument("--image", type=Path, help="input photo (default: a random texture)")
    parser.add_argument("--size", type=int, default=512, help="centre crop side (px)")
    parser.add_argument("--out", type=Path, help="also write the table as CSV")
    args = parser.parse_args(argv)
    try:
        if args.size < 8:
            raise UserError(f"--size {args.size}: use at least 8 px")
        if args.image is not None:
            image = centre_crop(read_image(args.image, channels=3)[0], args.size, str(args.image))
        else:
            seeded = torch.Generator().manual_seed(0)
            image = torch.rand(1, 3, args.size, args.size, generator=seeded)
        from realblur_gan.weights.checkpoints import load_generator
        from realblur_gan.weights.model_zoo import load_pretrained

        rows: list[list[str | int]] = []
        for source in args.checkpoint or [None]:
            net = load_generator(source) if source else load_pretrained()
            net.eval()
            channels = int(getattr(net, "image_channels", 3))
            radii = mass_radii(gradient_map(net, image[:, :channels]))
            rows.append([source or "packaged", *radii])
    except (UserError, OSError, ValueError) as err:
        print(f"receptive_field: {err}", file=sys.stderr)
        return 2
    print(f"| net | radius holding 50 / 90 / 99 % of the gradient (px, {args.size} px crop) |")
    print("|---|---:|")
    for name, *radii in rows:
        print(f"| {name} | {' / '.join(map(str, radii))} |")
    if args.out:
        with args.out.open("w", newline="") as f:
            csv.writer(f).writerows([["net", "r50", "r90", "r99"], *rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
