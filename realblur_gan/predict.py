"""Deblur image files with a trained DBGAN generator: the ``realblur-deblur`` command.

This module walks the inputs (files, folders, globs) and writes each result in its input's mode
and bit depth; the net comes from :func:`realblur_gan.weights.checkpoints.load_generator` (by
default
the packaged model in ``realblur_gan/weights/``) and runs through
:func:`realblur_gan.inference.tiling.deblur_image` (any size, large images in tiles).

Example::

    realblur-deblur photos/ --out restored/
    realblur-deblur --checkpoint outputs/joint/.../last.ckpt photos/*.png --out restored/
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from realblur_gan.cli.generator_options import add_generator_options, generator_from_options
from realblur_gan.cli.help_format import HelpFormatter
from realblur_gan.cli.inputs import InputError, resolve_inputs
from realblur_gan.defaults import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    RUNTIMES,
    TILE_SIDE,
    Tile,
    parse_tile,
)
from realblur_gan.errors import (
    UserError,
    cli_logging,
    debug_requested,
    error_text,
)
from realblur_gan.ownership import claim_folder
from realblur_gan.threads import use_available_cpus

# Torch and the image readers are imported where they are used: `realblur-deblur --help`
# then answers at once instead of after seconds of imports.
if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["PredictReport", "predict_files"]

# Suffixes of the files load_generator reads, so that the older form with the checkpoint as the
# first INPUT still works (a missing one is then reported as a missing checkpoint).
_CHECKPOINT_SUFFIXES = frozenset({".ckpt", ".safetensors", ".pt", ".pth"})


@dataclass
class PredictReport:
    """Tally of a prediction run."""

    written: int = 0
    existing: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, out: Path | str) -> str:
        return (
            f"realblur-deblur: {self.written} written, {self.existing} already done, "
            f"{len(self.failed)} failed in {self.seconds:.1f} s -> {out}"
        )


def predict_files(
    net: nn.Module,
    jobs: Sequence[tuple[Path, Path]],
    out_dir: str | os.PathLike[str],
    tile: Tile = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    *,
    bf16: bool = False,
    self_ensemble: bool = False,
    runtime: str = "auto",
    overwrite: bool = False,
    suffix: str | None = None,
    progress: bool = True,
) -> PredictReport:
    """Deblur image files into ``out_dir``, in each input's mode, bit depth and alpha.

    Outputs that exist are skipped unless ``overwrite``; an unreadable input is logged and
    skipped, so one bad file does not stop a long run.

    Args:
        net: the generator (see :func:`~realblur_gan.weights.checkpoints.load_generator`), on the
            device to use.
        jobs: ``(source, relative output path)`` pairs from :func:`resolve_inputs`.
        out_dir: output folder.
        tile: see :func:`~realblur_gan.inference.tiling.deblur_image`.
        overlap: see :func:`~realblur_gan.inference.tiling.deblur_image`.
        bf16: see :func:`~realblur_gan.inference.tiling.deblur_image`.
        self_ensemble: see :func:`~realblur_gan.inference.tiling.deblur_image`.
        runtime: see :func:`~realblur_gan.inference.tiling.deblur_image`.
        overwrite: redo outputs that exist.
        suffix: output extension (e.g. ``".png"``); None keeps the input's.
        progress: show a progress bar.

    Returns:
        The counts, failures and time.
    """
    from tqdm import tqdm

    from realblur_gan.data.io import IMAGE_EXTENSIONS, ImageReadError, read_image, write_image
    from realblur_gan.inference.tiling import deblur_image

    out_dir = Path(out_dir)
    report = PredictReport()
    start = time.perf_counter()
    bar = tqdm(jobs, desc="deblur", unit="img", disable=not progress or None, file=sys.stderr)
    for source, rel in bar:
        target = out_dir / rel
        if suffix is not None:
            target = target.with_suffix(suffix)
        elif target.suffix.lower() not in IMAGE_EXTENSIONS:
            target = target.with_suffix(".png")  # a format read but not written (GIF, ...)
        if target.exists() and not overwrite:
            report.existing += 1
            continue
        try:
            image, info = read_image(source)
            if info.frames > 1:
                raise ImageReadError(
                    f"{source}: holds {info.frames} images (an animation or a multi-page file) "
                    "and realblur-deblur restores one image per file; save each frame as its "
                    "own image first (e.g. `magick FILE frame-%03d.png`) and pass those"
                )
            restored = deblur_image(
                net,
                image[None],
                tile,
                overlap,
                bf16=bf16,
                self_ensemble=self_ensemble,
                runtime=runtime,
            )
        except ImageReadError as err:
            logger.warning("skipped: %s", err)
            report.failed.append(str(err))
            continue
        except Exception as err:  # one failing image must not end a long run
            logger.debug("%s failed", source, exc_info=True)
            message = f"{source}: {type(err).__name__}: {' '.join(str(err).split())[:200]}"
            logger.warning("skipped: %s", message)
            report.failed.append(message)
            continue
        del image  # a 12 MP photo is 144 MB as float: not held while the result is written
        try:
            write_image(target, restored[0], info)
        except ValueError as err:  # this image in this format (not the output side): go on
            logger.warning("skipped: %s", err)
            report.failed.append(f"{source}: {err}")
            continue
        except OSError as err:
            # The output side is broken (full, read-only, gone): every further image would fail
            # the same way, so stop and say it once.
            report.failed.append(
                f"{target}: cannot write ({err.strerror or err}); check {out_dir} (free space, "
                f"permissions); stopped after {report.written} written"
            )
            break
        report.written += 1
    report.seconds = time.perf_counter() - start
    return report


def _split_checkpoint(inputs: Sequence[str], net: str) -> tuple[str | None, list[str]]:
    """Take the checkpoint off the front of INPUT, where the older command form put it.

    ``realblur-deblur CKPT IMAGES... --out DIR`` still works: the first argument is the
    checkpoint when it has a checkpoint's suffix, is a file that is not an image, or is an export
    folder (holding ``<net>.safetensors``).

    Args:
        inputs: the INPUT arguments.
        net: the ``--net`` option, to recognise an export folder.

    Returns:
        The checkpoint (None when the first argument is an image input) and the image inputs.

    Raises:
        InputError: a checkpoint is the only argument.
    """
    from realblur_gan.data.io import IMAGE_EXTENSIONS

    first = Path(inputs[0])
    suffix = first.suffix.lower()
    is_checkpoint = (
        suffix in _CHECKPOINT_SUFFIXES
        or (first.is_file() and suffix not in IMAGE_EXTENSIONS)
        or (first.is_dir() and (first / f"{net}.safetensors").is_file())
    )
    if not is_checkpoint:
        return None, list(inputs)
    if len(inputs) == 1:
        raise InputError(f"{inputs[0]}: a checkpoint, and no image to deblur; pass the images too")
    return inputs[0], list(inputs[1:])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realblur-deblur",
        description="Deblur images with a trained DBGAN generator (by default the packaged one).\n"
        "Each result keeps its input's name, mode (gray, RGB, alpha) and bit depth.",
        formatter_class=HelpFormatter,
        epilog="examples:\n"
        "  realblur-deblur photo.jpg --out restored/\n"
        "  realblur-deblur photos/ 'more/*.png' --out restored/ --self-ensemble\n"
        "  realblur-deblur --checkpoint outputs/joint/<run>/checkpoints/joint/last.ckpt "
        "photos/ --out restored/",
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files, folders (recursive) or globs; a checkpoint given first is used as "
        "--checkpoint",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="output folder (sub-folders of INPUT kept)",
    )
    parser.add_argument(
        "--tile",
        type=parse_tile,
        default=DEFAULT_TILE,
        help="tile side (px) for large images; 0 = none; auto = one pass up to 1 MP where the "
        "runtime is faster that way, else 512 px tiles",
    )
    parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, help="tile overlap (px)")
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when there is one), cpu, cuda or cuda:N"
    )
    parser.add_argument(
        "--bf16", action="store_true", help="bfloat16 autocast (CUDA, CPUs with native bf16)"
    )
    parser.add_argument(
        "--runtime",
        choices=RUNTIMES,
        default="auto",
        help="forward-pass runtime: auto = onnxruntime on the CPU when installed, else torch",
    )
    parser.add_argument(
        "--self-ensemble",
        action="store_true",
        help="average over the 8 flips/transposes: 8x the time, usually ~0.1 dB better",
    )
    parser.add_argument(
        "--ext", default=None, help="output extension, e.g. .png (default: the input's)"
    )
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that exist")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--debug", action="store_true", help="full tracebacks for errors")
    add_generator_options(
        parser,
        ".ckpt from training, or an exported .safetensors or folder; without it, the packaged "
        "model",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``realblur-deblur``); returns the exit status."""
    args = build_parser().parse_args(argv)
    cli_logging(args.verbose)
    with contextlib.ExitStack() as owned:  # holds the --out lock until every return
        return _main(args, owned)


def _main(args: argparse.Namespace, owned: contextlib.ExitStack) -> int:
    from realblur_gan.data.io import IMAGE_EXTENSIONS
    from realblur_gan.inference.runtime import forward_runner
    from realblur_gan.inference.tiling import pick_device

    use_available_cpus()
    suffix = None
    if args.ext:
        suffix = args.ext if args.ext.startswith(".") else f".{args.ext}"
        if suffix.lower() not in IMAGE_EXTENSIONS:
            print(
                f"error: --ext {args.ext}: use one of {sorted(IMAGE_EXTENSIONS)}", file=sys.stderr
            )
            return 2
    side = TILE_SIDE if args.tile == "auto" else args.tile
    if args.overlap < 0 or (side and args.overlap > side // 2):
        print(
            f"error: --tile {args.tile} --overlap {args.overlap}: need 0 <= overlap <= tile / 2",
            file=sys.stderr,
        )
        return 2
    try:
        device = pick_device(args.device)
        checkpoint, inputs = _split_checkpoint(args.inputs, args.net)
        if checkpoint is not None and args.checkpoint is not None:
            raise InputError(f"{checkpoint}: pass the checkpoint once, as --checkpoint")
        jobs = resolve_inputs(inputs)
        # Before any model is loaded or image deblurred; one writer per --out.
        owned.enter_context(claim_folder(args.out, "--out", "pass another --out"))
        net = generator_from_options(args, checkpoint).to(device)
        forward_runner(net, device, args.runtime, args.bf16)  # a runtime that cannot run: now
    except (UserError, ValueError) as err:
        if debug_requested(args.debug):
            raise
        print(error_text(err), file=sys.stderr)
        return 2
    report = predict_files(
        net,
        jobs,
        args.out,
        tile=args.tile or None,
        overlap=args.overlap,
        bf16=args.bf16,
        self_ensemble=args.self_ensemble,
        runtime=args.runtime,
        overwrite=args.overwrite,
        suffix=suffix,
    )
    for line in report.failed:
        print(f"error: {line}", file=sys.stderr)
    print(report.summary(args.out))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
