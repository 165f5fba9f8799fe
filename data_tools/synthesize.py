"""Make synthetic blurry/sharp training pairs from a folder of sharp photos.

Writes ``OUT/sharp/<name>.png``, ``OUT/blur/<name>.png`` and ``OUT/kernels/<name>.npy`` (or a
``.png`` scaled to its maximum for viewing), keeping the input's sub-folders. Each image's blur
depends only on ``--seed`` and its name, so reruns, resumed runs and any ``--workers`` give the
same files; a rerun skips images whose outputs all exist.

Example::

    python -m data_tools.synthesize photos/ pairs/ --blur realistic --crop 256 --workers 2
    python -m data_tools.synthesize photos/ pairs/ --blur camera --no-saturation --crop 256
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
    import argparse

    import torch

    from realblur_gan.camera import BlurSampler

BLURS = ("simple", "realistic", "camera")
# The camera pipeline's own switches (CameraPipelineBlur), refused with the other blurs.
CAMERA_SWITCHES = ("tone_curve", "no_saturation", "no_white_balance", "no_mosaic")


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to make one pair (picklable)."""

    source: Path
    name: str
    out: Path
    blur: str
    blur_args: tuple[tuple[str, object], ...]
    seed: int
    resize: int | None
    crop: int | None
    kernel_format: str

    def outputs(self) -> tuple[Path, Path, Path]:
        return (
            self.out / "sharp" / f"{self.name}.png",
            self.out / "blur" / f"{self.name}.png",
            self.out / "kernels" / f"{self.name}.{self.kernel_format}",
        )


def make_blur(kind: str, settings: dict[str, object]) -> BlurSampler:
    """The ``--blur`` sampler built from its keyword arguments (ValueError on a bad one)."""
    from realblur_gan.camera import CameraPipelineBlur, RealisticBlur, SimpleBlur

    kinds = {"simple": SimpleBlur, "realistic": RealisticBlur, "camera": CameraPipelineBlur}
    return kinds[kind](**settings)


def build_blur(job: Job) -> BlurSampler:
    return make_blur(job.blur, dict(job.blur_args))


def blur_args(args: argparse.Namespace) -> dict[str, object]:
    """The blur's keyword arguments from the command line (defaults where a flag is absent)."""
    if args.blur == "simple":
        return {"kernel_size": tuple(args.kernel_size), "kernel_size_law": args.kernel_size_law}
    settings: dict[str, object] = {
        "kernel_size": tuple(args.kernel_size),
        "kernel_size_law": args.kernel_size_law,
        "intensity": tuple(args.intensity),
        "jpeg_quality": None if args.jpeg_quality is None else tuple(args.jpeg_quality),
    }
    if args.no_noise:
        settings |= {"noise_shot": None, "noise_read": None}
    if args.rotation is not None:
        settings["rotation"] = tuple(args.rotation)
    if args.span is not None:
        settings["span"] = tuple(args.span)
    if args.frames is not None:
        settings |= {
            "frames": tuple(args.frames),
            "shutter": tuple(args.shutter),
            "frames_share": args.frames_share,
        }
    if args.blur == "realistic":
        return settings
    curve = args.tone_curve or "camera"
    settings["tone_curve"] = None if curve == "linear" else curve
    if args.no_saturation:
        settings["saturation_factor"] = None
    if args.no_white_balance:
        settings |= {"wb_red": None, "wb_blue": None}
    if args.no_mosaic:
        settings["mosaic"] = False
    return settings


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
        "--blur",
        choices=BLURS,
        default="realistic",
        help="blur model: plain kernels on sRGB, camera shake with gamma/noise/JPEG, or the "
        "RAW camera pipeline (tone curve, clipped highlights, white balance, Bayer mosaic)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")

    def low_high(flag: str, kind: type, default: tuple | None, text: str) -> None:
        parser.add_argument(
            flag, type=kind, nargs=2, default=default, metavar=("LOW", "HIGH"), help=text
        )

    low_high("--kernel-size", int, (9, 33), "kernel size range (odd sizes drawn)")
    parser.add_argument(
        "--kernel-size-law",
        # realblur_gan.camera.SIZE_LAWS, spelled out: no torch import before the arguments parse.
        choices=("uniform", "log"),
        default="uniform",
        help="how sizes spread over --kernel-size: uniform in pixels, or log (each octave of "
        "blur as often: more mild blur)",
    )
    low_high("--intensity", float, (0.0, 1.0), "camera-shake intensity range (not simple)")
    low_high("--jpeg-quality", int, None, "JPEG quality range (not simple; default: no JPEG)")
    low_high(
        "--rotation",
        float,
        None,
        "not simple: the camera's roll, blur that changes across the photo (amplitude at the "
        "far corner, a fraction of the kernel size; default none); kernels/ gets its average",
    )
    low_high(
        "--frames",
        int,
        None,
        "not simple: blur as the average of LOW..HIGH video frames along the shake (GoPro-style "
        "ghosts of a fast move; default one continuous exposure)",
    )
    low_high(
        "--span",
        float,
        None,
        "not simple: the share of its kernel a shake path spans, in (0, 1] (default: tied to "
        "the intensity; 0.6 1 gives long straight strokes at low intensity)",
    )
    low_high(
        "--shutter",
        float,
        (0.1, 1.0),
        "with --frames: each frame's open time, a fraction of the frame interval in (0, 1]",
    )
    parser.add_argument(
        "--frames-share",
        type=float,
        default=1.0,
        help="with --frames: the share of photos blurred as frame averages (default 1)",
    )
    parser.add_argument("--no-noise", action="store_true", help="no sensor noise (not simple)")
    parser.add_argument(
        "--tone-curve",
        choices=("camera", "srgb", "gamma", "linear"),
        default=None,
        help="camera only: the tone curve undone before the blur (default camera; linear: "
        "the photos are linear light already)",
    )
    parser.add_argument(
        "--no-saturation",
        action="store_true",
        help="camera only: no boost of clipped highlights (daylight photos)",
    )
    parser.add_argument(
        "--no-white-balance", action="store_true", help="camera only: no white balance"
    )
    parser.add_argument(
        "--no-mosaic", action="store_true", help="camera only: no Bayer mosaic and demosaicing"
    )
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
    camera_only = [name for name in CAMERA_SWITCHES if getattr(args, name) not in (None, False)]
    if camera_only and args.blur != "camera":
        flag = "--" + camera_only[0].replace("_", "-")
        return cli_error(f"{flag} is a camera pipeline switch: add --blur camera")
    shaping = ("rotation", "frames", "span")
    shake_only = [flag for flag in shaping if getattr(args, flag) is not None]
    if shake_only and args.blur == "simple":
        return cli_error(f"--{shake_only[0]} shapes a camera shake: add --blur realistic or camera")
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
            blur_args=tuple(blur_args(args).items()),
            seed=args.seed,
            resize=args.resize,
            crop=args.crop,
            kernel_format=args.kernel_format,
        )
        for name, src in names.items()
    ]
    try:  # the settings are checked once here, not once per photo in the workers
        make_blur(args.blur, blur_args(args))
    except ValueError as err:
        return cli_error(f"--blur {args.blur}: {err}")
    problem = unwritable(args.out_dir)
    if problem:
        return cli_error(problem)
    report = run_tasks(make_pair, jobs, args.workers, "synthesize")
    return finish(report, "synthesize", args.out_dir)


if __name__ == "__main__":
    sys.exit(main())
