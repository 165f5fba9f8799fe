"""Deblur a folder with a blind baseline: ``python -m realblur_gan.blind METHOD INPUT --out DIR``.

Writes ``DIR/<name>.png`` (the restored image, in the input's mode and bit depth, alpha kept)
and ``DIR/<name>_kernel.png`` (the estimated kernel, 16-bit, scaled to its peak; it loads back
with :func:`realblur_gan.evaluation.baselines.load_kernel`). Outputs that exist are skipped unless
``--overwrite``, so an interrupted run resumes. ``--batch N`` optimises up to N same-size images
together (worth it on a GPU; on a CPU the work per image is the same).

Example::

    python -m realblur_gan.blind selfdeblur photos/ --out out/ --kernel-size 31 --iterations 500
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from realblur_gan.cli.help_format import HelpFormatter
from realblur_gan.cli.inputs import InputError, resolve_inputs
from realblur_gan.defaults import BLIND_METHODS, MAP_PRIORS
from realblur_gan.errors import cli_logging
from realblur_gan.threads import use_available_cpus

# Torch and the methods are imported where they are used, so `--help` answers at once.
if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from realblur_gan.blind.map import MAPOptions
    from realblur_gan.blind.selfdeblur import SelfDeblurOptions
    from realblur_gan.data.io import ImageInfo

logger = logging.getLogger(__name__)

__all__ = ["BlindReport", "build_parser", "deblur_files", "main", "output_paths"]


@dataclass
class BlindReport:
    """Counts of a folder run, the one-line reason of every failure, and the time."""

    written: int = 0
    existing: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _Item:
    source: Path
    rel: Path
    image: Tensor
    info: ImageInfo


def output_paths(out_dir: Path, rel: Path) -> tuple[Path, Path]:
    """``(restored, kernel)`` output files of the input at relative path ``rel``."""
    base = out_dir / rel
    return base.with_suffix(".png"), base.with_name(f"{base.stem}_kernel.png")


def deblur_files(
    method: str,
    jobs: list[tuple[Path, Path]],
    out_dir: str | Path,
    kernel_size: int = 31,
    iterations: int | None = None,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    batch: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    options: MAPOptions | SelfDeblurOptions | None = None,
) -> BlindReport:
    """Blind-deblur image files, writing each restored image and its kernel.

    An unreadable image or one too small for the kernel is reported and skipped; the others
    go on. Images are grouped by size into batches of up to ``batch``.

    Args:
        method: a key of :data:`~realblur_gan.blind.registry.BLIND_BASELINES`.
        jobs: ``(source, relative output path)`` pairs (see
            :func:`~realblur_gan.predict.resolve_inputs`).
        out_dir: output folder.
        kernel_size: side of the estimated kernels (odd).
        iterations: optimisation budget per image; None for the method's default.
        seed: random seed.
        device: where to optimise.
        batch: most images optimised together (same size only).
        overwrite: redo outputs that exist.
        progress: show a progress bar per image (per batch).
        options: the method's knobs (e.g. ``MAPOptions(prior="sparse")``); None for defaults.

    Returns:
        The counts, failures and time.
    """
    import torch

    from realblur_gan.blind.common import BlindError, check_kernel_size, write_kernel
    from realblur_gan.blind.registry import blind_deblur
    from realblur_gan.data.io import ImageReadError, read_image, write_image

    out_dir = Path(out_dir)
    report = BlindReport()
    start = time.perf_counter()
    groups: dict[tuple[int, ...], list[_Item]] = {}

    def run(items: list[_Item]) -> None:
        images = torch.stack([item.image for item in items])
        names = [item.rel.as_posix() for item in items]
        try:
            result = blind_deblur(
                method,
                images,
                kernel_size,
                iterations,
                options=options,
                seed=seed,
                device=device,
                names=names,
                progress=progress,
            )
        except Exception as err:  # one failing batch must not end a long run
            logger.debug("%s failed", names, exc_info=True)
            for item in items:
                report.failed.append(f"{item.source}: {type(err).__name__}: {err}")
            return
        for i, item in enumerate(items):
            image_path, kernel_path = output_paths(out_dir, item.rel)
            try:
                write_image(image_path, result.restored[i], item.info)
                write_kernel(kernel_path, result.kernels[i])
            except OSError as err:
                report.failed.append(
                    f"{image_path}: cannot write ({err.strerror or err}); check {out_dir} "
                    "(free space, permissions)"
                )
                continue
            report.written += 1
        logger.info("%s: %.1f s", ", ".join(names), result.seconds)

    for source, rel in jobs:
        if not overwrite and all(p.exists() for p in output_paths(out_dir, rel)):
            report.existing += 1
            continue
        try:
            image, info = read_image(source)
            check_kernel_size(kernel_size, *image.shape[-2:], name=str(source))
        except (ImageReadError, BlindError) as err:
            report.failed.append(str(err))
            continue
        key = tuple(image.shape)
        groups.setdefault(key, []).append(_Item(source, rel, image, info))
        if len(groups[key]) >= batch:
            run(groups.pop(key))
    for items in groups.values():
        run(items)
    report.seconds = time.perf_counter() - start
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m realblur_gan.blind",
        description="Blind deconvolution of photos: the restored image and the estimated kernel.\n"
        "Writes OUT/<name>.png (the input's mode and bit depth) and OUT/<name>_kernel.png;\n"
        "a rerun skips the images already done.",
        formatter_class=HelpFormatter,
        epilog="examples:\n"
        "  python -m realblur_gan.blind map photos/ --out out/ --kernel-size 31 --prior sparse\n"
        "  python -m realblur_gan.blind selfdeblur photo.png --out out/ --iterations 500",
    )
    parser.add_argument(
        "method",
        choices=sorted(BLIND_METHODS),
        help="selfdeblur (Ren et al. 2020: two small nets fitted to the image) or map "
        "(kernel and image by MAP with a TV or sparse prior, coarse to fine)",
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders or quoted globs"
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--kernel-size",
        type=int,
        default=31,
        help="side (px, odd) of the estimated kernel: a little larger than the blur",
    )
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="optimisation budget per image (default: each method's own, "
        + ", ".join(f"{name} {budget}" for name, budget in BLIND_METHODS.items())
        + ")",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when there is one), cpu, cuda or cuda:N"
    )
    parser.add_argument("--batch", type=int, default=1, help="same-size images optimised at once")
    parser.add_argument("--prior", choices=MAP_PRIORS, default="tv", help="image prior of map")
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that exist")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 ok, 1 some failed, 2 bad usage)."""
    args = build_parser().parse_args(argv)
    cli_logging(args.verbose)
    from realblur_gan.blind.common import BlindError, check_kernel_size
    from realblur_gan.blind.map import MAPOptions
    from realblur_gan.inference.tiling import pick_device

    use_available_cpus()
    try:
        if args.iterations is not None and args.iterations < 1:
            raise BlindError(f"--iterations {args.iterations}: pass a budget >= 1")
        if args.batch < 1:
            raise BlindError(f"--batch {args.batch}: pass 1 or more")
        check_kernel_size(args.kernel_size, sys.maxsize, sys.maxsize, name="--kernel-size")
        device = pick_device(args.device)
        jobs = resolve_inputs(args.inputs)
    except (BlindError, InputError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    options = MAPOptions(prior=args.prior) if args.method == "map" else None
    report = deblur_files(
        args.method,
        jobs,
        args.out,
        args.kernel_size,
        args.iterations,
        seed=args.seed,
        device=device,
        batch=args.batch,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        options=options,
    )
    for line in report.failed:
        print(f"error: {line}", file=sys.stderr)
    print(
        f"realblur_gan.blind {args.method}: {report.written} written, {report.existing} "
        f"already there, {len(report.failed)} failed in {report.seconds:.1f} s -> {args.out}"
    )
    return 1 if report.failed else 0
