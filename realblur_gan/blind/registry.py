"""The blind methods by name: what ``realblur-evaluate --baselines`` and the grid of the
generalisation benchmark run, with a default budget each.

Example::

    result = blind_deblur("map", blurry, kernel_size=31)   # result.restored, result.kernels
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from realblur_gan.blind.common import BlindResult
from realblur_gan.blind.map import MAPOptions, map_deblur
from realblur_gan.blind.selfdeblur import SelfDeblurOptions, selfdeblur
from realblur_gan.defaults import MAP_ITERATIONS, SELFDEBLUR_ITERATIONS

__all__ = ["BLIND_BASELINES", "BlindBaseline", "blind_deblur"]


@dataclass(frozen=True)
class BlindBaseline:
    """A blind method: estimates the kernel and the sharp image from the blurry image alone.

    Attributes:
        label: its name in tables.
        run: ``(images, kernel_size, iterations, options, seed, device, names, progress)``
            -> :class:`~realblur_gan.blind.common.BlindResult`.
        default_iterations: the budget used when none is given (practical on a CPU).
    """

    label: str
    run: Callable[..., BlindResult]
    default_iterations: int


BLIND_BASELINES: dict[str, BlindBaseline] = {
    "selfdeblur": BlindBaseline("SelfDeblur", selfdeblur, SELFDEBLUR_ITERATIONS),
    "map": BlindBaseline("MAP-TV", map_deblur, MAP_ITERATIONS),
}


def blind_deblur(
    name: str,
    images: Tensor,
    kernel_size: int = 31,
    iterations: int | None = None,
    *,
    options: MAPOptions | SelfDeblurOptions | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    names: list[str] | None = None,
    progress: bool = False,
) -> BlindResult:
    """Run the blind baseline ``name`` (a key of :data:`BLIND_BASELINES`) on a batch.

    Args:
        name: ``"selfdeblur"`` or ``"map"``.
        images: blurry images of one size in [0, 1], gray or RGB.
        kernel_size: side of the estimated kernel (odd, smaller than the images).
        iterations: optimisation budget; None for the method's default.
        options: the method's knobs (:class:`~realblur_gan.blind.map.MAPOptions` or
            :class:`~realblur_gan.blind.selfdeblur.SelfDeblurOptions`); None for defaults.
        seed: random seed (same seed, input, machine and thread count: same result).
        device: where to optimise; None keeps the images' device.
        names: image names for the progress bar.
        progress: show a per-image (per-batch) progress bar.

    Returns:
        The restored images and the estimated kernels.

    Shape:
        - images: :math:`(B, C, H, W)`
        - restored: :math:`(B, C, H, W)`; kernels: :math:`(B, k, k)`
    """
    if name not in BLIND_BASELINES:
        raise ValueError(
            f"unknown blind baseline {name!r}; choose from {', '.join(BLIND_BASELINES)}"
        )
    method = BLIND_BASELINES[name]
    budget = method.default_iterations if iterations is None else iterations
    return method.run(
        images,
        kernel_size,
        budget,
        options,
        seed=seed,
        device=device,
        names=names,
        progress=progress,
    )
