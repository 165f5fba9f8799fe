"""The synthetic blurs: samplers of camera parameters, rendered by the one camera.

Each blur draws a :class:`~realblur_gan.camera.CameraParams` per batch from its configured
ranges (:meth:`BlurSampler.draw`) and hands it to :func:`~realblur_gan.camera.render`, so the
three differ only in what they draw:

* :class:`SimpleBlur` -- random Gaussian, linear-motion or disk kernels applied directly to the
  sRGB values: the plain "synthetic pairs" the paper starts from.
* :class:`RealisticBlur` -- camera-shake trajectory kernels in linear light, with exposure gain,
  sensor saturation, Poisson-Gaussian noise, the camera's gamma and JPEG compression.
* :class:`CameraPipelineBlur` -- the RSBlur-style RAW pipeline around the shake: tone curves,
  clipped highlights, white balance, a Bayer mosaic, noise on the RAW, JPEG.

Randomness comes only from an optional ``torch.Generator``: the same seed gives the same blur,
and the order of draws is fixed (documented per sampler), so switching a step off leaves the
other draws alone where the sampler says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from realblur_gan.camera.kernels import (
    FrameExposures,
    Range,
    as_range,
    check_size_law,
    disk_kernel,
    gaussian_kernel,
    linear_motion_kernel,
    odd_sizes,
    shake_kernels,
    uniform,
    varying_shake_kernels,
)
from realblur_gan.camera.render import CameraParams, render

__all__ = ["BlurSampler", "CameraPipelineBlur", "RealisticBlur", "SimpleBlur"]

_CPU = torch.device("cpu")


def _size_range(value: int | Sequence[int], name: str) -> tuple[int, int]:
    """A ``(low, high)`` pair of positive ints (kernel sizes, JPEG qualities)."""
    lo, hi = as_range(value, name)
    if lo < 1 or lo != int(lo) or hi != int(hi):
        raise ValueError(f"{name} must be positive ints, got {value!r}")
    return int(lo), int(hi)


def _positive_range(value: Range | None, name: str, low: float = 0.0) -> tuple[float, float] | None:
    """A ``(low, high)`` pair whose low end is at least ``low``; None stays None (step off)."""
    if value is None:
        return None
    lo, hi = as_range(value, name)
    if lo < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return lo, hi


def _scale(u: Tensor, bounds: tuple[float, float], log: bool = False) -> Tensor:
    """Map U(0, 1) draws onto ``bounds``: uniformly, or log-uniformly when ``log`` and low > 0."""
    lo, hi = bounds
    if log and lo > 0:
        return torch.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * u)
    return lo + (hi - lo) * u


def _embed(kernels: list[Tensor], size: int) -> Tensor:
    """Centre odd-sized kernels in a common ``size`` x ``size`` grid, (N, size, size)."""
    out = torch.zeros(len(kernels), size, size)
    for i, kern in enumerate(kernels):
        off = (size - kern.shape[-1]) // 2
        out[i, off : off + kern.shape[-1], off : off + kern.shape[-1]] = kern
    return out


def _gen_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else _CPU


def _shake_ranges(
    kernel_size: int | Sequence[int], intensity: Range
) -> tuple[tuple[int, int], tuple[float, float]]:
    sizes = _size_range(kernel_size, "kernel_size")
    strength = as_range(intensity, "intensity")
    if not 0.0 <= strength[0] <= strength[1] <= 1.0:
        raise ValueError(f"intensity must lie in [0, 1], got {intensity!r}")
    return sizes, strength


def _jpeg_range(jpeg_quality: int | Sequence[int] | None) -> tuple[int, int] | None:
    if jpeg_quality is None:
        return None
    quality = _size_range(jpeg_quality, "jpeg")
    if quality[1] > 100:
        raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality!r}")
    return quality


def _roll_settings(
    rotation: Range | None, kernel_grid: int
) -> tuple[tuple[float, float] | None, int]:
    """The checked ``rotation`` range (None: no roll) and kernel lattice side of a shake blur."""
    if not isinstance(kernel_grid, int) or kernel_grid < 2:
        raise ValueError(f"kernel_grid must be an int >= 2, got {kernel_grid!r}")
    return _positive_range(rotation, "rotation"), kernel_grid


def _span_range(span: Range | None) -> tuple[float, float] | None:
    """The checked share of its kernel a shake path spans (None: tied to the intensity)."""
    if span is None:
        return None
    lo, hi = as_range(span, "span")
    if not 0.0 < lo <= hi <= 1.0:
        raise ValueError(f"span must lie in (0, 1], got {span!r}")
    return lo, hi


def _exposure_settings(
    frames: Sequence[int] | None, shutter: Range, frames_share: float
) -> FrameExposures | None:
    """The checked frame-average settings of a shake blur (None: one continuous exposure)."""
    return None if frames is None else FrameExposures.checked(frames, shutter, frames_share)


def _shake(
    blur: RealisticBlur | CameraPipelineBlur, n: int, generator: torch.Generator | None
) -> Tensor:
    """A shake blur's kernels: one per image, or a lattice per image when it rolls."""
    law, exposures, span = blur.kernel_size_law, blur.exposures, blur.span
    if blur.rotation is None:
        return shake_kernels(n, blur.kernel_size, blur.intensity, generator, law, exposures, span)
    return varying_shake_kernels(
        n,
        blur.kernel_size,
        blur.intensity,
        blur.rotation,
        blur.kernel_grid,
        generator,
        law,
        exposures,
        span,
    )


class BlurSampler:
    """A synthetic blur: draws camera parameters per batch and renders them.

    Subclasses implement :meth:`draw`. Called on images (``blur(images, generator)``) it
    returns the blurry images; :meth:`sample` also returns the kernels used.

    Shape:
        - images: :math:`(C, H, W)` or :math:`(B, C, H, W)` in [0, 1]
        - output: same shape, in [0, 1]
    """

    def draw(self, n: int, generator: torch.Generator | None = None) -> CameraParams:
        """Draw the camera parameters of ``n`` images."""
        raise NotImplementedError

    def sample(
        self, images: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Blur ``images`` and also return the kernels used, ``(blurred, kernels)``.

        Shape:
            - images: :math:`(C, H, W)` or :math:`(B, C, H, W)`
            - output: same shape as ``images``, and kernels :math:`(B, k, k)`, k the largest
              size drawn (:math:`(B, 1, 1)` ones when the blur is off; the anchors' average
              when it varies across the image).
        """
        if images.ndim not in (3, 4):
            raise ValueError(
                f"images must be (C, H, W) or (B, C, H, W), got shape {tuple(images.shape)}"
            )
        batch = images if images.ndim == 4 else images[None]
        params = self.draw(batch.shape[0], generator)
        blurred = render(batch, params, generator)
        kernels = params.kernels if params.kernels is not None else torch.ones(len(batch), 1, 1)
        if kernels.ndim == 5:  # a lattice per image (spatially varying blur): its average
            kernels = kernels.mean(dim=(1, 2))
        return (blurred if images.ndim == 4 else blurred[0]), kernels

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.sample(images, generator)[0]

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in vars(self).items())
        return f"{type(self).__name__}({settings})"


class SimpleBlur(BlurSampler):
    """Random Gaussian, linear-motion or disk blur applied directly to sRGB values.

    This is the naive synthetic pair of the paper's starting point: no camera response, no noise.
    Each image gets its own kernel type, size and parameters. Draw order: sizes, kinds, shape
    parameters, angles.

    Args:
        kernel_size: kernel side, or ``[low, high]`` range (rounded up to odd).
        kinds: kernel types to draw from: ``"gaussian"``, ``"motion"``, ``"disk"``.
        probs: probability of each kind (defaults to uniform).
        sigma: Gaussian sigma range as a fraction of ``(size - 1) / 2``.
        motion_length: motion stroke length range as a fraction of ``size - 1``.
        disk_radius: disk radius range as a fraction of ``(size - 1) / 2``.
        kernel_size_law: how sizes spread over ``kernel_size``: ``"uniform"`` in pixels or
            ``"log"`` (each octave equally often, :data:`~realblur_gan.camera.SIZE_LAWS`).

    Example:
        >>> blur = SimpleBlur(kernel_size=(5, 15))
        >>> blur(torch.rand(2, 3, 32, 32), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3, 32, 32])
    """

    KINDS = ("gaussian", "motion", "disk")

    def __init__(
        self,
        kernel_size: int | Sequence[int] = (7, 31),
        kinds: Sequence[str] = KINDS,
        probs: Sequence[float] | None = None,
        sigma: Range = (0.15, 0.5),
        motion_length: Range = (0.3, 1.0),
        disk_radius: Range = (0.3, 1.0),
        kernel_size_law: str = "uniform",
    ) -> None:
        self.kernel_size = _size_range(kernel_size, "kernel_size")
        self.kernel_size_law = check_size_law(kernel_size_law)
        self.kinds = tuple(str(k) for k in kinds)
        unknown = set(self.kinds) - set(self.KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be a non-empty subset of {self.KINDS}, got {kinds!r}")
        weights = [1.0] * len(self.kinds) if probs is None else [float(p) for p in probs]
        if len(weights) != len(self.kinds) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"probs must give one non-negative weight per kind, got {probs!r}")
        self.probs = torch.tensor(weights) / sum(weights)
        self.sigma = as_range(sigma, "sigma")
        self.motion_length = as_range(motion_length, "motion_length")
        self.disk_radius = as_range(disk_radius, "disk_radius")

    def draw(self, n: int, generator: torch.Generator | None = None) -> CameraParams:
        """Draw ``n`` kernels, centred in a common grid; no tone curve, nothing else."""
        sizes = odd_sizes(n, *self.kernel_size, generator, _CPU, self.kernel_size_law).tolist()
        kind_idx = torch.multinomial(
            self.probs.to(_gen_device(generator)), n, replacement=True, generator=generator
        ).tolist()
        shapes = uniform(n, 0.0, 1.0, generator, _CPU).tolist()
        angles = uniform(n, 0.0, 180.0, generator, _CPU).tolist()
        out = []
        for size, kind_i, p, angle in zip(sizes, kind_idx, shapes, angles, strict=True):
            kind = self.kinds[kind_i]
            half = (size - 1) / 2.0
            if kind == "gaussian":
                lo, hi = self.sigma
                out.append(gaussian_kernel(size, max(1e-3, half * (lo + (hi - lo) * p))))
            elif kind == "motion":
                lo, hi = self.motion_length
                out.append(linear_motion_kernel(size, (size - 1) * (lo + (hi - lo) * p), angle))
            else:
                lo, hi = self.disk_radius
                out.append(disk_kernel(size, half * (lo + (hi - lo) * p)))
        return CameraParams(kernels=_embed(out, max(sizes)), tone_curve=None)


class RealisticBlur(BlurSampler):
    """Camera-shake blur simulated through a camera: gamma, exposure, noise, JPEG.

    Steps, each switched off by passing None (or a zero range for the noise):
    camera-shake trajectory kernel -> linearise with ``gamma`` -> blur in linear light ->
    exposure gain and sensor saturation (clip at 1) -> Poisson-Gaussian noise -> re-apply gamma
    -> JPEG at a random quality. Parameters given as ranges are drawn per image; draw order:
    kernels, then exposure, shot, read and JPEG quality (each only when on), then the noise.

    Args:
        kernel_size: kernel side, or ``[low, high]`` range (rounded up to odd).
        intensity: camera-shake intensity in [0, 1], or a range.
        gamma: camera gamma; None blurs the sRGB values directly.
        exposure: gain applied in linear light before clipping (values > 1 saturate highlights
            the way long exposures do); None for no gain.
        noise_shot: photon-noise gain range (variance ``shot * x``); None for no shot noise.
        noise_read: read-noise standard deviation range; None for no read noise.
        jpeg_quality: JPEG quality or range; None for no JPEG.
        rotation: the camera's roll, as in :class:`CameraPipelineBlur`; None for one kernel per
            image.
        kernel_grid: anchors per side of the kernel lattice when ``rotation`` is set (>= 2).
        kernel_size_law: how sizes spread over ``kernel_size``, as in :class:`SimpleBlur`.
        frames: ``[low, high]`` video frames averaged, as in :class:`CameraPipelineBlur`; None
            for one continuous exposure.
        shutter: each frame's open time as a fraction of the frame interval, a range in (0, 1].
        frames_share: probability that an image's blur is a frame average.
        span: range of the share of its kernel a shake path spans, as in
            :class:`CameraPipelineBlur`.

    Example:
        >>> blur = RealisticBlur(kernel_size=(9, 21), jpeg_quality=(70, 95))
        >>> blur(torch.rand(3, 48, 48), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([3, 48, 48])
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int] = (9, 33),
        intensity: Range = (0.0, 1.0),
        gamma: float | None = 2.2,
        exposure: Range | None = None,
        noise_shot: Range | None = (0.0, 1e-3),
        noise_read: Range | None = (0.0, 2e-3),
        jpeg_quality: int | Sequence[int] | None = None,
        rotation: Range | None = None,
        kernel_grid: int = 2,
        kernel_size_law: str = "uniform",
        frames: Sequence[int] | None = None,
        shutter: Range = (0.1, 1.0),
        frames_share: float = 1.0,
        span: Range | None = None,
    ) -> None:
        self.kernel_size, self.intensity = _shake_ranges(kernel_size, intensity)
        self.kernel_size_law = check_size_law(kernel_size_law)
        self.rotation, self.kernel_grid = _roll_settings(rotation, kernel_grid)
        self.exposures = _exposure_settings(frames, shutter, frames_share)
        self.span = _span_range(span)
        self.gamma = None if gamma is None else float(gamma)
        self.exposure = None if exposure is None else as_range(exposure, "exposure")
        self.noise_shot = _positive_range(noise_shot, "noise_shot")
        self.noise_read = _positive_range(noise_read, "noise_read")
        self.jpeg_quality = _jpeg_range(jpeg_quality)

    def draw(self, n: int, generator: torch.Generator | None = None) -> CameraParams:
        """Draw ``n`` shake kernels and the per-image camera settings that are on."""
        kernels = _shake(self, n, generator)
        device = _gen_device(generator)

        def draw_range(bounds: tuple[float, float] | None) -> Tensor | None:
            return None if bounds is None else uniform(n, *bounds, generator, device)

        gain = draw_range(self.exposure)
        shot, read = draw_range(self.noise_shot), draw_range(self.noise_read)
        quality = None
        if self.jpeg_quality is not None:
            lo, hi = self.jpeg_quality
            quality = uniform(n, lo, hi + 1 - 1e-6, generator, device).floor().long()
        return CameraParams(
            kernels=kernels,
            tone_curve=None if self.gamma is None else "gamma",
            gamma=2.2 if self.gamma is None else self.gamma,
            exposure=gain,
            shot=shot,
            read=read,
            jpeg_quality=quality,
        )


class CameraPipelineBlur(BlurSampler):
    """Camera-shake blur synthesised through a simulated camera (RSBlur-style RAW pipeline).

    Rim et al. ("Realistic Blur Synthesis for Learning Image Deblurring", ECCV 2022) show that a
    synthetic blurry photo looks like a real one only when the blur is made where a camera
    makes it: in linear RAW light, before the sensor clips, before the noise, and before the
    camera's own processing. The blurry image takes that path; each step has its own switch:

    ``tone_curve`` -> (sRGB to linear) -> ``saturation_factor`` (boost clipped highlights) ->
    ``blur`` (trajectory kernel, linear light) -> ``wb_red``/``wb_blue`` (inverse white balance)
    -> ``mosaic`` (Bayer) -> sensor clipping at 1 -> ``noise_shot``/``noise_read`` (on the RAW)
    -> bilinear demosaic -> white balance -> tone curve -> ``jpeg_quality``.

    Gray (1-channel) images skip the mosaic and white balance automatically: there is no colour
    filter to simulate. The sharp target is never touched: only the returned blurry image goes
    through the camera. Parameters given as ranges are drawn per image, and every per-image
    parameter is drawn whether or not its step is on (kernels first, then one block of
    saturation, white balance, noise and JPEG draws, then the noise), so switching one step off
    leaves the kernels and the other draws unchanged: an ablation with the same seed compares
    like with like.

    ``rotation`` adds the camera's roll: the blur then changes across the image (longer, bent
    strokes far from the centre of the turn), as real hand-held and GoPro blur does, rendered
    from a ``kernel_grid x kernel_grid`` lattice of kernels (:func:`varying_shake_kernels`,
    :func:`~realblur_gan.camera.ops.convolve_varying`; G² convolutions per image). Its draws
    come after the shake's, so the same seed gives the same shake with or without it.
    :meth:`sample` then returns each image's anchor-averaged kernel.

    ``frames`` makes a share (``frames_share``) of the blur the average of that many video
    frames along the shake, each open for ``shutter`` of the frame interval
    (:func:`~realblur_gan.camera.kernels.frame_exposures`): GoPro-style blur, where a fast move
    leaves separate ghost copies of an edge instead of one smooth smear. Its draws come last,
    so the same seed gives the same shake and camera with or without it.

    Saturation follows RSBlur's recipe: pixels that the sharp photo itself had clipped (brightest
    channel >= ``saturation_threshold`` in the input) stood for light brighter than the sensor's
    white, so in linear light they are multiplied by a per-image factor drawn from
    ``saturation_factor``; the blur spreads that excess energy and the sensor clips AFTER the
    blur, giving the bright plateaus and streaks of real night shots. The other pixels are
    left as they are. In daylight scenes many near-white pixels are bright surfaces, not light
    sources: there the boost brightens the blur more than a real camera does (on the GoPro
    frames DBGAN then learned to darken, 1.5 dB below its input), so pass
    ``saturation_factor=None`` for such data.

    The default ranges (white-balance gains, noise levels, saturation factors) are plausible
    daylight-camera values, not a calibration of any one camera: narrow them to match a target
    camera when its RAW statistics are known.

    Use it from any data config (``synthetic_blur:`` or ``val_blur:``)::

        synthetic_blur:
          _target_: realblur_gan.camera.CameraPipelineBlur
          kernel_size: [9, 33]
          intensity: [0.0, 1.0]
          tone_curve: camera        # gamma | srgb | camera | null (input is already linear)
          saturation_factor: [1.5, 3.0]
          wb_red: [1.8, 2.4]
          wb_blue: [1.4, 1.9]
          mosaic: true
          noise_shot: [1.0e-4, 2.0e-3]
          noise_read: [5.0e-4, 3.0e-3]
          jpeg_quality: [80, 95]    # null for no JPEG
          rotation: [0.0, 0.5]      # null: one kernel per image
          frames: [7, 13]           # null: one continuous exposure
          shutter: [0.1, 1.0]
          frames_share: 0.5

    Args:
        kernel_size: kernel side, or ``[low, high]`` range (rounded up to odd).
        intensity: camera-shake intensity in [0, 1], or a range (see
            :func:`realblur_gan.camera.trajectory_kernels`).
        blur: apply the shake kernel; False keeps the rest of the camera (for ablations).
        tone_curve: the camera's tone curve, one of :data:`TONE_CURVES`; None treats the input as
            linear light already.
        gamma: exponent of the ``"gamma"`` and ``"camera"`` curves.
        saturation_factor: range of the per-image factor applied to clipped highlights in linear
            light (>= 1); None for no highlight boost.
        saturation_threshold: input value (brightest channel) from which a pixel counts as
            clipped in the sharp photo.
        wb_red: range of the red white-balance gain (the RAW red is the output red divided by
            it); None for no white balance.
        wb_blue: range of the blue white-balance gain; None for no white balance.
        mosaic: go through an RGB Bayer mosaic and bilinear demosaicing.
        bayer_pattern: colour layout of the mosaic's 2x2 cell, one of :data:`BAYER_PATTERNS`.
        noise_shot: range of the photon-noise gain (variance ``shot * x`` on the RAW signal),
            drawn log-uniformly (uniformly when the range starts at 0); None for none.
        noise_read: range of the read-noise standard deviation, drawn like ``noise_shot``; None
            for none.
        jpeg_quality: JPEG quality or range; None for no JPEG.
        rotation: range of the roll's amplitude, the displacement it adds at the image corner
            farthest from the centre of the turn, as a fraction of the image's kernel size;
            None for one kernel per image.
        kernel_grid: anchors per side of the kernel lattice when ``rotation`` is set (>= 2).
        kernel_size_law: how sizes spread over ``kernel_size``, as in :class:`SimpleBlur`.
        frames: ``[low, high]`` video frames averaged into one blurry image (each count equally
            likely); None for one continuous exposure.
        shutter: range of each frame's open time as a fraction of the frame interval, in
            (0, 1]; 1 makes the frames touch (a continuous exposure).
        frames_share: probability that an image's blur is a frame average; the rest keep the
            continuous exposure.
        span: range of the share of its kernel a shake path spans, drawn per image in (0, 1];
            None ties it to the intensity (a straight stroke spans 25-45 %, the most tangled
            path 60-100 %), so long straight strokes, the blur of a fast steady move, never occur.

    Example:
        >>> camera = CameraPipelineBlur(kernel_size=(9, 21), jpeg_quality=(80, 95))
        >>> camera(torch.rand(2, 3, 48, 48), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3, 48, 48])
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int] = (9, 33),
        intensity: Range = (0.0, 1.0),
        blur: bool = True,
        tone_curve: str | None = "camera",
        gamma: float = 2.2,
        saturation_factor: Range | None = (1.5, 3.0),
        saturation_threshold: float = 0.98,
        wb_red: Range | None = (1.8, 2.4),
        wb_blue: Range | None = (1.4, 1.9),
        mosaic: bool = True,
        bayer_pattern: str = "RGGB",
        noise_shot: Range | None = (1e-4, 2e-3),
        noise_read: Range | None = (5e-4, 3e-3),
        jpeg_quality: int | Sequence[int] | None = None,
        rotation: Range | None = None,
        kernel_grid: int = 2,
        kernel_size_law: str = "uniform",
        frames: Sequence[int] | None = None,
        shutter: Range = (0.1, 1.0),
        frames_share: float = 1.0,
        span: Range | None = None,
    ) -> None:
        self.kernel_size, self.intensity = _shake_ranges(kernel_size, intensity)
        self.kernel_size_law = check_size_law(kernel_size_law)
        self.rotation, self.kernel_grid = _roll_settings(rotation, kernel_grid)
        self.exposures = _exposure_settings(frames, shutter, frames_share)
        self.span = _span_range(span)
        self.blur = bool(blur)
        # The switches shared by the batch are checked the way the renderer will read them.
        CameraParams(tone_curve=tone_curve, gamma=gamma, bayer_pattern=bayer_pattern)
        self.tone_curve = tone_curve
        self.gamma = float(gamma)
        self.saturation_factor = _positive_range(saturation_factor, "saturation_factor", 1.0)
        if not 0.0 < saturation_threshold <= 1.0:
            raise ValueError(f"saturation_threshold must be in (0, 1], got {saturation_threshold}")
        self.saturation_threshold = float(saturation_threshold)
        if (wb_red is None) != (wb_blue is None):
            raise ValueError("give both wb_red and wb_blue, or neither")
        self.wb_red = _positive_range(wb_red, "wb_red", 1e-3)
        self.wb_blue = _positive_range(wb_blue, "wb_blue", 1e-3)
        self.mosaic = bool(mosaic)
        self.bayer_pattern = bayer_pattern
        self.noise_shot = _positive_range(noise_shot, "noise_shot")
        self.noise_read = _positive_range(noise_read, "noise_read")
        self.jpeg_quality = _jpeg_range(jpeg_quality)

    def draw(self, n: int, generator: torch.Generator | None = None) -> CameraParams:
        """Draw ``n`` shake kernels and every per-image setting, whatever the switches say."""
        kernels = _shake(self, n, generator)
        u = torch.rand(6, n, generator=generator, device=_gen_device(generator)).cpu().double()
        one, zero = (1.0, 1.0), (0.0, 0.0)
        quality = self.jpeg_quality or (100, 100)
        wb_red, wb_blue = _scale(u[1], self.wb_red or one), _scale(u[2], self.wb_blue or one)
        shot = _scale(u[3], self.noise_shot or zero, log=True)
        read = _scale(u[4], self.noise_read or zero, log=True)
        # No draws for a noise that is off or 0 everywhere: the image is left as it is.
        noisy = (self.noise_shot is not None or self.noise_read is not None) and bool(
            (shot > 0).any() or (read > 0).any()
        )
        return CameraParams(
            kernels=kernels if self.blur else None,
            tone_curve=self.tone_curve,
            gamma=self.gamma,
            saturation=None
            if self.saturation_factor is None
            else _scale(u[0], self.saturation_factor),
            saturation_threshold=self.saturation_threshold,
            white_balance=None
            if self.wb_red is None
            else torch.stack([wb_red, torch.ones_like(wb_red), wb_blue], dim=1),
            bayer_pattern=self.bayer_pattern if self.mosaic else None,
            shot=shot if noisy else None,
            read=read if noisy else None,
            # Integer qualities, each of lo..hi equally likely.
            jpeg_quality=None
            if self.jpeg_quality is None
            else (quality[0] + u[5] * (quality[1] - quality[0] + 1))
            .floor()
            .clamp(max=quality[1])
            .long(),
        )
