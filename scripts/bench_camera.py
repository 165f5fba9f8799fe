"""Time the camera-pipeline blur on a batch of 8 128x128 crops and on one 1280x720 image.

Prints a markdown table of median milliseconds (after warm-up), whole pipeline and its steps,
with RealisticBlur for comparison.

Usage::

    python scripts/bench_camera.py [--repeats 15] [--threads 2] [--kernel-size 33]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
import torch.nn.functional as F
from bench_blur import median_ms

from realblur_gan.camera import (
    CameraPipelineBlur,
    RealisticBlur,
    add_poisson_gaussian_noise,
    convolve,
    demosaic_bilinear,
    from_linear,
    mosaic,
    to_linear,
)


def photo_like(batch: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Smooth random structure, fine texture and a few clipped highlights."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, max(2, height // 16), max(2, width // 16), generator=gen)
    smooth = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    texture = 0.05 * torch.randn(batch, 3, height, width, generator=gen)
    return (1.1 * smooth + texture).clamp(0, 1)


def cases(k: int, images: torch.Tensor) -> list[tuple[str, Callable[[], object]]]:
    gen = torch.Generator().manual_seed(0)
    camera = CameraPipelineBlur(kernel_size=k)
    camera_jpeg = CameraPipelineBlur(kernel_size=k, jpeg_quality=90)
    rolling = CameraPipelineBlur(kernel_size=k, rotation=(0.0, 0.5))
    realistic = RealisticBlur(kernel_size=k, exposure=(1.0, 1.2))
    n = images.shape[0]
    kernels = camera.draw(n, gen).kernels
    linear = to_linear(images)
    raw = mosaic(linear)
    shot, read = torch.full((n,), 1e-3), torch.full((n,), 2e-3)
    return [
        (f"CameraPipelineBlur, {k}-px kernel, no JPEG", lambda: camera(images, gen)),
        ("CameraPipelineBlur + JPEG q90", lambda: camera_jpeg(images, gen)),
        ("CameraPipelineBlur + roll (2x2 kernel lattice)", lambda: rolling(images, gen)),
        ("RealisticBlur (for comparison)", lambda: realistic(images, gen)),
        ("- drawing the parameters (kernels)", lambda: camera.draw(n, gen)),
        ("- camera tone curve, both ways", lambda: from_linear(to_linear(images))),
        ("- convolution (FFT)", lambda: convolve(linear, kernels)),
        ("- mosaic + bilinear demosaic", lambda: demosaic_bilinear(mosaic(linear))),
        ("- RAW Poisson-Gaussian noise", lambda: add_poisson_gaussian_noise(raw, shot, read, gen)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--kernel-size", type=int, default=33)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    small = cases(args.kernel_size, photo_like(8, 128, 128))
    large = cases(args.kernel_size, photo_like(1, 720, 1280))
    print(f"float32 RGB, torch {torch.__version__}, {args.threads} threads, CPU")
    print()
    print("| operation | 8 x 128x128 ms | 1 x 1280x720 ms |")
    print("|---|---:|---:|")
    for (name, fn_small), (_, fn_large) in zip(small, large, strict=True):
        ms_small = median_ms(fn_small, args.repeats)
        ms_large = median_ms(fn_large, args.repeats)
        print(f"| {name} | {ms_small:.2f} | {ms_large:.2f} |")


if __name__ == "__main__":
    main()
