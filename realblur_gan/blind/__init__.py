"""Blind deconvolution baselines: the kernel and the sharp image from one blurry photo.

- :mod:`~realblur_gan.blind.selfdeblur`: SelfDeblur (Ren et al., CVPR 2020), two generators
  (image and kernel) fitted to one image;
- :mod:`~realblur_gan.blind.map`: the learned-kernel deconvolution layer, classical MAP with a
  TV or sparse-gradient prior, coarse to fine;
- :mod:`~realblur_gan.blind.common`: the valid-convolution forward model, luma/chroma split,
  kernel similarity and kernel PNGs;
- :mod:`~realblur_gan.blind.cli`: ``python -m realblur_gan.blind METHOD INPUT --out DIR``.

Both are registered in :data:`realblur_gan.baselines.BLIND_BASELINES`, so
``realblur-evaluate --baselines selfdeblur,map`` runs them.
"""

from realblur_gan.blind.common import BlindError, BlindResult, kernel_similarity, write_kernel
from realblur_gan.blind.map import MAPOptions, map_deblur
from realblur_gan.blind.selfdeblur import SelfDeblurOptions, selfdeblur

__all__ = [
    "BlindError",
    "BlindResult",
    "MAPOptions",
    "SelfDeblurOptions",
    "kernel_similarity",
    "map_deblur",
    "selfdeblur",
    "write_kernel",
]
