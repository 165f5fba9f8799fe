"""Make synthetic blurry/sharp training pairs from a folder of sharp photos.

Writes ``OUT/sharp/<name>.png``, ``OUT/blur/<name>.png`` and ``OUT/kernels/<name>.npy`` (or a
``.png`` scaled to its maximum for viewing), keeping the input's sub-folders. Each image's blur
depends only on ``--seed`` and its name, so reruns, resumed runs and any ``--workers`` give the
same files; a rerun skips images whose outputs all exist.

Example::

    python -m data_tools.synthesize photos/ pairs/ --blur realistic --crop 256 --workers 2
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from data_tools._common import (
    DONE,
    IGNORED,
    SKIPPED,
    Outcome,
    all_exist,
    cli_error,
    finish,
    make_parser,
    relative_stem,
    run_tasks,
    seed_for,
    setup_logging,
    unwritable,
)
from realblur_gan.ownership import unique_temp

if TYPE_CHECKING:
    import torch

    from realblur_gan.blur import RealisticBlur, SimpleBlur


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to make one pair (picklable)."""

    source: Path
    name: str
    out: Path
    blur: str
    seed: int
    kernel_size: tuple[int, int]
    intensity: tuple[float, float]
    jpeg_quality: tuple[int, int] | None
    noise: bool
    resize: int | None
    crop: int | None
    kernel_format: str

    def outputs(self) -> tuple[Path, Path, Path]:
        return (
            self.out / "sharp" / f"{self.name}.png",
            self.out / "blur" / f"{self.name}.png",
            self.out / "kernels" / f"{self.name}.{self.kernel_format}",
        )


def build_blur(job: Job) -> SimpleBlur | RealisticBlur:
    from realblur_gan.blur import RealisticBlur, SimpleBlur

    if job.blur == "simple":
        return SimpleBlur(kernel_size=job.kernel_size)
    noise = {} if job.noise else {"noise_shot": None, "noise_read": None}
    return RealisticBlur(
        kernel_size=job.kernel_size,
        intensity=job.intensity,
        jpeg_quality=job.jpeg_quality,
        **noise,
    )


def prepare(image: torch.Tensor, resize: int | None, crop: int | None) -> torch.Tensor | None:
    """Resize the shorter side to ``resize`` and centre-crop to ``crop``; None when too small."""
    import torch.nn.functional as F

    if resize is not None:
        h, w = image.shape[-2:]
        scale = resize / min(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True)[0]
        image = image.clamp(0.0, 1.0)
    if crop is not None:
        h, w = image.shape[-2:]
        if h < crop or w < crop:
            return None
        top, left = (h - crop) // 2, (w - crop) // 2
        image = image[:, top : top + crop, left : left + crop]
    return image


def save_kernel(path: Path, kernel: torch.Tensor) -> None:
    import numpy as np

    from realblur_gan.data.io import write_image

    if path.suffix == ".npy":
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = unique_temp(path)
        try:
            with open(tmp, "wb") as handle:  # a handle: np.save would add ".npy" to the name
                np.save(handle, kernel.numpy().astype(np.float32))
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
    else:
        # Scaled to its peak so the stroke is visible; the exact weights are in the .npy form.
        write_image(path, (kernel / kernel.max().clamp_min(1e-12))[None], bit_depth=16)


def make_pair(job: Job) -> Outcome:
    import torch

    from realblur_gan.data.io import read_image, write_image

    sharp_path, blur_path, kernel_path = job.outputs()
    if all_exist((sharp_path, blur_path, kernel_path)):
        return Outcome(SKIPPED)
    image, _ = read_image(job.source, channels=3)
    image = prepare(image, job.resize, job.crop)
    if image is None:
        return Outcome(IGNORED, f"{job.source}: smaller than --crop {job.crop}, ignored")
    generator = torch.Generator().manual_seed(seed_for(job.seed, job.name))
    blurred, kernels = build_blur(job).sample(image, generator)
    save_kernel(kernel_path, kernels[0])
    write_image(sharp_path, image)
    write_image(blur_path, blurred)
    return Outcome(DONE)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("synthesize", __doc__.split("\n\n")[0])
    parser.add_argument(
        "sharp_dir", type=Path, help="folder of sharp photos (searched recursively)"
    )
    parser.add_argument("out_dir", type=Path, help="output folder: blur/, sharp/, kernels/")
    parser.add_argument(
        "--blur", choices=("simple", "realistic"), default="realistic", help="blur model"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--kernel-size",
        type=int,
        nargs=2,
        default=(9, 33),
        metavar=("LOW", "HIGH"),
        help="kernel size range (odd sizes drawn)",
    )
    parser.add_argument(
        "--intensity",
        type=float,
        nargs=2,
        default=(0.0, 1.0),
        metavar=("LOW", "HIGH"),
        help="camera-shake intensity range (realistic only)",
    )
    parser.add_argument(
        "--jpeg-quality",
        type=int,
        nargs=2,
        default=None,
        metavar=("LOW", "HIGH"),
        help="JPEG quality range (realistic only; default: no JPEG)",
    )
    parser.add_argument("--no-noise", action="store_true", help="no sensor noise (realistic only)")
    parser.add_argument("--resize", type=int, default=None, help="resize the shorter side to N")
    parser.add_argument("--crop", type=int, default=None, help="centre-crop to N x N")
    parser.add_argument(
        "--kernel-format",
        choices=("npy", "png"),
        default="npy",
        help="npy keeps exact weights; png is 16-bit, scaled to the peak",
    )
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    from realblur_gan.data.io import ImageFolderError, list_images

    try:
        sources = list_images(args.sharp_dir)
    except ImageFolderError as err:
        return cli_error(str(err))
    out = args.out_dir.resolve()
    root = args.sharp_dir.resolve()
    if root == out or root in out.parents:
        return cli_error(f"{args.out_dir}: must not lie inside the input folder {args.sharp_dir}")
    names: dict[str, Path] = {}
    for src in sources:
        name = relative_stem(src, args.sharp_dir)
        if name in names:
            return cli_error(f"{src} and {names[name]} would both be written as {name}.png")
        names[name] = src
    jobs = [
        Job(
            source=src,
            name=name,
            out=args.out_dir,
            blur=args.blur,
            seed=args.seed,
            kernel_size=tuple(args.kernel_size),
            intensity=tuple(args.intensity),
            jpeg_quality=None if args.jpeg_quality is None else tuple(args.jpeg_quality),
            noise=not args.no_noise,
            resize=args.resize,
            crop=args.crop,
            kernel_format=args.kernel_format,
        )
        for name, src in names.items()
    ]
    problem = unwritable(args.out_dir)
    if problem:
        return cli_error(problem)
    report = run_tasks(make_pair, jobs, args.workers, "synthesize")
    return finish(report, "synthesize", args.out_dir)


if __name__ == "__main__":
    sys.exit(main())
