"""Time synthetic blur on one 1280x720 RGB image and camera-shake kernel generation.

Prints a markdown table of median milliseconds (after warm-up) and the torch thread count.

Usage::

    python scripts/bench_blur.py [--repeats 15] [--threads 2] [--kernel-size 65]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from realblur_gan.camera import (
    RealisticBlur,
    add_poisson_gaussian_noise,
    convolve,
    from_linear,
    jpeg_compress,
    to_linear,
    trajectory_kernel,
)


def median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def photo_like(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """Smooth random structure plus fine texture: JPEG costs about what it costs on a photo."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 16, width // 16, generator=gen)
    smooth = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    texture = 0.05 * torch.randn(1, 3, height, width, generator=gen)
    return (smooth + texture).clamp(0, 1)[0]


def realistic_blur(kernel_size: int = 65) -> RealisticBlur:
    """The full pipeline timed here: trajectory kernel, CRF, exposure, noise, JPEG q90."""
    return RealisticBlur(
        kernel_size=kernel_size, intensity=0.5, exposure=(1.0, 1.2), jpeg_quality=90
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--kernel-size", type=int, default=65)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    k = args.kernel_size
    image = photo_like(720, 1280)
    gen = torch.Generator().manual_seed(0)
    full = realistic_blur(k)
    bare = RealisticBlur(kernel_size=k, intensity=0.5, gamma=None, noise_shot=None, noise_read=None)
    kernel = trajectory_kernel(k, 0.5, gen)
    batch = image[None]
    cases: list[tuple[str, Callable[[], object]]] = [
        (f"RealisticBlur full pipeline, {k}-px kernel", lambda: full(image, gen)),
        (f"blur only (kernel + convolution), {k}-px", lambda: bare(image, gen)),
        (f"- convolution only (FFT), {k}-px", lambda: convolve(batch, kernel)),
        ("- gamma to linear and back", lambda: from_linear(to_linear(batch, "gamma"), "gamma")),
        ("- Poisson-Gaussian noise", lambda: add_poisson_gaussian_noise(batch, 1e-3, 2e-3, gen)),
        ("- JPEG q90 round trip", lambda: jpeg_compress(batch, 90)),
    ]
    rows = [(name, median_ms(fn, args.repeats)) for name, fn in cases]
    for size in (9, 17, 33, 65, 101):
        ms = median_ms(lambda s=size: trajectory_kernel(s, 0.5, gen), max(args.repeats, 50))
        rows.append((f"trajectory kernel {size}x{size}", ms))
    print(f"1280x720 RGB float32, torch {torch.__version__}, {args.threads} threads, CPU")
    print()
    print("| operation | median ms |")
    print("|---|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} |")


if __name__ == "__main__":
    main()
