"""Convert between paired folders and pix2pix-style side-by-side AB images.

``concat A B OUT``: files with the same relative name (extension aside) in A and B become one
image with A on the left and B on the right. ``split AB OUT_A OUT_B`` cuts each AB image back
into its halves. Outputs are PNG, 16-bit when a source is; a rerun skips finished outputs.

Example::

    python -m data_tools.ab concat pairs/blur pairs/sharp pairs_ab/
    python -m data_tools.ab split pairs_ab/ blur/ sharp/
"""

from __future__ import annotations

import argparse
import logging
import sys
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
    relative_stem,
    run_tasks,
    setup_logging,
    unwritable,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConcatJob:
    a: Path
    b: Path
    out: Path


@dataclass(frozen=True)
class SplitJob:
    ab: Path
    out_a: Path
    out_b: Path


def concat_pair(job: ConcatJob) -> Outcome:
    import torch

    from realblur_gan.data.io import read_image, write_image

    if job.out.exists():
        return Outcome(SKIPPED)
    a, info_a = read_image(job.a)
    b, info_b = read_image(job.b)
    if a.shape[1:] != b.shape[1:]:
        return Outcome(
            FAILED,
            f"{job.b}: size {tuple(b.shape[1:])} differs from {job.a} {tuple(a.shape[1:])}; "
            "resize one of them",
        )
    channels = max(a.shape[0], b.shape[0])  # a gray half is shown as RGB beside a colour one
    a, b = (x.expand(channels, -1, -1) if x.shape[0] == 1 else x for x in (a, b))
    bits = 16 if max(info_a.bit_depth, info_b.bit_depth) > 8 else 8
    write_image(job.out, torch.cat([a, b], dim=-1), bit_depth=bits)
    return Outcome(DONE)


def split_image(job: SplitJob) -> Outcome:
    from realblur_gan.data.io import read_image, write_image

    if all_exist((job.out_a, job.out_b)):
        return Outcome(SKIPPED)
    ab, info = read_image(job.ab)
    width = ab.shape[-1]
    if width % 2:
        return Outcome(FAILED, f"{job.ab}: odd width {width}, not an AB pair of equal halves")
    bits = 16 if info.bit_depth > 8 else 8
    write_image(job.out_a, ab[..., : width // 2], bit_depth=bits)
    write_image(job.out_b, ab[..., width // 2 :], bit_depth=bits)
    return Outcome(DONE)


def _concat(args: argparse.Namespace) -> int:
    from realblur_gan.data.io import ImageFolderError, list_images

    try:
        a_files = {relative_stem(p, args.a_dir): p for p in list_images(args.a_dir)}
        b_files = {relative_stem(p, args.b_dir): p for p in list_images(args.b_dir)}
    except ImageFolderError as err:
        return cli_error(str(err))
    only_a = sorted(a_files.keys() - b_files.keys())
    only_b = sorted(b_files.keys() - a_files.keys())
    for name in only_a:
        logger.warning("%s: no partner in %s, ignored", a_files[name], args.b_dir)
    for name in only_b:
        logger.warning("%s: no partner in %s, ignored", b_files[name], args.a_dir)
    jobs = [
        ConcatJob(a_files[name], b_files[name], args.out_dir / f"{name}.png")
        for name in sorted(a_files.keys() & b_files.keys())
    ]
    if not jobs:
        return cli_error(f"{args.a_dir} and {args.b_dir} share no file names")
    report = run_tasks(concat_pair, jobs, args.workers, "ab concat")
    unpaired = f", {len(only_a) + len(only_b)} unpaired" if only_a or only_b else ""
    return finish(report, f"ab concat{unpaired}", args.out_dir)


def _split(args: argparse.Namespace) -> int:
    from realblur_gan.data.io import ImageFolderError, list_images

    try:
        files = list_images(args.ab_dir)
    except ImageFolderError as err:
        return cli_error(str(err))
    jobs = []
    for path in files:
        name = relative_stem(path, args.ab_dir)
        jobs.append(SplitJob(path, args.out_a / f"{name}.png", args.out_b / f"{name}.png"))
    report = run_tasks(split_image, jobs, args.workers, "ab split")
    return finish(report, "ab split", f"{args.out_a}, {args.out_b}")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("ab", __doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    concat = commands.add_parser("concat", help="paired folders A, B -> AB images")
    concat.add_argument("a_dir", type=Path, help="left halves (e.g. blur)")
    concat.add_argument("b_dir", type=Path, help="right halves (e.g. sharp)")
    concat.add_argument("out_dir", type=Path, help="output folder of AB images")
    split = commands.add_parser("split", help="AB images -> paired folders A, B")
    split.add_argument("ab_dir", type=Path, help="folder of AB images")
    split.add_argument("out_a", type=Path, help="output folder for the left halves")
    split.add_argument("out_b", type=Path, help="output folder for the right halves")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    outs = [args.out_dir] if args.command == "concat" else [args.out_a, args.out_b]
    problem = unwritable(*outs)
    if problem:
        return cli_error(problem)
    return _concat(args) if args.command == "concat" else _split(args)


if __name__ == "__main__":
    sys.exit(main())
