"""Blind deconvolution baselines: the kernel and the sharp image from one blurry photo.

- :mod:`~realblur_gan.blind.selfdeblur`: SelfDeblur (Ren et al., CVPR 2020), two generators
  (image and kernel) fitted to one image;
- :mod:`~realblur_gan.blind.map`: the learned-kernel deconvolution layer, classical MAP with a
  TV or sparse-gradient prior, coarse to fine;
- :mod:`~realblur_gan.blind.common`: the valid-convolution forward model, luma/chroma split,
  kernel similarity and kernel PNGs;
- :mod:`~realblur_gan.blind.cli`: ``python -m realblur_gan.blind METHOD INPUT --out DIR``.

Both are registered in :data:`realblur_gan.blind.registry.BLIND_BASELINES`, so
``realblur-evaluate --baselines selfdeblur,map`` runs them. The names below are imported on
first use, so ``python -m realblur_gan.blind --help`` does not wait for torch. SelfDeblur's
function is :func:`realblur_gan.blind.selfdeblur.selfdeblur`: ``realblur_gan.blind.selfdeblur``
is its module.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the submodule that defines it
_EXPORTS = {
    "BlindError": "common",
    "BlindResult": "common",
    "kernel_similarity": "common",
    "write_kernel": "common",
    "MAPOptions": "map",
    "map_deblur": "map",
    "SelfDeblurOptions": "selfdeblur",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
