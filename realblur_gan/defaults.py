"""Default settings that the command-line tools show in ``--help``, as plain values.

The modules that use them (:mod:`realblur_gan.inference.tiling`, :mod:`realblur_gan.blind.map`,
:mod:`realblur_gan.blind.selfdeblur`) import them from here, so a tool can print its help, with
the true defaults, before it imports torch (seconds on a loaded machine). Imports nothing heavy.
"""

from __future__ import annotations

import argparse
from typing import Literal

__all__ = [
    "BLIND_METHODS",
    "DEFAULT_NET",
    "DEFAULT_OVERLAP",
    "DEFAULT_TILE",
    "MAP_ITERATIONS",
    "MAP_PRIORS",
    "RUNTIMES",
    "SELFDEBLUR_ITERATIONS",
    "TILE_SIDE",
    "WHOLE_IMAGE_PIXELS",
    "Tile",
    "parse_tile",
]

#: The net a trained checkpoint is read for unless told otherwise: DBGAN's generator.
DEFAULT_NET = "dbgan_g"

#: ``tile=None``: one pass; an int: tiles of at most that side; ``"auto"``: by image size and
#: runtime (:func:`realblur_gan.inference.tiling.auto_tile`).
Tile = int | Literal["auto"] | None
DEFAULT_TILE: Tile = "auto"
#: The pixels neighbouring tiles share.
DEFAULT_OVERLAP = 32
#: ``"auto"`` tiles larger images with tiles of this side: a 12 MP photo then peaks below
#: 1.5 GB resident in ``realblur-deblur`` (``scripts/bench_predict.py``).
TILE_SIDE = 512
#: The most pixels ``"auto"`` runs in one pass, where the runtime is faster that way
#: (:data:`realblur_gan.inference.runtime.ONE_PASS_PIXELS`): onnxruntime runs a 1280x720 frame 1.45x
#: faster whole than in six 512 px tiles, for ~0.5 GB more memory at its peak.
WHOLE_IMAGE_PIXELS = 1 << 20
#: The forward-pass runtimes inference can use (:mod:`realblur_gan.inference.runtime`).
RUNTIMES = ("auto", "torch", "onnxruntime")


def parse_tile(text: str) -> int | str:
    """A ``--tile`` value: ``auto``, or a tile side in pixels (0: no tiles)."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: pass auto or a side in pixels") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: pass auto, 0 (no tiles) or a positive side")
    return value


#: Adam steps of SelfDeblur: the paper uses 5000 with nets up to 16x wider; these do no worse
#: at 600 on a CPU (README, "Blind baselines").
SELFDEBLUR_ITERATIONS = 600
#: Image steps of blind MAP: Perrone & Favaro's 1000 per scale, each one cheap.
MAP_ITERATIONS = 8000
#: The image priors blind MAP offers.
MAP_PRIORS = ("tv", "sparse")

#: The blind methods by name, with their default budgets.
BLIND_METHODS = {"selfdeblur": SELFDEBLUR_ITERATIONS, "map": MAP_ITERATIONS}
