"""Check an image dataset before training on it.

Given one folder, every image under it is checked; when paths contain a ``blur`` folder beside a
``sharp`` (or ``gt``) folder, as in ``blur/x.png`` + ``sharp/x.png`` or GoPro's
``<seq>/blur/x.png`` + ``<seq>/sharp/x.png``, those files are also checked as pairs. Given two
folders, files with the same relative name (extension aside) are pairs.

Errors (exit status 1): unreadable files, images smaller than ``--min-size``, a file with no
partner, pairs whose sizes differ. Warnings (errors with ``--strict``): unusual modes (palette,
CMYK, 16-bit, alpha, 1-bit, float) and exact duplicates (identical decoded pixels).

Example::

    python -m data_tools.verify datasets/GOPRO/train --min-size 256 --workers 2
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from data_tools._common import DONE, Outcome, cli_error, make_parser, run_tasks, setup_logging

_ROLES = {"blur": "blur", "sharp": "sharp", "gt": "sharp"}
_USUAL_MODES = frozenset({"L", "RGB"})


@dataclass(frozen=True)
class Facts:
    """What one file turned out to be (returned from the workers)."""

    path: Path
    error: str | None = None
    mode: str = ""
    bit_depth: int = 0
    has_alpha: bool = False
    size: tuple[int, int] = (0, 0)
    digest: str = ""


def inspect_file(path: Path) -> Facts:
    from realblur_gan.data.io import ImageReadError, read_image

    try:
        image, info = read_image(path)
    except ImageReadError as err:
        return Facts(path, error=str(err))
    digest = hashlib.sha256(image.numpy().tobytes() + str(tuple(image.shape)).encode()).hexdigest()
    return Facts(path, None, info.mode, info.bit_depth, info.alpha is not None, info.size, digest)


def _inspect_task(path: Path) -> Outcome:
    return Outcome(DONE, value=inspect_file(path))


def pair_key(path: Path, root: Path) -> tuple[str, str] | None:
    """``(role, key)`` for a file inside a blur/sharp/gt folder, else None."""
    parts = path.relative_to(root).with_suffix("").parts
    for i, part in enumerate(parts[:-1]):
        role = _ROLES.get(part.lower())
        if role is not None:
            return role, "/".join((*parts[:i], "*", *parts[i + 1 :]))
    return None


@dataclass
class Findings:
    errors: list[str]
    warnings: list[str]


def check(
    facts: list[Facts], pairs: list[tuple[Path | None, Path | None]], min_size: int
) -> Findings:
    """Turn per-file facts and the pairing into error and warning lines."""
    found = Findings([], [])
    by_path = {f.path: f for f in facts}
    by_digest: dict[str, list[Path]] = defaultdict(list)
    for f in facts:
        if f.error is not None:
            found.errors.append(f"unreadable: {f.error}")
            continue
        h, w = f.size
        if min(h, w) < min_size:
            found.errors.append(f"too small: {f.path}: {w}x{h} px is below --min-size {min_size}")
        odd = []
        if f.mode not in _USUAL_MODES:
            odd.append(f"mode {f.mode}")
        if f.bit_depth not in (8,):
            odd.append(f"{f.bit_depth}-bit")
        if f.has_alpha:
            odd.append("alpha channel")
        if odd:
            found.warnings.append(f"unusual: {f.path}: {', '.join(odd)}")
        by_digest[f.digest].append(f.path)
    for paths in by_digest.values():
        if len(paths) > 1:
            others = ", ".join(str(p) for p in paths[1:])
            found.warnings.append(f"duplicate: {paths[0]} has the same pixels as {others}")
    for a, b in pairs:
        if a is None or b is None:
            found.errors.append(f"unpaired: {a or b}: no partner with the same name")
            continue
        fa, fb = by_path[a], by_path[b]
        if fa.error is None and fb.error is None and fa.size != fb.size:
            found.errors.append(
                f"size mismatch: {a} is {fa.size[1]}x{fa.size[0]} but {b} is "
                f"{fb.size[1]}x{fb.size[0]}"
            )
    return found


def _pairs_one_folder(root: Path, files: list[Path]) -> list[tuple[Path | None, Path | None]]:
    groups: dict[str, dict[str, Path]] = defaultdict(dict)
    for path in files:
        found = pair_key(path, root)
        if found is not None:
            groups[found[1]][found[0]] = path
    if not groups or not {r for g in groups.values() for r in g} >= {"blur", "sharp"}:
        return []  # not a paired layout: nothing to pair
    return [(g.get("blur"), g.get("sharp")) for _, g in sorted(groups.items())]


def _pairs_two_folders(
    a_root: Path, a_files: list[Path], b_root: Path, b_files: list[Path]
) -> list[tuple[Path | None, Path | None]]:
    a_map = {p.relative_to(a_root).with_suffix("").as_posix(): p for p in a_files}
    b_map = {p.relative_to(b_root).with_suffix("").as_posix(): p for p in b_files}
    return [(a_map.get(k), b_map.get(k)) for k in sorted(a_map.keys() | b_map.keys())]


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("verify", __doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="dataset folder (or the first of two)")
    parser.add_argument("partner", type=Path, nargs="?", help="second folder, paired by name")
    parser.add_argument("--min-size", type=int, default=64, help="smallest allowed side in px")
    parser.add_argument("--strict", action="store_true", help="treat warnings as errors")
    args: argparse.Namespace = parser.parse_args(argv)
    setup_logging(args.verbose)
    from realblur_gan.data.io import ImageFolderError, list_images

    try:
        files = list_images(args.folder)
        partner_files = list_images(args.partner) if args.partner else []
    except ImageFolderError as err:
        return cli_error(str(err))
    if args.partner:
        pairs = _pairs_two_folders(args.folder, files, args.partner, partner_files)
    else:
        pairs = _pairs_one_folder(args.folder, files)
    everything = files + partner_files
    report = run_tasks(_inspect_task, everything, args.workers, "verify")
    facts: list[Facts] = sorted(report.values, key=lambda f: str(f.path))
    found = check(facts, pairs, args.min_size)
    errors = found.errors + (found.warnings if args.strict else [])
    warnings = [] if args.strict else found.warnings
    for line in errors:
        print(f"error: {line}")
    for line in warnings:
        print(f"warning: {line}")
    paired = f", {len(pairs)} pairs" if pairs else ""
    verdict = "FAILED" if errors else "OK"
    print(
        f"verify {verdict}: {len(everything)} images{paired}, {len(errors)} errors, "
        f"{len(warnings)} warnings in {report.seconds:.1f} s"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
