"""Default settings that the command-line tools show in ``--help``, as plain values.

The modules that use them (:mod:`realblur_gan.inference`, :mod:`realblur_gan.blind.map`,
:mod:`realblur_gan.blind.selfdeblur`) import them from here, so a tool can print its help, with
the true defaults, before it imports torch (seconds on a loaded machine). Imports nothing.
"""

from __future__ import annotations

__all__ = [
    "BLIND_METHODS",
    "DEFAULT_OVERLAP",
    "DEFAULT_TILE",
    "MAP_ITERATIONS",
    "MAP_PRIORS",
    "SELFDEBLUR_ITERATIONS",
]

#: Tile side (px) of inference on large images, and the pixels neighbouring tiles share.
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32

#: Adam steps of SelfDeblur: the paper uses 5000 with nets up to 16x wider; these do no worse
#: at 600 on a CPU (README, "Blind baselines").
SELFDEBLUR_ITERATIONS = 600
#: Image steps of blind MAP: Perrone & Favaro's 1000 per scale, each one cheap.
MAP_ITERATIONS = 8000
#: The image priors blind MAP offers.
MAP_PRIORS = ("tv", "sparse")

#: The blind methods by name, with their default budgets.
BLIND_METHODS = {"selfdeblur": SELFDEBLUR_ITERATIONS, "map": MAP_ITERATIONS}
