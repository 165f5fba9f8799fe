"""Blur synthesised through a simulated camera: RSBlur-style RAW pipeline around the shake blur.

Rim et al. ("Realistic Blur Synthesis for Learning Image Deblurring", ECCV 2022) show that a
synthetic blurry photo looks like a real one only when the blur is made where a camera makes it:
in linear RAW light, before the sensor clips, before the noise, and before the camera's own
processing (demosaicing, white balance, tone curve, JPEG). :class:`CameraPipelineBlur` runs a
sharp sRGB image backwards to the sensor and forwards again, blurring on the way:

1. sRGB -> linear light through the inverse of a tone curve (power-law gamma, the exact sRGB
   curve, or a camera-like S-shaped curve);
2. highlights that the sharp photo had clipped are scaled up by a random per-image factor, so
   they exceed 1 (the scene was brighter than the sensor could record);
3. camera-shake trajectory blur in linear light (one FFT convolution, :func:`blur.convolve`);
4. inverse white balance (divide red and blue by random per-image gains) and a Bayer mosaic;
5. sensor saturation: the RAW signal is clipped at 1, so blurred highlights form flat plateaus
   and streaks instead of fading out;
6. Poisson-Gaussian noise (shot + read) on the RAW mosaic, random levels per image;
7. bilinear demosaicing, white balance back, tone curve back to sRGB, optional JPEG.

Only the blurry image goes through the camera: the sharp target of a training pair is the plain
sRGB input, the clean photo a user wants back. Everything works on float32 tensors in [0, 1],
shaped (C, H, W) or (B, C, H, W); randomness comes only from an optional ``torch.Generator``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from realblur_gan.blur import (
    Range,
    RealisticBlur,
    _as_batch,
    _as_range,
    _size_range,
    add_poisson_gaussian_noise,
    convolve,
    jpeg_compress,
    linear_to_srgb,
    srgb_to_linear,
)

logger = logging.getLogger(__name__)

__all__ = [
    "BAYER_PATTERNS",
    "TONE_CURVES",
    "CameraPipelineBlur",
    "bayer_masks",
    "demosaic_bilinear",
    "from_linear",
    "mosaic",
    "to_linear",
]

TONE_CURVES = ("gamma", "srgb", "camera")
BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")


# --------------------------------------------------------------------------------------------------
# Tone curves
# --------------------------------------------------------------------------------------------------


def _check_curve(curve: str) -> None:
    if curve not in TONE_CURVES:
        raise ValueError(f"tone curve must be one of {TONE_CURVES}, got {curve!r}")


def to_linear(x: Tensor, curve: str = "camera", gamma: float = 2.2) -> Tensor:
    """Undo a camera tone curve: display values -> linear light.

    Curves:

    * ``"gamma"``: the power law ``y = x ** (1 / gamma)`` (what :mod:`realblur_gan.blur` uses);
    * ``"srgb"``: the exact piecewise sRGB curve (linear toe, exponent 2.4); ``gamma`` unused;
    * ``"camera"``: the power law followed by a smoothstep S-curve ``3 t^2 - 2 t^3``, the global
      contrast boost cameras add on top of gamma: darker shadows, brighter highlights, and
      highlights that roll off flat near white. It inverts in closed form.

    Args:
        x: display-referred values.
        curve: one of :data:`TONE_CURVES`.
        gamma: exponent of the power-law part of ``"gamma"`` and ``"camera"``.

    Returns:
        A new tensor of linear values in [0, 1].

    Shape:
        - x, output: any shape, values in [0, 1].
    """
    _check_curve(curve)
    if curve == "gamma":
        return srgb_to_linear(x, gamma)
    y = x.clamp(0.0, 1.0)
    if curve == "srgb":
        return torch.where(y <= 0.04045, y / 12.92, ((y + 0.055) / 1.055).pow(2.4))
    # Inverse smoothstep: the root in [0, 1] of 3t^2 - 2t^3 = y, via the trigonometric cubic form.
    t = y.mul(-2.0).add_(1.0).asin_().div_(3.0).sin_().neg_().add_(0.5)
    return t.clamp_(0.0, 1.0).pow_(gamma)


def from_linear(x: Tensor, curve: str = "camera", gamma: float = 2.2) -> Tensor:
    """Apply a camera tone curve: linear light -> display values; inverse of :func:`to_linear`.

    Args:
        x: linear values (clipped to [0, 1] first, as the camera's output range is).
        curve: one of :data:`TONE_CURVES`.
        gamma: exponent of the power-law part of ``"gamma"`` and ``"camera"``.

    Returns:
        A new tensor of display values in [0, 1].

    Shape:
        - x, output: any shape.
    """
    _check_curve(curve)
    if curve == "gamma":
        return linear_to_srgb(x, gamma)
    y = x.clamp(0.0, 1.0)
    if curve == "srgb":
        return torch.where(y <= 0.0031308, y * 12.92, 1.055 * y.pow(1.0 / 2.4) - 0.055)
    t = y.pow_(1.0 / gamma)
    return t.mul(-2.0).add_(3.0).mul_(t).mul_(t).clamp_(0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# Bayer mosaic and demosaicing
# --------------------------------------------------------------------------------------------------


def _cell(pattern: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Channel index (R=0, G=1, B=2) of each photosite of the pattern's 2x2 cell."""
    if pattern not in BAYER_PATTERNS:
        raise ValueError(f"bayer pattern must be one of {BAYER_PATTERNS}, got {pattern!r}")
    index = ["RGB".index(letter) for letter in pattern]
    return (index[0], index[1]), (index[2], index[3])


def _sites(h: int, w: int) -> list[tuple[int, int, slice, slice]]:
    """The four sub-lattices of a Bayer frame: cell position and the slices that select it."""
    return [(i, j, slice(i, h, 2), slice(j, w, 2)) for i in (0, 1) for j in (0, 1)]


def bayer_masks(
    height: int,
    width: int,
    pattern: str = "RGGB",
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """One-hot colour-filter masks of a Bayer sensor: which channel each photosite records.

    Args:
        height: sensor rows.
        width: sensor columns.
        pattern: colours of the top-left 2x2 cell read row by row, one of :data:`BAYER_PATTERNS`.
        device: where to build the masks.
        dtype: mask dtype.

    Returns:
        Masks that sum to 1 over the channel dimension (R, G, B).

    Shape:
        - output: :math:`(1, 3, height, width)`
    """
    cell = _cell(pattern)
    masks = torch.zeros(1, 3, height, width, device=device, dtype=dtype)
    for i, j, rows, cols in _sites(height, width):
        masks[:, cell[i][j], rows, cols] = 1.0
    return masks


def mosaic(images: Tensor, pattern: str = "RGGB") -> Tensor:
    """Sample RGB images the way a Bayer sensor does: one colour per photosite.

    Args:
        images: linear RGB images.
        pattern: one of :data:`BAYER_PATTERNS`.

    Returns:
        The single-channel RAW mosaic.

    Shape:
        - images: :math:`(B, 3, H, W)`
        - output: :math:`(B, 1, H, W)`
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"mosaic needs (B, 3, H, W) images, got shape {tuple(images.shape)}")
    b, _, h, w = images.shape
    cell = _cell(pattern)
    # Four strided copies: far cheaper than multiplying by full-size masks and summing.
    raw = images.new_empty(b, 1, h, w)
    for i, j, rows, cols in _sites(h, w):
        raw[:, 0, rows, cols] = images[:, cell[i][j], rows, cols]
    return raw


def demosaic_bilinear(raw: Tensor, pattern: str = "RGGB") -> Tensor:
    """Rebuild RGB from a Bayer mosaic by bilinear interpolation.

    Each photosite keeps its own colour and takes each missing colour from the mean of its
    nearest neighbours of that colour: left/right or up/down ones on a green site, the four
    crosswise greens and the four diagonal red/blue ones on a red or blue site. The stencils are
    evaluated on each of the four sub-lattices separately (strided views of one padded frame), so
    no sparse colour planes are built and every output value is computed once.

    Borders are reflect-padded: reflection about the edge row maps row -1 to row 1, of the same
    parity, so the padded frame continues the Bayer pattern and border pixels are interpolated
    exactly like inner ones.

    Args:
        raw: RAW mosaics, at least 2x2.
        pattern: one of :data:`BAYER_PATTERNS`.

    Returns:
        RGB images.

    Shape:
        - raw: :math:`(B, 1, H, W)`
        - output: :math:`(B, 3, H, W)`
    """
    if raw.ndim != 4 or raw.shape[1] != 1 or min(raw.shape[-2:]) < 2:
        raise ValueError(f"demosaic needs (B, 1, H, W) mosaics, H, W >= 2, got {tuple(raw.shape)}")
    b, _, h, w = raw.shape
    cell = _cell(pattern)
    padded = F.pad(raw, (1, 1, 1, 1), mode="reflect")[:, 0]
    out = raw.new_empty(b, 3, h, w)
    for i, j, rows, cols in _sites(h, w):
        nh, nw = (h - i + 1) // 2, (w - j + 1) // 2

        def at(di: int, dj: int, i: int = i, j: int = j, nh: int = nh, nw: int = nw) -> Tensor:
            """The neighbour at offset (di, dj) of every site of this sub-lattice."""
            r, c = i + 1 + di, j + 1 + dj
            return padded[:, r : r + 2 * nh - 1 : 2, c : c + 2 * nw - 1 : 2]

        own = cell[i][j]
        out[:, own, rows, cols] = at(0, 0)
        if own == 1:  # green site: the row neighbours give one colour, the column ones the other
            out[:, cell[i][1 - j], rows, cols] = (at(0, -1) + at(0, 1)).mul_(0.5)
            out[:, cell[1 - i][j], rows, cols] = (at(-1, 0) + at(1, 0)).mul_(0.5)
        else:  # red or blue site: greens all around, the other colour on the diagonals
            cross = at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1)
            diagonal = at(-1, -1) + at(-1, 1) + at(1, -1) + at(1, 1)
            out[:, 1, rows, cols] = cross.mul_(0.25)
            out[:, cell[1 - i][1 - j], rows, cols] = diagonal.mul_(0.25)
    return out


# --------------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------------


def _positive_range(value: Range | None, name: str, low: float = 0.0) -> tuple[float, float] | None:
    if value is None:
        return None
    lo, hi = _as_range(value, name)
    if lo < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    return lo, hi


def _scale(u: Tensor, bounds: tuple[float, float], log: bool = False) -> Tensor:
    """Map U(0, 1) draws onto ``bounds``: uniformly, or log-uniformly when ``log`` and low > 0."""
    lo, hi = bounds
    if log and lo > 0:
        return torch.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * u)
    return lo + (hi - lo) * u


class CameraPipelineBlur:
    """Camera-shake blur synthesised through a simulated camera (RSBlur-style RAW pipeline).

    The blurry image takes the path light takes through a camera; each step has its own switch:

    ``tone_curve`` -> (sRGB to linear) -> ``saturation_factor`` (boost clipped highlights) ->
    ``blur`` (trajectory kernel, linear light) -> ``wb_red``/``wb_blue`` (inverse white balance)
    -> ``mosaic`` (Bayer) -> sensor clipping at 1 -> ``noise_shot``/``noise_read`` (on the RAW)
    -> bilinear demosaic -> white balance -> tone curve -> ``jpeg_quality``.

    Gray (1-channel) images skip the mosaic and white balance automatically: there is no colour
    filter to simulate. The sharp target is never touched: only the returned blurry image goes
    through the camera. Parameters given as ranges are drawn per image, and every per-image
    parameter is drawn whether or not its step is on, so switching one step off leaves the kernels
    and the other draws unchanged: an ablation with the same seed compares like with like.

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

    Args:
        kernel_size: kernel side, or ``[low, high]`` range (rounded up to odd).
        intensity: camera-shake intensity in [0, 1], or a range (see
            :func:`realblur_gan.blur.trajectory_kernels`).
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

    Shape:
        - images: :math:`(C, H, W)` or :math:`(B, C, H, W)` in [0, 1]
        - output: same shape, in [0, 1]; ``last_kernels``: :math:`(B, k, k)`, k the largest size
          drawn (:math:`(B, 1, 1)` deltas when ``blur`` is False).

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
    ) -> None:
        # The kernel sampler is RealisticBlur's, so both callables draw the same shake family.
        self._shake = RealisticBlur(kernel_size=kernel_size, intensity=intensity)
        self.kernel_size = self._shake.kernel_size
        self.intensity = self._shake.intensity
        self.blur = bool(blur)
        if tone_curve is not None:
            _check_curve(tone_curve)
        self.tone_curve = tone_curve
        if gamma <= 0:
            raise ValueError(f"gamma must be > 0, got {gamma!r}")
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
        if bayer_pattern not in BAYER_PATTERNS:
            raise ValueError(
                f"bayer_pattern must be one of {BAYER_PATTERNS}, got {bayer_pattern!r}"
            )
        self.bayer_pattern = bayer_pattern
        self.noise_shot = _positive_range(noise_shot, "noise_shot")
        self.noise_read = _positive_range(noise_read, "noise_read")
        self.jpeg_quality = None if jpeg_quality is None else _size_range(jpeg_quality, "jpeg")
        if self.jpeg_quality is not None and self.jpeg_quality[1] > 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality!r}")
        self.last_kernels: Tensor | None = None

    def kernels(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` camera-shake kernels, each scaled to its own size, in a common grid.

        Shape:
            - output: :math:`(n, k, k)`
        """
        return self._shake.kernels(n, generator)

    def _draw(self, n: int, generator: torch.Generator | None) -> dict[str, Tensor]:
        """Every per-image parameter, drawn in one fixed block whatever the switches say."""
        gen_device = generator.device if generator is not None else torch.device("cpu")
        u = torch.rand(6, n, generator=generator, device=gen_device).cpu().double()
        one = (1.0, 1.0)
        zero = (0.0, 0.0)
        quality = self.jpeg_quality or (100, 100)
        return {
            "saturation": _scale(u[0], self.saturation_factor or one),
            "wb_red": _scale(u[1], self.wb_red or one),
            "wb_blue": _scale(u[2], self.wb_blue or one),
            "shot": _scale(u[3], self.noise_shot or zero, log=True),
            "read": _scale(u[4], self.noise_read or zero, log=True),
            # Integer qualities, each of lo..hi equally likely.
            "quality": (quality[0] + u[5] * (quality[1] - quality[0] + 1))
            .floor()
            .clamp(max=quality[1]),
        }

    def sample(
        self, images: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Degrade ``images`` and also return the kernels used, ``(blurred, kernels)``.

        Shape:
            - images: :math:`(C, H, W)` or :math:`(B, C, H, W)` in [0, 1]
            - output: same shape as ``images``, and kernels :math:`(B, k, k)`.
        """
        batch, single = _as_batch(images)
        n, c, h, w = batch.shape
        device, dtype = batch.device, batch.dtype
        kernels = self.kernels(n, generator)
        draws = self._draw(n, generator)

        def per_image(name: str) -> Tensor:
            return draws[name].to(device=device, dtype=dtype).view(n, 1, 1, 1)

        curve = self.tone_curve
        # to_linear / clamp return fresh tensors, so every later step may work in place.
        x = batch.clamp(0.0, 1.0) if curve is None else to_linear(batch, curve, self.gamma)
        if self.saturation_factor is not None:
            clipped = batch.amax(dim=1, keepdim=True) >= self.saturation_threshold
            x.mul_(torch.where(clipped, per_image("saturation"), 1.0))
        if self.blur:
            x = convolve(x, kernels)
        else:
            kernels = torch.ones(n, 1, 1)

        colour = c == 3
        gains = None
        if colour and self.wb_red is not None:
            ones = torch.ones(n, 1, 1, 1, device=device, dtype=dtype)
            gains = torch.cat([per_image("wb_red"), ones, per_image("wb_blue")], dim=1)
            x.div_(gains)
        bayer = colour and self.mosaic and min(h, w) >= 2
        if colour and self.mosaic and not bayer:
            logger.debug("image of %dx%d px is too small for a Bayer mosaic: skipped", h, w)
        if bayer:
            x = mosaic(x, self.bayer_pattern)
        # The sensor's full well: highlights boosted past 1 and blurred become flat plateaus.
        x.clamp_(0.0, 1.0)
        if self.noise_shot is not None or self.noise_read is not None:
            x = add_poisson_gaussian_noise(
                x, per_image("shot").view(n), per_image("read").view(n), generator
            )
        if bayer:
            x = demosaic_bilinear(x, self.bayer_pattern)
        if gains is not None:
            x.mul_(gains)
        x = x.clamp_(0.0, 1.0) if curve is None else from_linear(x, curve, self.gamma)
        if self.jpeg_quality is not None:
            x = jpeg_compress(x, [int(q) for q in draws["quality"]])
        self.last_kernels = kernels
        return (x[0] if single else x), kernels

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.sample(images, generator)[0]

    def __repr__(self) -> str:
        return (
            f"CameraPipelineBlur(kernel_size={self.kernel_size}, intensity={self.intensity}, "
            f"blur={self.blur}, tone_curve={self.tone_curve!r}, gamma={self.gamma}, "
            f"saturation_factor={self.saturation_factor}, "
            f"saturation_threshold={self.saturation_threshold}, wb_red={self.wb_red}, "
            f"wb_blue={self.wb_blue}, mosaic={self.mosaic}, "
            f"bayer_pattern={self.bayer_pattern!r}, noise_shot={self.noise_shot}, "
            f"noise_read={self.noise_read}, jpeg_quality={self.jpeg_quality})"
        )
