"""The INPUT arguments of the tools that restore images: files, folders and globs.

``realblur-deblur`` and ``python -m realblur_gan.blind`` take the same inputs and write each
result at the same relative path under ``--out``.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from realblur_gan.errors import UserError

logger = logging.getLogger(__name__)

__all__ = ["InputError", "resolve_inputs"]

_GLOB_CHARS = frozenset("*?[")


class InputError(UserError, ValueError):
    """An INPUT argument matches no image; the message names it and the fix."""


def _glob_root(pattern: str) -> Path:
    """The folder before the first wildcard of a glob, to keep sub-folders in the output."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path()


def resolve_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[tuple[Path, Path]]:
    """Expand INPUT arguments (files, folders searched recursively, globs) to images.

    Args:
        inputs: the command line's INPUT arguments.

    Returns:
        ``(source, relative output path)`` pairs: a folder's images keep their sub-folders, a
        glob's keep their path below its fixed prefix, a file keeps its name.

    Raises:
        InputError: an argument matches no image.
    """
    from realblur_gan.data.io import IMAGE_EXTENSIONS, ImageFolderError, list_images

    found: dict[Path, Path] = {}
    for item in inputs:
        text = str(item)
        path = Path(text)
        pairs: list[tuple[Path, Path]]
        if path.is_dir():
            try:
                pairs = [(p, p.relative_to(path)) for p in list_images(path)]
            except ImageFolderError as err:
                raise InputError(str(err)) from None
        elif path.is_file():
            pairs = [(path, Path(path.name))]
        elif path.exists():
            raise InputError(f"{text}: not a regular file (a FIFO, device or socket); pass images")
        elif _GLOB_CHARS & set(text):
            root = _glob_root(text)
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            images = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
            if not images:
                raise InputError(f"{text}: the pattern matches no image; check it (quote it)")
            pairs = [(p, p.relative_to(root)) for p in images]
        else:
            raise InputError(f"{text}: no such file or folder; check the path")
        for source, rel in pairs:
            if rel in found and found[rel] != source:
                logger.warning("%s: same output name as %s, skipped", source, found[rel])
                continue
            found[rel] = source
    return [(source, rel) for rel, source in found.items()]
