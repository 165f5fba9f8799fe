"""Draw the README's before/after figure with the packaged model, and measure what it shows.

The scene comes from the project's own demo generator (``realblur_gan.data.demo.make_scene``:
no photo, no licence to check) and is blurred by camera shake in linear light
(``RealisticBlur``: trajectory kernel, gamma 2.2, read noise). The packaged DBGAN restores it
through the Python API. Besides the figure, the script prints the PSNR gain on every scene
and blur size it tries, so the figure's caption can say how typical the example is. Rerun it
after replacing the packaged model.

Usage::

    python scripts/make_readme_figure.py [--out docs/images/before-after.png] [--seeds 6]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from realblur_gan import Deblurrer
from realblur_gan.camera import RealisticBlur
from realblur_gan.data.demo import make_scene
from realblur_gan.evaluation.metrics import psnr

ROOT = Path(__file__).resolve().parent.parent
SIZE = 256
# The example drawn: scene seed and kernel sizes (px) of the shake; the zoomed crop (left, top).
EXAMPLE = (0, (9, 13))
ZOOM_AT, ZOOM = (80, 16), 2
KERNELS = ((9, 13), (13, 17))
LABEL = 22


def blurred_scene(seed: int, kernel_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A generated scene and its camera-shake blur, both (3, SIZE, SIZE) in [0, 1]."""
    sharp = torch.from_numpy(np.asarray(make_scene(seed, SIZE), np.float32) / 255)
    sharp = sharp.permute(2, 0, 1)
    camera = RealisticBlur(
        kernel_size=kernel_size, intensity=(0.3, 0.6), noise_shot=None, noise_read=(0.001, 0.002)
    )
    return sharp, camera(sharp, generator=torch.Generator().manual_seed(seed))


def score(image: torch.Tensor, sharp: torch.Tensor) -> float:
    return float(psnr(image[None], sharp[None])[0])


def figure(panels: list[tuple[str, torch.Tensor]], path: Path) -> None:
    """Panels side by side, each labelled above, and below each the same crop enlarged."""
    pad = 6
    width = len(panels) * (SIZE + pad) + pad
    canvas = Image.new("RGB", (width, 2 * SIZE + LABEL + 3 * pad), "white")
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=14)
    except TypeError:  # Pillow without FreeType
        font = ImageFont.load_default()
    for i, (label, image) in enumerate(panels):
        x = pad + i * (SIZE + pad)
        pixels = (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        full = Image.fromarray(pixels)
        canvas.paste(full, (x, LABEL + pad))
        left, top = ZOOM_AT
        crop = full.crop((left, top, left + SIZE // ZOOM, top + SIZE // ZOOM))
        canvas.paste(crop.resize((SIZE, SIZE), Image.NEAREST), (x, LABEL + SIZE + 2 * pad))
        draw.text((x + SIZE / 2, LABEL / 2 + pad / 2), label, fill="black", font=font, anchor="mm")
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "images" / "before-after.png",
        help="the figure (default: docs/images/before-after.png)",
    )
    parser.add_argument("--seeds", type=int, default=6, help="scenes measured per blur size")
    args = parser.parse_args(argv)
    deblur = Deblurrer.from_pretrained(device="cpu")
    gains = []
    print("| scene | shake kernel (px) | blurry PSNR | restored PSNR | gain |")
    print("|---:|---|---:|---:|---:|")
    for seed in range(args.seeds):
        for kernels in KERNELS:
            sharp, blurry = blurred_scene(seed, kernels)
            before, after = score(blurry, sharp), score(deblur(blurry), sharp)
            gains.append(after - before)
            print(
                f"| {seed} | {kernels[0]}-{kernels[1]} | {before:.2f} | {after:.2f} | "
                f"{after - before:+.2f} |"
            )
    print(
        f"mean gain {statistics.mean(gains):+.2f} dB, from {min(gains):+.2f} to "
        f"{max(gains):+.2f}, over {len(gains)} images"
    )
    sharp, blurry = blurred_scene(*EXAMPLE)
    restored = deblur(blurry)
    panels = [
        (f"blurry  {score(blurry, sharp):.2f} dB", blurry),
        (f"realblur-deblur  {score(restored, sharp):.2f} dB", restored),
        ("sharp", sharp),
    ]
    figure(panels, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
