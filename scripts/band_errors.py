"""Where a deblurrer's gain comes from: its error against the sharp image, band by band.

A PSNR gain says how much, not what changed. Splitting each image into Gaussian bands (finer
than sigma 1 px, between 1 and 4, coarser than 4 by default) tells whether a net restored the
detail blur took (the middle band's energy moves toward the sharp image's) or only corrected
coarse structure. docs/generalisation.md ("The packaged recipe with NAFNet") reads the unseen
GoPro scenes this way.

    python scripts/band_errors.py PAIRS_DIR [--checkpoint FILE] [--identity] [--out F.csv]

``PAIRS_DIR`` holds ``blur/`` and ``sharp/`` twins (the layout every pair folder here uses).
Without ``--checkpoint`` the packaged model runs; ``--identity`` scores the blurry input itself.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import sys
from pathlib import Path

import torch
from kornia.filters import gaussian_blur2d
from torch import Tensor

from realblur_gan.data.datamodule import match_pairs
from realblur_gan.data.datasets import read_pair
from realblur_gan.errors import UserError
from realblur_gan.nets.padding import forward_padded

# Squared errors and energies are printed times this: a band's mean square is ~1e-4 on [0, 1].
SCALE = 1e4


def lowpass(x: Tensor, sigma: float) -> Tensor:
    """Gaussian low-pass with reflected borders.

    Shape:
        - x, output: :math:`(B, C, H, W)`
    """
    size = 2 * math.ceil(3 * sigma) + 1
    return gaussian_blur2d(x, (size, size), (sigma, sigma), border_type="reflect")


def bands(x: Tensor, sigmas: tuple[float, ...] = (1.0, 4.0)) -> list[Tensor]:
    """Split ``x`` into ``len(sigmas) + 1`` bands, finest first, that sum back to ``x``.

    Shape:
        - x: :math:`(B, C, H, W)`; each band the same.
    """
    lows = [x, *(lowpass(x, s) for s in sigmas)]
    return [fine - coarse for fine, coarse in itertools.pairwise(lows)] + [lows[-1]]


def band_report(
    out: Tensor, blur: Tensor, sharp: Tensor, sigmas: tuple[float, ...] = (1.0, 4.0)
) -> dict[str, float]:
    """Per band: squared error of input and output against ``sharp``, and the band's energy.

    The coarsest band's energy is the image's own brightness, not detail, so it is left out.

    Returns:
        Keys ``band{i}_err_in``, ``band{i}_err_out`` for every band and ``band{i}_energy_sharp``,
        ``_in``, ``_out`` for every band but the last, all times ``SCALE``.
    """
    b_out, b_in, b_sharp = bands(out, sigmas), bands(blur, sigmas), bands(sharp, sigmas)
    row: dict[str, float] = {}
    for i, (o, b, s) in enumerate(zip(b_out, b_in, b_sharp, strict=True)):
        row[f"band{i}_err_in"] = float((b - s).pow(2).mean()) * SCALE
        row[f"band{i}_err_out"] = float((o - s).pow(2).mean()) * SCALE
        if i < len(sigmas):
            for name, t in (("sharp", s), ("in", b), ("out", o)):
                row[f"band{i}_energy_{name}"] = float(t.pow(2).mean()) * SCALE
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pairs", type=Path, help="folder with blur/ and sharp/ twins")
    parser.add_argument("--checkpoint", help="a .ckpt or .safetensors (default: packaged model)")
    parser.add_argument("--identity", action="store_true", help="score the blurry input itself")
    parser.add_argument("--sigmas", default="1,4", help="band edges as Gaussian sigmas (px)")
    parser.add_argument("--out", type=Path, help="also write the table as CSV")
    args = parser.parse_args(argv)
    try:
        sigmas = tuple(float(s) for s in args.sigmas.split(","))
        if sorted(sigmas) != list(sigmas) or min(sigmas) <= 0:
            raise UserError(f"--sigmas {args.sigmas}: give increasing positive values, e.g. 1,4")
        pairs = match_pairs(args.pairs)
        if args.identity:
            net = None
        else:
            from realblur_gan.weights.checkpoints import load_generator
            from realblur_gan.weights.model_zoo import load_pretrained

            net = load_generator(args.checkpoint) if args.checkpoint else load_pretrained()
            net.eval()
        rows = []
        for pair in pairs:
            blur, sharp = (t.unsqueeze(0) for t in read_pair(pair, channels=3))
            with torch.no_grad():
                out = blur if net is None else forward_padded(net, blur).clamp(0, 1)
            name = Path(pair.name).with_suffix("").as_posix()
            rows.append({"image": name, **band_report(out, blur, sharp, sigmas)})
    except (UserError, OSError, ValueError) as err:
        print(f"band_errors: {err}", file=sys.stderr)
        return 2
    edges = ["0", *(f"{s:g}" for s in sigmas), "inf"]
    names = [f"{lo}-{hi} px" for lo, hi in itertools.pairwise(edges)]
    print("| image | " + " | ".join(f"error {n}: input → output" for n in names) + " |")
    print("|---|" + "---:|" * len(names))
    for row in rows:
        cells = [
            f"{row[f'band{i}_err_in']:.2f} → {row[f'band{i}_err_out']:.2f}"
            for i in range(len(names))
        ]
        print(f"| {row['image']} | " + " | ".join(cells) + " |")
    if args.out:
        with args.out.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
