"""Make GoPro-style blurry/sharp pairs from folders of consecutive video frames.

Every folder that directly holds frames is one sequence (frames in name order). Each window of
``--n-frames`` consecutive frames is averaged in linear light into one blurry image; its middle
frame is the sharp target (DeepDeblur's protocol). Windows start every ``--stride`` frames
(default: ``--n-frames``, so windows do not overlap). ``--downscale N`` shrinks every frame by
N (box filter) before averaging, as ``data=gopro_frames`` does: 1280x720 frames at N = 2 give
640x360 pairs with blur half as wide. Outputs are ``OUT/blur/<sequence>/<middle frame>.png``
and ``OUT/sharp/<sequence>/<middle frame>.png``; a rerun skips windows whose two outputs exist
(so write other settings into another OUT).

Example::

    python -m data_tools.frames videos_frames/ gopro_like/ --n-frames 7 --downscale 2 --workers 2
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from data_tools._common import (
    DONE,
    FAILED,
    SKIPPED,
    Outcome,
    all_exist,
    cli_error,
    finish,
    make_parser,
    run_tasks,
    setup_logging,
    unwritable,
)


@dataclass(frozen=True)
class Window:
    """One output pair: the frames to average and where the pair goes (picklable)."""

    frames: tuple[Path, ...]
    blur_path: Path
    sharp_path: Path
    gamma: float
    downscale: int = 1


def average_window(window: Window) -> Outcome:
    import torch

    from realblur_gan.camera import gopro_blur
    from realblur_gan.data.frames import downscale_image
    from realblur_gan.data.io import read_image, write_image

    if all_exist((window.blur_path, window.sharp_path)):
        return Outcome(SKIPPED)
    images = []
    bit_depth = 8
    for path in window.frames:
        image, info = read_image(path, channels=3)
        image = downscale_image(image, window.downscale)
        bit_depth = max(bit_depth, 16 if info.bit_depth > 8 else 8)
        if images and image.shape != images[0].shape:
            return Outcome(
                FAILED,
                f"{path}: size {tuple(image.shape[1:])} differs from {window.frames[0].name} "
                f"{tuple(images[0].shape[1:])}; all frames of a sequence must match",
            )
        images.append(image)
    blur, sharp = gopro_blur(torch.stack(images), gamma=window.gamma)
    write_image(window.sharp_path, sharp, bit_depth=bit_depth)
    write_image(window.blur_path, blur, bit_depth=bit_depth)
    return Outcome(DONE)


def plan_windows(
    root: Path, out: Path, n_frames: int, stride: int, gamma: float, downscale: int = 1
) -> tuple[list[Window], int]:
    """Group frames by folder and cut each sequence into windows; returns (windows, sequences)."""
    from realblur_gan.data.io import list_images

    sequences: dict[Path, list[Path]] = defaultdict(list)
    for frame in list_images(root):
        sequences[frame.parent].append(frame)
    windows = []
    for folder, frames in sorted(sequences.items()):
        rel = folder.relative_to(root)
        for start in range(0, len(frames) - n_frames + 1, stride):
            chunk = tuple(frames[start : start + n_frames])
            middle = chunk[n_frames // 2].stem
            windows.append(
                Window(
                    frames=chunk,
                    blur_path=out / "blur" / rel / f"{middle}.png",
                    sharp_path=out / "sharp" / rel / f"{middle}.png",
                    gamma=gamma,
                    downscale=downscale,
                )
            )
    return windows, len(sequences)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("frames", __doc__.split("\n\n")[0])
    parser.add_argument("frames_dir", type=Path, help="folder of sequence folders (or of frames)")
    parser.add_argument("out_dir", type=Path, help="output folder: blur/, sharp/")
    parser.add_argument("--n-frames", type=int, default=7, help="frames averaged per blurry image")
    parser.add_argument(
        "--stride", type=int, default=None, help="frames between window starts (default n-frames)"
    )
    parser.add_argument("--gamma", type=float, default=2.2, help="camera gamma")
    parser.add_argument(
        "--downscale",
        type=int,
        default=1,
        metavar="N",
        help="shrink every frame N times (box filter) before averaging; 2 turns 1280x720 "
        "into 640x360",
    )
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    from realblur_gan.data.io import ImageFolderError

    if args.n_frames < 1 or (args.stride is not None and args.stride < 1):
        return cli_error("--n-frames and --stride must be >= 1")
    if args.downscale < 1:
        return cli_error(f"--downscale {args.downscale}: pass 1 (none) or more")
    try:
        windows, n_seq = plan_windows(
            args.frames_dir,
            args.out_dir,
            args.n_frames,
            args.stride or args.n_frames,
            args.gamma,
            args.downscale,
        )
    except ImageFolderError as err:
        return cli_error(str(err))
    if not windows:
        return cli_error(f"{args.frames_dir}: no sequence has {args.n_frames} frames")
    problem = unwritable(args.out_dir)
    if problem:
        return cli_error(problem)
    report = run_tasks(average_window, windows, args.workers, "frames")
    return finish(report, f"frames ({n_seq} sequences)", args.out_dir)


if __name__ == "__main__":
    sys.exit(main())
