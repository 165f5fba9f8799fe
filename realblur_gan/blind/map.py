"""The learned-kernel deconvolution layer: classical MAP blind deconvolution with autograd.

A kernel ``k`` and a latent sharp image ``x`` are fitted together so that ``k * x`` reproduces
the blurry image ``y``:

    min_{x, k}  mean((k * x - y)^2) + lambda * R(x)   subject to  k >= 0,  sum(k) = 1

``R`` is the image prior that makes the problem well-posed: total variation (``"tv"``) or a
hyper-Laplacian sparse-gradient prior (``"sparse"``, ``|dx|^0.8 + |dy|^0.8``). Autograd supplies
the gradients; the two unknowns take turns: a gradient step on the image, then one on the kernel
followed by its projection onto the constraints (clamp at 0, rescale to sum 1), which keeps the
exact zeros a sparse kernel has and a softmax (SelfDeblur's parametrisation) cannot reach.

Minimising this energy naively drifts to the "no-blur" answer (a delta kernel and ``x = y``).
The scheme of Perrone & Favaro (*Total Variation Blind Deconvolution: The Devil is in the
Details*, CVPR 2014) avoids it, and is followed here:

- coarse to fine: the problem is first solved on a downsampled image with a small kernel and a
  strong prior (a cartoon latent, which only a spread-out kernel can explain); each solution
  seeds the next, larger scale, whose prior weight is smaller;
- small, steady steps: each gradient is divided by its largest entry, so a step moves the image
  (the kernel) by a fixed fraction of its peak; image and kernel sharpen together instead of
  one racing ahead to a poor local optimum. Faster steps (Adam on the image, accelerated
  projected gradient on the kernel) were tried: they win on easy images and lose on hard ones
  (periodic textures, long straight lines), where the kernel locks onto the wrong structure.

Kernel entries below 5 % of the peak are dropped at the end (as Cho & Lee do), and a closing
non-blind pass (Adam, kernel fixed, weaker prior) restores detail the strong priors flattened.

Example::

    result = map_deblur(blurry, kernel_size=31)
    result.restored, result.kernels
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from realblur_gan.blind.common import (
    BlindError,
    BlindResult,
    check_kernel_size,
    crop_restored,
    deterministic,
    iteration_bar,
    merge_luma,
    split_luma,
)
from realblur_gan.camera import valid_convolve
from realblur_gan.defaults import MAP_ITERATIONS, MAP_PRIORS

logger = logging.getLogger(__name__)

__all__ = ["MAPOptions", "image_prior", "map_deblur"]


@dataclass(frozen=True)
class MAPOptions:
    """Knobs of :func:`map_deblur`; the defaults suit 8-bit photos with mild noise.

    Prior weights multiply a per-pixel mean, so they do not depend on the image size.

    Attributes:
        prior: ``"tv"`` (isotropic total variation) or ``"sparse"`` (hyper-Laplacian).
        weight: prior weight at the finest scale; each coarser scale multiplies it by
            ``weight_growth``, and scales stop where that would pass ``max_weight``.
        weight_growth: prior weight factor from one scale to the next coarser one.
        max_weight: the coarsest scale's weight bound (it sets how many scales there are).
        kernel_shrink: the kernel (and image) shrink by this factor per coarser scale.
        min_kernel: no scale has a smaller kernel.
        image_travel: how far the latent may move per scale, in multiples of its peak: each
            step moves it by at most ``image_travel / steps`` of its peak (Perrone & Favaro's
            ``5e-3`` per step at 1000 steps per scale), so a smaller budget takes larger steps.
        kernel_travel: the same for the kernel (their ``1e-3`` per step).
        threshold: kernel entries below this fraction of the peak are zeroed at the end.
        final_weight: prior weight of the closing non-blind pass.
        final_lr: Adam learning rate of that pass.
        final_share: share of the iteration budget spent on that pass.
        alpha: exponent of the sparse prior.
    """

    prior: str = "tv"
    weight: float = 1.2e-3
    weight_growth: float = 1.9
    max_weight: float = 0.2
    kernel_shrink: float = 1.1
    min_kernel: int = 3
    image_travel: float = 5.0
    kernel_travel: float = 1.0
    threshold: float = 0.05
    final_weight: float = 2e-3
    final_lr: float = 1e-2
    final_share: float = 0.05
    alpha: float = 0.8

    def __post_init__(self) -> None:
        if self.prior not in MAP_PRIORS:
            raise BlindError(f"unknown prior {self.prior!r}; choose from {', '.join(MAP_PRIORS)}")
        if not 0.0 <= self.final_share < 1.0:
            raise BlindError(f"final_share must be in [0, 1), got {self.final_share}")
        if self.kernel_shrink <= 1.0 or self.weight_growth < 1.0:
            raise BlindError("kernel_shrink must be > 1 and weight_growth >= 1")


# --------------------------------------------------------------------------------------------------
# Energy pieces
# --------------------------------------------------------------------------------------------------


def _gradients(x: Tensor) -> tuple[Tensor, Tensor]:
    """Forward differences along W and H, both cropped to the common (H - 1, W - 1) grid."""
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return dx, dy


def image_prior(x: Tensor, prior: str = "tv", alpha: float = 0.8, eps: float = 1e-3) -> Tensor:
    """Mean image prior per image: total variation or a hyper-Laplacian on the gradients.

    ``eps`` rounds off the kink at zero gradient, where neither prior is differentiable.

    Shape:
        - x: :math:`(B, C, H, W)`
        - output: :math:`(B,)`
    """
    dx, dy = _gradients(x)
    if prior == "tv":
        value = torch.sqrt(dx * dx + dy * dy + eps * eps)
    elif prior == "sparse":
        value = (dx * dx + eps * eps).pow(alpha / 2) + (dy * dy + eps * eps).pow(alpha / 2)
    else:
        raise BlindError(f"unknown prior {prior!r}; choose from {', '.join(MAP_PRIORS)}")
    return value.flatten(1).mean(1)


def _project(kernels: Tensor) -> Tensor:
    """Clamp at 0 and rescale each kernel to sum 1; a kernel that vanished becomes a delta."""
    kernels = kernels.clamp(min=0.0)
    total = kernels.sum(dim=(-2, -1), keepdim=True)
    k = kernels.shape[-1]
    delta = torch.zeros_like(kernels)
    delta[:, k // 2, k // 2] = 1.0
    return torch.where(total > 1e-12, kernels / total.clamp_min(1e-12), delta)


def _normalised(grad: Tensor) -> Tensor:
    """Each image's gradient divided by its largest magnitude (so the step is a fixed size)."""
    peak = grad.abs().flatten(1).amax(1).clamp_min(1e-30)
    return grad / peak.view(-1, *([1] * (grad.ndim - 1)))


def _peak(x: Tensor) -> Tensor:
    return x.flatten(1).amax(1).view(-1, *([1] * (x.ndim - 1)))


def _energy(
    y: Tensor, latent: Tensor, kernels: Tensor, weight: float, options: MAPOptions
) -> Tensor:
    """Sum over the batch of each image's ``mean((k * x - y)^2) + weight * prior(x)``.

    Summed: each image owns its unknowns, so its gradients are the ones it would have alone.
    """
    residual = valid_convolve(latent, kernels) - y
    energy = residual.square().flatten(1).mean(1)
    if weight:
        energy = energy + weight * image_prior(latent, options.prior, options.alpha)
    return energy.sum()


def _blind_steps(
    y: Tensor,
    latent: Tensor,
    kernels: Tensor,
    steps: int,
    weight: float,
    options: MAPOptions,
    bar: tqdm,
) -> tuple[Tensor, Tensor]:
    """Alternating normalised gradient steps on the latent and the kernel at one scale.

    Each step moves the latent and the kernel by a fixed fraction of their peaks (see
    ``image_travel`` and ``kernel_travel`` in :class:`MAPOptions`) and projects the kernel back
    onto the constraints.
    """
    lr_image = options.image_travel / max(steps, 1)
    lr_kernel = options.kernel_travel / max(steps, 1)
    for _ in range(steps):
        latent = latent.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(_energy(y, latent, kernels, weight, options), latent)
        latent = (latent - lr_image * _peak(latent) * _normalised(grad)).detach()
        # The kernel's gradient is taken at the updated latent (the prior does not involve k).
        kernels = kernels.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(_energy(y, latent, kernels, 0.0, options), kernels)
        kernels = kernels.detach()
        kernels = _project(kernels - lr_kernel * _peak(kernels) * _normalised(grad))
        bar.update(1)
    return latent, kernels


def _deconvolve(
    y: Tensor, latent: Tensor, kernels: Tensor, steps: int, options: MAPOptions, bar: tqdm
) -> Tensor:
    """Non-blind MAP with the kernel fixed: Adam on the latent, weak prior."""
    latent = latent.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=options.final_lr)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        _energy(y, latent, kernels, options.final_weight, options).backward()
        optimizer.step()
        with torch.no_grad():
            latent.clamp_(0.0, 1.0)
        bar.update(1)
    return latent.detach()


# --------------------------------------------------------------------------------------------------
# Coarse to fine
# --------------------------------------------------------------------------------------------------


def kernel_schedule(kernel_size: int, options: MAPOptions | None = None) -> list[tuple[int, float]]:
    """``(kernel size, prior weight)`` of every scale, coarsest first, the last at full size.

    Example:
        >>> kernel_schedule(31)[-2:]
        [(27, 0.00228), (31, 0.0012)]
    """
    options = options or MAPOptions()
    scales = [(kernel_size, options.weight)]
    while True:
        k, weight = scales[-1]
        smaller = round(k / options.kernel_shrink)
        smaller = min(smaller - (1 - smaller % 2), k - 2)  # odd, and strictly smaller
        weight *= options.weight_growth
        if smaller < options.min_kernel or weight > options.max_weight:
            break
        scales.append((smaller, round(weight, 8)))
    return scales[::-1]


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _pad_latent(image: Tensor, k: int) -> Tensor:
    """Extend an image by ``k // 2`` px on every side (edge pixels repeated): a latent seed."""
    return F.pad(image, (k // 2,) * 4, mode="replicate")


def _upsample_kernels(kernels: Tensor, k: int) -> Tensor:
    """Resample centred kernels to ``k x k`` (centre pixel stays the centre), then project."""
    out = F.interpolate(kernels[:, None], size=(k, k), mode="bilinear", align_corners=True)
    return _project(out[:, 0])


def map_deblur(
    images: Tensor,
    kernel_size: int = 31,
    iterations: int = MAP_ITERATIONS,
    options: MAPOptions | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    names: list[str] | None = None,
    progress: bool = False,
) -> BlindResult:
    """Blind MAP deconvolution of a batch of same-size images, each with its own kernel.

    Colour images are deblurred on luma (BT.601 Y) and keep their chroma (see
    :func:`~realblur_gan.blind.common.split_luma`).

    Args:
        images: blurry images in [0, 1], gray or RGB.
        kernel_size: side of the estimated kernel (odd, smaller than the image), a little
            larger than the blur's extent.
        iterations: image steps in all: ``options.final_share`` of them for the closing
            non-blind pass, the rest shared evenly by the scales (see :func:`kernel_schedule`).
        options: see :class:`MAPOptions`.
        seed: accepted for the same signature as :func:`~realblur_gan.blind.selfdeblur`; the
            method draws nothing at random (it starts from the blurry image and a flat kernel).
        device: where to optimise; None keeps the images' device.
        names: image names for the progress bar.
        progress: show a progress bar.

    Returns:
        Restored images and estimated kernels (on the images' original device).

    Shape:
        - images: :math:`(B, C, H, W)`, C in {1, 3}
        - restored: :math:`(B, C, H, W)`; kernels: :math:`(B, k, k)`
    """
    del seed
    options = options or MAPOptions()
    start = time.perf_counter()
    if iterations < 1:
        raise BlindError(f"iterations must be >= 1, got {iterations}")
    home = images.device
    device = torch.device(device) if device is not None else home
    y_full, chroma = split_luma(images.to(device=device, dtype=torch.float32))
    b, _, h, w = y_full.shape
    check_kernel_size(kernel_size, h, w, names[0] if names and b == 1 else "image")

    scales = kernel_schedule(kernel_size, options)
    final_steps = round(iterations * options.final_share)
    blind_steps = max(iterations - final_steps, len(scales))
    per_scale = [blind_steps // len(scales)] * len(scales)
    per_scale[-1] += blind_steps - sum(per_scale)
    logger.info("MAP scales (kernel px, prior weight): %s", scales)
    if per_scale[0] < 100:
        # Measured: below ~100 steps per scale the steps get so large that the kernel lands on
        # streaks and the image rings; it degrades gracefully above that.
        logger.warning(
            "MAP: %d iterations give %d steps per scale for %d scales; the kernel needs a few "
            "hundred per scale (the default budget is %d)",
            iterations,
            per_scale[0],
            len(scales),
            MAP_ITERATIONS,
        )

    latent: Tensor | None = None
    kernels: Tensor | None = None
    with deterministic(device), iteration_bar(blind_steps + final_steps, names, progress) as bar:
        for (k, weight), steps in zip(scales, per_scale, strict=True):
            scale = k / kernel_size
            size = (max(k + 1, round(h * scale)), max(k + 1, round(w * scale)))
            y = _resize(y_full, size)
            if latent is None or kernels is None:
                # Flat over the coarsest support: no guess about the blur's shape.
                kernels = torch.full((b, k, k), 1.0 / (k * k), device=device)
                latent = _pad_latent(y, k)
            else:
                # Seed this scale from the last: its restored crop (aligned with y) upsampled
                # and re-extended, and its kernel resampled to the larger support.
                previous, kernels = crop_restored(latent, kernels)
                kernels = _upsample_kernels(kernels, k)
                latent = _pad_latent(_resize(previous, size), k)
            latent, kernels = _blind_steps(y, latent, kernels, steps, weight, options, bar)
        assert latent is not None and kernels is not None
        if options.threshold:
            small = kernels < options.threshold * _peak(kernels)
            kernels = _project(torch.where(small, 0.0, kernels))
        if final_steps:
            latent = _deconvolve(y_full, latent, kernels, final_steps, options, bar)
    restored, kernels = crop_restored(latent, kernels)
    out = merge_luma(restored, chroma)
    return BlindResult(out.to(home), kernels.to(home), time.perf_counter() - start)
