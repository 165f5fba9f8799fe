"""The camera's operations, one function each: what a camera does to the light, step by step.

* tone curves (:func:`to_linear`, :func:`from_linear`): display values <-> linear light;
* blur (:func:`convolve`, and :func:`valid_convolve` under it, the forward model of blind
  deconvolution too);
* sensor noise (:func:`add_poisson_gaussian_noise`), :func:`white_balance`;
* the Bayer sensor (:func:`mosaic`, :func:`demosaic_bilinear`);
* :func:`jpeg_compress`, and :func:`gopro_blur` (blur by averaging video frames).

Images are float tensors in [0, 1]. Everything but JPEG is differentiable;
:func:`~realblur_gan.camera.render` chains them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "BAYER_PATTERNS",
    "FFT_MIN_KERNEL_SIZE",
    "TONE_CURVES",
    "add_poisson_gaussian_noise",
    "convolve",
    "convolve_varying",
    "demosaic_bilinear",
    "from_linear",
    "gopro_blur",
    "jpeg_compress",
    "mosaic",
    "to_linear",
    "valid_convolve",
    "white_balance",
]


# --------------------------------------------------------------------------------------------------
# Tone curves
# --------------------------------------------------------------------------------------------------


TONE_CURVES = ("gamma", "srgb", "camera")


def _check_curve(curve: str) -> None:
    """Refuse an unknown tone curve name.

    Raises:
        ValueError: ``curve`` is not one of :data:`TONE_CURVES`.
    """
    if curve not in TONE_CURVES:
        raise ValueError(f"tone curve must be one of {TONE_CURVES}, got {curve!r}")


def _channelwise(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Run a kornia colour function, which insists on 3 channels at dim -3, on any shape.

    The sRGB curve acts on each value alone, so other shapes (gray images, 1-D ramps) are laid
    out as 3 identical channels and the first is kept.
    """
    if x.ndim >= 3 and x.shape[-3] == 3:
        return fn(x)
    return fn(x.reshape(1, 1, -1).expand(3, 1, -1))[0].reshape(x.shape)


def to_linear(x: Tensor, curve: str = "camera", gamma: float = 2.2, floor: float = 0.0) -> Tensor:
    """Undo a camera tone curve: display values -> linear light.

    Curves:

    * ``"gamma"``: the power law ``y = x ** (1 / gamma)``;
    * ``"srgb"``: the exact piecewise sRGB curve (linear toe, exponent 2.4; kornia's
      ``rgb_to_linear_rgb``); ``gamma`` unused;
    * ``"camera"``: the power law followed by a smoothstep S-curve ``3 t^2 - 2 t^3``, the global
      contrast boost cameras add on top of gamma: darker shadows, brighter highlights, and
      highlights that roll off flat near white. It inverts in closed form.

    Args:
        x: display-referred values (clipped to [0, 1] first).
        curve: one of :data:`TONE_CURVES`.
        gamma: exponent of the power-law part of ``"gamma"`` and ``"camera"``.
        floor: values are kept at least this far from the ends of [0, 1] where a curve's slope
            is infinite (0 for the powers, 0 and 1 for the camera curve's inverse), so gradients
            stay finite at black and white; 0 leaves the values exact.

    Returns:
        A new tensor of linear values in [0, 1].

    Shape:
        - x, output: any shape.

    Example:
        >>> to_linear(torch.tensor([0.0, 0.5, 1.0]), "gamma")
        tensor([0.0000, 0.2176, 1.0000])
    """
    _check_curve(curve)
    # clamp() returns a fresh tensor, so the steps after it work in place: a few passes over a
    # large image instead of a new one per step (autograd checks that each in-place op is safe).
    y = x.clamp(floor, 1.0)
    if curve == "gamma":
        return y.pow_(gamma)
    if curve == "srgb":
        return _channelwise(kornia.color.rgb_to_linear_rgb, y)
    if floor > 0:
        y.clamp_(max=1.0 - floor)
    # Inverse smoothstep: the root in [0, 1] of 3t^2 - 2t^3 = y, via the trigonometric cubic form.
    t = y.mul(-2.0).add_(1.0).asin_().div_(3.0).sin_().neg_().add_(0.5)
    return t.clamp_(0.0, 1.0).pow_(gamma)


def from_linear(x: Tensor, curve: str = "camera", gamma: float = 2.2, floor: float = 0.0) -> Tensor:
    """Apply a camera tone curve: linear light -> display values; inverse of :func:`to_linear`.

    Args:
        x: linear values (clipped to [0, 1] first, as the camera's output range is).
        curve: one of :data:`TONE_CURVES` (``"srgb"`` is kornia's ``linear_rgb_to_rgb``).
        gamma: exponent of the power-law part of ``"gamma"`` and ``"camera"``.
        floor: smallest value fed to the powers, as in :func:`to_linear`.

    Returns:
        A new tensor of display values in [0, 1].

    Shape:
        - x, output: any shape.
    """
    _check_curve(curve)
    y = x.clamp(floor, 1.0)
    if curve == "gamma":
        return y.pow_(1.0 / gamma)
    if curve == "srgb":
        return _channelwise(kornia.color.linear_rgb_to_rgb, y)
    t = y.pow_(1.0 / gamma)
    return t.mul(-2.0).add_(3.0).mul_(t).mul_(t).clamp_(0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------------


# Kernels at least this wide go through the FFT: on a 2-core CPU direct grouped convolution
# wins only for small kernels (measured on 256x256 and 1280x720 RGB batches).
FFT_MIN_KERNEL_SIZE = 8


def _fast_len(n: int) -> int:
    """Smallest 2-3-5-smooth integer >= n, a size the FFT handles quickly."""
    best = 2 * n
    p2 = 1
    while p2 < best:
        p3 = p2
        while p3 < best:
            p5 = p3
            while p5 < n:
                p5 *= 5
            best = min(best, p5)
            p3 *= 3
        p2 *= 2
    return best


def _reflect_index(n: int, before: int, after: int, device: torch.device) -> Tensor:
    """Indices for reflect padding of any width, even wider than the signal itself."""
    idx = torch.arange(-before, n + after, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = idx.remainder(period)
    return torch.where(idx >= n, period - idx, idx)


def _reflect_pad(x: Tensor, k: int, extra: tuple[int, int] = (0, 0)) -> Tensor:
    """Reflect-pad H and W by ``k - 1`` in total (plus ``extra`` rows/cols after the image).

    ``k - 1`` is what a valid convolution needs to return the original size; the FFT path asks
    for a few more so the frame reaches a fast transform length in the same copy.
    """
    before = (k - 1) // 2
    h, w = x.shape[-2:]
    after_h, after_w = k // 2 + extra[0], k // 2 + extra[1]
    if before < min(h, w) and after_h < h and after_w < w:
        return F.pad(x, (before, after_w, before, after_h), mode="reflect")
    rows = _reflect_index(h, before, after_h, x.device)
    cols = _reflect_index(w, before, after_w, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def valid_convolve(latent: Tensor, kernels: Tensor, fft: bool | None = None) -> Tensor:
    """True convolution of each image with its own kernel, keeping the valid part only.

    ``out[i] = sum_j k[j] latent[i + k - 1 - j]``: every output pixel sees only input pixels, so
    no padding rule is assumed. Differentiable in both arguments. Large kernels go through the
    FFT (zero-padded to a fast length, which is exact for the valid part), small ones through a
    grouped ``conv2d``.

    Args:
        latent: images, ``k - 1`` px larger than the output in each dimension.
        kernels: one kernel per image.
        fft: force the FFT (True) or direct (False) path; None picks by kernel size.

    Shape:
        - latent: :math:`(B, C, H + k - 1, W + k - 1)`
        - kernels: :math:`(B, k, k)`
        - output: :math:`(B, C, H, W)`

    Example:
        >>> valid_convolve(torch.ones(1, 3, 10, 10), torch.full((1, 3, 3), 1 / 9)).shape
        torch.Size([1, 3, 8, 8])
    """
    b, c, hl, wl = latent.shape
    k = kernels.shape[-1]
    if kernels.shape != (b, k, k) or k > min(hl, wl):
        raise ValueError(f"kernels {tuple(kernels.shape)} do not fit images {tuple(latent.shape)}")
    use_fft = k >= FFT_MIN_KERNEL_SIZE if fft is None else fft
    if use_fft:
        size = (_fast_len(hl), _fast_len(wl))
        spectrum = torch.fft.rfft2(latent, s=size) * torch.fft.rfft2(kernels, s=size)[:, None]
        out = torch.fft.irfft2(spectrum, s=size)
        return out[..., k - 1 : hl, k - 1 : wl]
    weight = kernels.flip(-2, -1).repeat_interleave(c, dim=0)[:, None]
    out = F.conv2d(latent.reshape(1, b * c, hl, wl), weight, groups=b * c)
    return out.view(b, c, hl - k + 1, wl - k + 1)


def convolve(images: Tensor, kernels: Tensor, fft: bool | None = None) -> Tensor:
    """Blur images with one shared kernel or one kernel per image, keeping the size.

    This is a true convolution (the kernel is flipped), so a trajectory kernel reads as the path
    of a point light. Borders are reflect-padded; large kernels go through the FFT.
    Differentiable in both arguments.

    Args:
        images: images to blur.
        kernels: one kernel for the batch, or one per image.
        fft: force the FFT (True) or direct (False) path; None picks by kernel size.

    Returns:
        Blurred images with the dtype and shape of ``images``.

    Shape:
        - images: :math:`(B, C, H, W)`
        - kernels: :math:`(k, k)` or :math:`(B, k, k)`
        - output: :math:`(B, C, H, W)`

    Example:
        >>> convolve(torch.rand(2, 3, 16, 16), torch.full((5, 5), 1 / 25)).shape
        torch.Size([2, 3, 16, 16])
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    b, _, h, w = images.shape
    if kernels.ndim == 2:
        kernels = kernels[None].expand(b, -1, -1)
    if kernels.ndim != 3 or kernels.shape[0] != b or kernels.shape[1] != kernels.shape[2]:
        raise ValueError(
            f"kernels must be (k, k) or (B, k, k) with B={b}, got shape {tuple(kernels.shape)}"
        )
    k = kernels.shape[-1]
    kernels = kernels.to(device=images.device, dtype=images.dtype)
    if k == 1:
        return images * kernels.view(b, 1, 1, 1)
    use_fft = k >= FFT_MIN_KERNEL_SIZE if fft is None else fft
    if not use_fft:
        return valid_convolve(_reflect_pad(images, k), kernels, fft=False)
    # Circular convolution of the padded frame equals the linear one from row/col k-1 onwards,
    # whatever fills the frame beyond the first k-1 padding rows, so reflection can fill it all
    # up to a fast transform length (which the valid convolution then keeps as it is).
    ph, pw = h + k - 1, w + k - 1
    frame = _reflect_pad(images, k, extra=(_fast_len(ph) - ph, _fast_len(pw) - pw))
    return valid_convolve(frame, kernels, fft=True)[..., :h, :w].contiguous()


def _tent_weights(n: int, grid: int, like: Tensor) -> Tensor:
    """Linear-interpolation weights of ``grid`` anchors spread from pixel 0 to ``n - 1``.

    Shape:
        - output: :math:`(grid, n)`, every column summing to 1.
    """
    if grid == 1 or n == 1:
        return torch.full((grid, n), 1.0 / grid, dtype=like.dtype, device=like.device)
    position = torch.arange(n, dtype=like.dtype, device=like.device) * ((grid - 1) / (n - 1))
    anchor = torch.arange(grid, dtype=like.dtype, device=like.device)
    return (1.0 - (position[None] - anchor[:, None]).abs()).clamp_min(0.0)


def convolve_varying(images: Tensor, kernels: Tensor, fft: bool | None = None) -> Tensor:
    """Blur images with kernels that change across the image (spatially varying blur).

    Each image has a ``G x G`` lattice of kernels whose anchors span it from corner to corner.
    The image is blurred with every anchor's kernel (:func:`convolve`) and the results are
    blended with bilinear weights, so each pixel sees the kernel interpolated from its four
    nearest anchors (Nagy and O'Leary, "Restoring images degraded by spatially variant blur",
    SISC 1998): exact at the anchors, smooth in between, and G² convolutions instead of one.
    Differentiable in both arguments.

    Args:
        images: images to blur.
        kernels: per image, its anchors' kernels; ``[:, i, j]`` is the one at anchor row ``i``
            (top to bottom) and column ``j`` (left to right).
        fft: force the FFT (True) or direct (False) path; None picks by kernel size.

    Returns:
        Blurred images with the dtype and shape of ``images``.

    Shape:
        - images: :math:`(B, C, H, W)`
        - kernels: :math:`(B, G, G, k, k)`
        - output: :math:`(B, C, H, W)`

    Example:
        >>> convolve_varying(torch.rand(2, 3, 16, 16), torch.full((2, 2, 2, 3, 3), 1 / 9)).shape
        torch.Size([2, 3, 16, 16])
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    b, c, h, w = images.shape
    shape = tuple(kernels.shape)
    if kernels.ndim != 5 or shape[0] != b or shape[1] != shape[2] or shape[3] != shape[4]:
        raise ValueError(f"kernels must be (B, G, G, k, k) with B={b}, got shape {shape}")
    g, k = kernels.shape[1], kernels.shape[-1]
    if g == 1:
        return convolve(images, kernels[:, 0, 0], fft)
    kernels = kernels.to(device=images.device, dtype=images.dtype)
    if k >= FFT_MIN_KERNEL_SIZE if fft is None else fft:
        # As convolve()'s FFT path, with each image's transform shared by its G² kernels.
        ph, pw = h + k - 1, w + k - 1
        size = (_fast_len(ph), _fast_len(pw))
        frame = _reflect_pad(images, k, extra=(size[0] - ph, size[1] - pw))
        spectrum = torch.fft.rfft2(frame, s=size)[:, None]  # (B, 1, C, ., .)
        spectra = torch.fft.rfft2(kernels.flatten(1, 2), s=size)[:, :, None]  # (B, G², 1, ., .)
        blurred = torch.fft.irfft2(spectrum * spectra, s=size)[..., k - 1 : ph, k - 1 : pw]
    else:
        stacked = images.repeat_interleave(g * g, dim=0)
        blurred = convolve(stacked, kernels.reshape(b * g * g, k, k), fft=False)
        blurred = blurred.view(b, g * g, c, h, w)
    rows, cols = _tent_weights(h, g, images), _tent_weights(w, g, images)
    weights = (rows[:, None, :, None] * cols[None, :, None, :]).flatten(0, 1)  # (G², H, W)
    # A running weighted sum: an einsum over the same axes measured 15x slower on the CPU.
    out = blurred[:, 0] * weights[0]
    for anchor in range(1, g * g):
        out = out + blurred[:, anchor] * weights[anchor]
    return out


# --------------------------------------------------------------------------------------------------
# Sensor noise
# --------------------------------------------------------------------------------------------------


def add_poisson_gaussian_noise(
    x: Tensor,
    shot: float | Tensor,
    read: float | Tensor,
    generator: torch.Generator | None = None,
    floor: float = 0.0,
) -> Tensor:
    """Add sensor noise with variance ``shot * x + read**2`` (Gaussian approximation), clamped.

    ``shot`` is the photon-noise gain (1 / photo-electrons at full scale) and ``read`` the standard
    deviation of the signal-independent read noise. The Gaussian approximation of the Poisson part
    is accurate above a few photons and much faster than ``torch.poisson``. The standard normal
    draws come from ``generator`` (on its device) or, without one, from torch's global generator
    on ``x``'s device; one is drawn per value of ``x`` even where the levels are 0, so the number
    of draws never depends on the levels. Differentiable in ``x``, ``shot`` and ``read``.

    Args:
        x: linear-light images.
        shot: photon-noise gain (>= 0), one for all or a (B,) tensor (one per image).
        read: read-noise standard deviation (>= 0), one for all or a (B,) tensor.
        generator: random source.
        floor: smallest variance fed to the square root; a positive floor keeps the gradient
            finite where the variance is 0.

    Returns:
        A new tensor, clamped to [0, 1].

    Shape:
        - x, output: :math:`(C, H, W)` or :math:`(B, C, H, W)`, values in [0, 1];
          shot, read: scalars or :math:`(B,)`.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> add_poisson_gaussian_noise(torch.full((1, 1, 2, 2), 0.5), 1e-3, 0.0, g).shape
        torch.Size([1, 1, 2, 2])
    """

    def per_image(value: float | Tensor) -> Tensor:
        # Numbers are checked here; tensors by whoever draws or learns them (a check here would
        # wait on the device at every call).
        if not isinstance(value, Tensor) and value < 0:
            raise ValueError(f"shot and read noise must be >= 0, got {value!r}")
        t = torch.as_tensor(value, dtype=x.dtype, device=x.device)
        return t.view(-1, *([1] * (x.ndim - 1))) if t.ndim else t

    shot_t, read_t = per_image(shot), per_image(read)
    if generator is None:
        # randn_like, not randn(x.shape): torch.compile traces it with symbolic sizes.
        z = torch.randn_like(x)
    else:
        z = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype)
        z = z.to(x.device)
    # In place on the fresh temporaries: three passes over a large image, not seven.
    std = (x.clamp_min(0.0) * shot_t).add_(read_t * read_t).clamp_min_(floor).sqrt_()
    return z.mul_(std).add_(x).clamp_(0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# White balance
# --------------------------------------------------------------------------------------------------


def white_balance(x: Tensor, gains: Tensor, undo: bool = False) -> Tensor:
    """Apply a camera's white balance: each colour channel times its gain, or divided by it
    with ``undo`` (from the camera's output back to the RAW it saw). Differentiable in both.

    Args:
        x: linear RGB images.
        gains: per-channel gains of each image (green is usually 1).
        undo: divide instead of multiply.

    Returns:
        A new tensor.

    Shape:
        - x, output: :math:`(B, 3, H, W)`; gains: :math:`(B, 3)`
    """
    g = gains.to(device=x.device, dtype=x.dtype).view(-1, x.shape[1], 1, 1)
    return x / g if undo else x * g


# --------------------------------------------------------------------------------------------------
# Bayer mosaic and demosaicing
# --------------------------------------------------------------------------------------------------


BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
# kornia names a pattern after OpenCV, by the colours at pixel (1, 1) and its right neighbour.
_KORNIA_CFA = {
    "RGGB": kornia.color.CFA.BG,
    "BGGR": kornia.color.CFA.RG,
    "GRBG": kornia.color.CFA.GB,
    "GBRG": kornia.color.CFA.GR,
}


def _check_pattern(pattern: str) -> None:
    """Refuse an unknown Bayer pattern.

    Raises:
        ValueError: ``pattern`` is not one of :data:`BAYER_PATTERNS`.
    """
    if pattern not in BAYER_PATTERNS:
        raise ValueError(f"bayer pattern must be one of {BAYER_PATTERNS}, got {pattern!r}")


def _cell(pattern: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Channel index (R=0, G=1, B=2) of each photosite of the pattern's 2x2 cell."""
    _check_pattern(pattern)
    index = ["RGB".index(letter) for letter in pattern]
    return (index[0], index[1]), (index[2], index[3])


def _sites(h: int, w: int) -> list[tuple[int, int, slice, slice]]:
    """The four sub-lattices of a Bayer frame: cell position and the slices that select it."""
    return [(i, j, slice(i, h, 2), slice(j, w, 2)) for i in (0, 1) for j in (0, 1)]


def mosaic(images: Tensor, pattern: str = "RGGB") -> Tensor:
    """Sample RGB images the way a Bayer sensor does: one colour per photosite (kornia).

    Args:
        images: linear RGB images, any size.
        pattern: colours of the top-left 2x2 cell read row by row, one of
            :data:`BAYER_PATTERNS`.

    Returns:
        The single-channel RAW mosaic.

    Shape:
        - images: :math:`(B, 3, H, W)`
        - output: :math:`(B, 1, H, W)`

    Example:
        >>> mosaic(torch.rand(2, 3, 4, 6)).shape
        torch.Size([2, 1, 4, 6])
    """
    _check_pattern(pattern)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"mosaic needs (B, 3, H, W) images, got shape {tuple(images.shape)}")
    return kornia.color.rgb_to_raw(images, _KORNIA_CFA[pattern])


def demosaic_bilinear(raw: Tensor, pattern: str = "RGGB") -> Tensor:
    """Rebuild RGB from a Bayer mosaic by bilinear interpolation.

    Each photosite keeps its own colour and takes each missing colour from the mean of its
    nearest neighbours of that colour: left/right or up/down ones on a green site, the four
    crosswise greens and the four diagonal red/blue ones on a red or blue site. The stencils are
    evaluated on each of the four sub-lattices separately (strided views of one padded frame), so
    no sparse colour planes are built and every output value is computed once.

    Borders are reflect-padded: reflection about the edge row maps row -1 to row 1, of the same
    parity, so the padded frame continues the Bayer pattern and border pixels are interpolated
    exactly like inner ones. kornia's ``raw_to_rgb`` computes the same interpolation (equal to
    float rounding, tested) but only for even heights and widths, and training crops come in
    any size.

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
# JPEG
# --------------------------------------------------------------------------------------------------


def jpeg_compress(x: Tensor, quality: int | Sequence[int]) -> Tensor:
    """Round-trip images through JPEG at the given quality (one per image, or one for all).

    Args:
        x: images with 1 or 3 channels.
        quality: JPEG quality 1-100.

    Shape:
        - x, output: :math:`(C, H, W)` or :math:`(B, C, H, W)`, values in [0, 1].
    """
    from torchvision.io import decode_jpeg, encode_jpeg

    single = x.ndim == 3
    batch = x[None] if single else x
    if batch.shape[1] not in (1, 3):
        raise ValueError(f"JPEG needs 1 or 3 channels, got {batch.shape[1]}")
    qualities = [int(quality)] * batch.shape[0] if isinstance(quality, int) else list(quality)
    if len(qualities) != batch.shape[0]:
        raise ValueError(f"need one quality per image, got {len(qualities)} for {batch.shape[0]}")
    as_bytes = batch.detach().mul(255.0).round_().clamp_(0, 255).to(torch.uint8).cpu()
    out = []
    for img, q in zip(as_bytes, qualities, strict=True):
        if not 1 <= q <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {q}")
        out.append(decode_jpeg(encode_jpeg(img, quality=q)))
    result = torch.stack(out).to(device=x.device, dtype=x.dtype).div_(255.0)
    return result[0] if single else result


# --------------------------------------------------------------------------------------------------
# Frame averaging (GoPro)
# --------------------------------------------------------------------------------------------------


def gopro_blur(frames: Tensor, gamma: float = 2.2) -> tuple[Tensor, Tensor]:
    """DeepDeblur's GoPro protocol: average consecutive sharp frames in linear light.

    The blurry image is the mean of the frames through the inverse camera response, re-encoded;
    the sharp target is the middle frame (index ``N // 2``, the later of the two for even N).

    Shape:
        - frames: :math:`(N, C, H, W)` in [0, 1]
        - output: two :math:`(C, H, W)` tensors ``(blur, sharp)``.
    """
    if frames.ndim != 4 or frames.shape[0] < 1:
        raise ValueError(f"frames must be (N, C, H, W) with N >= 1, got {tuple(frames.shape)}")
    blur = from_linear(to_linear(frames, "gamma", gamma).mean(dim=0), "gamma", gamma)
    return blur, frames[frames.shape[0] // 2].clone()
