"""Blind deconvolution on Levin-style data: CPU speed, and PSNR against the non-blind ceiling.

The data is generated, not downloaded, in the layout of Levin et al.'s benchmark (255x255 gray
images, camera-shake kernels up to 27 px): ``--images`` photo-like scenes from the demo data
generator (:func:`realblur_gan.data.demo.make_scene`, in gray), each blurred by its own 27 px
kernel from :func:`realblur_gan.camera.trajectory_kernel` (intensity 0.6), plus Gaussian noise of
std 0.005 and 8-bit quantisation.

Rows: the blurry input; Wiener and Richardson–Lucy given the TRUE kernel (the non-blind
ceiling); SelfDeblur and MAP at their default budgets, estimating a ``--estimate-size`` kernel.
Scores are :func:`realblur_gan.evaluate.score_pair`'s: PSNR and SSIM on the image less a border
of half the kernel, best over shifts within ±3 px (a blind estimate is right up to a shift);
"kernel corr." is :func:`realblur_gan.blind.kernel_similarity` against the true kernel.

Usage::

    OMP_WAIT_POLICY=PASSIVE python scripts/bench_blind.py [--images 4] [--threads 1]
        [--methods selfdeblur,map] [--iterations N] [--json bench_blind.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from realblur_gan.blind import kernel_similarity
from realblur_gan.blind.registry import BLIND_BASELINES, blind_deblur
from realblur_gan.camera import convolve, trajectory_kernel
from realblur_gan.data.demo import make_scene
from realblur_gan.evaluate import ScoreOptions, score_pair
from realblur_gan.evaluation.baselines import richardson_lucy, wiener
from realblur_gan.inference.tiling import deblur_image
from realblur_gan.nets.init import net_channels
from realblur_gan.weights.checkpoints import load_generator


def levin_style(index: int, size: int, kernel_size: int, noise: float) -> tuple[torch.Tensor, ...]:
    """``(sharp, blurry, kernel)`` number ``index``: (1, 1, size, size) images, (k, k) kernel."""
    gray = make_scene(1000 + index, size).convert("L")
    sharp = torch.from_numpy(np.asarray(gray, np.float32) / 255.0)[None, None]
    gen = torch.Generator().manual_seed(2000 + index)
    kernel = trajectory_kernel(kernel_size, 0.6, gen)
    blurry = convolve(sharp, kernel) + noise * torch.randn(sharp.shape, generator=gen)
    return sharp, (blurry.clamp(0, 1) * 255).round() / 255, kernel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--size", type=int, default=255)
    parser.add_argument("--kernel-size", type=int, default=27, help="true kernel side")
    parser.add_argument("--estimate-size", type=int, default=31, help="blind kernel side")
    parser.add_argument("--noise", type=float, default=0.005)
    parser.add_argument("--methods", default=",".join(BLIND_BASELINES))
    parser.add_argument("--iterations", type=int, default=None, help="default: each method's")
    # One thread by default: on a shared 2-core machine a second OpenMP thread made MAP's many
    # small FFTs about 10x slower whenever another process took a core.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write per-image results")
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="also score this trained DBGAN (EMA weights)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    options = ScoreOptions(shift=3, crop_border=args.kernel_size // 2)
    dbgan = None
    if args.checkpoint is not None:
        dbgan = load_generator(args.checkpoint)

    rows: dict[str, list[dict[str, float]]] = {}
    labels: dict[str, tuple[str, str]] = {
        "identity": ("blurry input", "-"),
        "wiener": ("Wiener, nsr 0.01", "true"),
        "rl": ("Richardson–Lucy, 30 it.", "true"),
    }
    for i in range(args.images):
        sharp, blurry, kernel = levin_style(i, args.size, args.kernel_size, args.noise)
        for name, restored in (
            ("identity", blurry),
            ("wiener", wiener(blurry, kernel, nsr=1e-2)),
            ("rl", richardson_lucy(blurry, kernel, iterations=30)),
        ):
            rows.setdefault(name, []).append(score_pair(restored, sharp, options))
        if dbgan is not None:
            # A colour net sees the gray image on every channel; its channel mean is the answer.
            x = blurry.expand(-1, net_channels(dbgan), -1, -1)
            with torch.no_grad():
                restored = deblur_image(dbgan, x).mean(dim=1, keepdim=True).clamp(0, 1)
            rows.setdefault("dbgan", []).append(score_pair(restored, sharp, options))
            labels["dbgan"] = (f"trained DBGAN ({args.checkpoint.name})", "-")
        for name in methods:
            spec = BLIND_BASELINES[name]
            budget = args.iterations or spec.default_iterations
            labels[name] = (f"{spec.label}, {budget} it.", f"estimated, {args.estimate_size} px")
            start, cpu_start = time.perf_counter(), time.process_time()
            result = blind_deblur(
                name, blurry, args.estimate_size, budget, device=args.device, names=[f"im{i}"]
            )
            seconds = time.perf_counter() - start
            cpu_seconds = time.process_time() - cpu_start
            scores = score_pair(result.restored.cpu(), sharp, options)
            scores |= {
                "kernel_corr": kernel_similarity(result.kernels[0], kernel),
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "cpu_s_per_100": 100.0 * cpu_seconds / budget,
            }
            rows.setdefault(name, []).append(scores)
            print(
                f"im{i} {name}: {scores['psnr']:.2f} dB, corr {scores['kernel_corr']:.3f}, "
                f"{seconds:.1f} s",
                flush=True,
            )

    def mean(name: str, key: str, fmt: str) -> str:
        values = [r[key] for r in rows[name] if key in r]
        return format(statistics.fmean(values), fmt) if values else "-"

    threads = torch.get_num_threads()
    cpu = platform.processor() or platform.machine()
    print()
    print(
        f"{args.images} Levin-style {args.size}x{args.size} gray images, {args.kernel_size} px "
        f"shake kernels, noise std {args.noise}; {args.device}, {threads} "
        f"thread{'s' if threads != 1 else ''}, torch {torch.__version__}, {cpu}"
    )
    print()
    print(
        "| method | kernel | CPU s / 100 it. | CPU s / image | wall s / image | PSNR (dB) | SSIM "
        "| kernel corr. |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in ["identity", "wiener", "rl", *methods, *(["dbgan"] if dbgan is not None else [])]:
        label, kernel_text = labels[name]
        print(
            f"| {label} | {kernel_text} | {mean(name, 'cpu_s_per_100', '.2f')} | "
            f"{mean(name, 'cpu_seconds', '.1f')} | {mean(name, 'seconds', '.1f')} | "
            f"{mean(name, 'psnr', '.2f')} | "
            f"{mean(name, 'ssim', '.3f')} | {mean(name, 'kernel_corr', '.3f')} |"
        )
    print()
    print(
        f"PSNR/SSIM: {options.describe().replace('RGB', 'gray')}. CPU seconds are the process's "
        "CPU time (all threads), wall seconds include waiting for a shared machine."
    )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
