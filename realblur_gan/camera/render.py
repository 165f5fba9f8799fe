"""The camera's parameters for one batch, and the one renderer every blur goes through.

The synthetic blurs (:mod:`realblur_gan.camera.synthetic`) draw a :class:`CameraParams` from
ranges, the learnable camera (:class:`realblur_gan.nets.ShakeBlurNet`) predicts one from its
learned statistics, and both hand it to :func:`render`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor

from realblur_gan.camera import ops

logger = logging.getLogger(__name__)

__all__ = ["CameraParams", "render"]


@dataclass
class CameraParams:
    """Everything that happens to one batch of sharp photos on the way to a blurry one.

    Per-image values are tensors with one entry (or row) per image, on any device and in any
    float dtype (the renderer moves them to the images'); the others are switches shared by the
    batch. A step whose value is None is switched off.

    Attributes:
        kernels: blur kernels (non-negative, summing to 1), applied in linear light: one per
            image, or a ``G x G`` lattice per image for blur that changes across it
            (:func:`realblur_gan.camera.ops.convolve_varying`).
        tone_curve: the camera's tone curve (see :data:`realblur_gan.camera.TONE_CURVES`); None
            treats the values as linear light already.
        gamma: exponent of the ``"gamma"`` and ``"camera"`` curves.
        saturation: factor applied in linear light to the pixels the sharp photo had clipped
            (brightest channel >= ``saturation_threshold``): light brighter than the sensor's
            white, which the blur spreads before the sensor clips.
        saturation_threshold: input value from which a pixel counts as clipped.
        exposure: gain applied in linear light after the blur, before the sensor clips.
        white_balance: per-channel gains of the camera's white balance (the RAW is the output
            divided by them); RGB images only.
        bayer_pattern: go through a Bayer mosaic of this pattern and bilinear demosaicing (see
            :data:`realblur_gan.camera.BAYER_PATTERNS`); RGB images only.
        shot: photon-noise gain on the RAW signal (variance ``shot * x``).
        read: read-noise standard deviation on the RAW signal. Noise is added when ``shot`` or
            ``read`` is given (the missing one counts as 0).
        jpeg_quality: JPEG quality 1-100 of the written file.
        floor: distance kept from the ends of [0, 1] where a tone curve's or the noise's
            square root's slope is infinite; a differentiable camera needs a small positive one,
            0 leaves every value exact.

    Shape:
        - kernels: :math:`(B, k, k)` or :math:`(B, G, G, k, k)`
        - saturation, exposure, shot, read, jpeg_quality: :math:`(B,)`
        - white_balance: :math:`(B, 3)`
    """

    kernels: Tensor | None = None
    tone_curve: str | None = "gamma"
    gamma: float = 2.2
    saturation: Tensor | None = None
    saturation_threshold: float = 0.98
    exposure: Tensor | None = None
    white_balance: Tensor | None = None
    bayer_pattern: str | None = None
    shot: Tensor | None = None
    read: Tensor | None = None
    jpeg_quality: Tensor | None = None
    floor: float = 0.0

    def __post_init__(self) -> None:
        if self.tone_curve is not None and self.tone_curve not in ops.TONE_CURVES:
            raise ValueError(
                f"tone_curve must be one of {ops.TONE_CURVES}, got {self.tone_curve!r}"
            )
        if self.bayer_pattern is not None and self.bayer_pattern not in ops.BAYER_PATTERNS:
            raise ValueError(
                f"bayer_pattern must be one of {ops.BAYER_PATTERNS}, got {self.bayer_pattern!r}"
            )
        if self.gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma!r}")


def render(
    images: Tensor, params: CameraParams, generator: torch.Generator | None = None
) -> Tensor:
    """Blur sharp photos the way a camera does, with the given parameters.

    The steps follow the light through a camera (Rim et al., ECCV 2022), each skipped when its
    parameter is None: tone curve undone (display -> linear light) -> clipped highlights boosted
    -> blur -> exposure gain -> inverse white balance -> Bayer mosaic -> sensor clipping at 1 ->
    Poisson-Gaussian noise -> demosaicing -> white balance -> tone curve -> JPEG. Gray images
    skip the white balance and the mosaic (no colour filter), as do images under 2x2 the mosaic.

    Differentiable in ``images`` and in every tensor parameter but the JPEG quality (the JPEG
    round trip itself is not differentiable); keep ``params.floor`` > 0 where gradients must
    stay finite at black pixels.

    Args:
        images: sharp photos in [0, 1] (display values, or linear without a tone curve).
        params: the camera, one value per image where it varies (see :class:`CameraParams`).
        generator: source of the noise; None draws from torch's global generator.

    Returns:
        The blurry photos, in [0, 1], a new tensor.

    Shape:
        - images, output: :math:`(B, C, H, W)`

    Example:
        >>> params = CameraParams(kernels=torch.full((2, 3, 3), 1 / 9))
        >>> render(torch.rand(2, 3, 16, 16), params).shape
        torch.Size([2, 3, 16, 16])
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    b, c, h, w = images.shape

    def per_image(value: Tensor, *shape: int) -> Tensor:
        return value.to(device=images.device, dtype=images.dtype).view(b, *shape)

    curve, floor = params.tone_curve, params.floor
    # Every step returns a fresh tensor or works in place on one (never on ``images``): a few
    # passes over a large image. Autograd refuses any in-place step a gradient would need.
    x = (
        images.clamp(0.0, 1.0)
        if curve is None
        else ops.to_linear(images, curve, params.gamma, floor)
    )
    if params.saturation is not None:
        clipped = images.amax(dim=1, keepdim=True) >= params.saturation_threshold
        x.mul_(torch.where(clipped, per_image(params.saturation, 1, 1, 1), 1.0))
    if params.kernels is not None and params.kernels.ndim == 5:
        x = ops.convolve_varying(x, params.kernels)
    elif params.kernels is not None:
        x = ops.convolve(x, params.kernels)
    if params.exposure is not None:
        x.mul_(per_image(params.exposure, 1, 1, 1))
    colour = c == 3
    gains = params.white_balance if colour else None
    if gains is not None:
        x = ops.white_balance(x, gains, undo=True)
    bayer = colour and params.bayer_pattern is not None and min(h, w) >= 2
    if colour and params.bayer_pattern is not None and not bayer:
        logger.debug("image of %dx%d px is too small for a Bayer mosaic: skipped", h, w)
    if bayer:
        x = ops.mosaic(x, params.bayer_pattern)
    # The sensor's full well: highlights boosted past 1 and blurred become flat plateaus.
    x.clamp_(0.0, 1.0)
    if params.shot is not None or params.read is not None:
        zeros = torch.zeros(b, device=images.device, dtype=images.dtype)
        shot = zeros if params.shot is None else per_image(params.shot)
        read = zeros if params.read is None else per_image(params.read)
        x = ops.add_poisson_gaussian_noise(x, shot, read, generator, floor)
    if bayer:
        x = ops.demosaic_bilinear(x, params.bayer_pattern)
    if gains is not None:
        x = ops.white_balance(x, gains)
    x = x.clamp_(0.0, 1.0) if curve is None else ops.from_linear(x, curve, params.gamma, floor)
    if params.jpeg_quality is not None:
        x = ops.jpeg_compress(x, [int(q) for q in params.jpeg_quality])
    return x
