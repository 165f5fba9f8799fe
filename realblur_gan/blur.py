"""Synthetic blur: blur kernels, a camera response curve, noise, JPEG and batched convolution.

Everything works on float32 tensors in [0, 1], shaped (C, H, W) or (B, C, H, W). Randomness comes
only from an optional ``torch.Generator``, so a seeded generator reproduces a result exactly.

Two composable callables build training pairs from sharp photos:

* :class:`SimpleBlur` -- random Gaussian, linear-motion or disk kernels applied directly to the
  sRGB values: the plain "synthetic pairs" the paper starts from.
* :class:`RealisticBlur` -- camera-shake trajectory kernels applied in linear light, with exposure
  gain, sensor saturation, Poisson-Gaussian noise, the camera's gamma and JPEG compression.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

logger = logging.getLogger(__name__)

__all__ = [
    "RealisticBlur",
    "SimpleBlur",
    "add_poisson_gaussian_noise",
    "convolve",
    "disk_kernel",
    "gaussian_kernel",
    "gopro_blur",
    "jpeg_compress",
    "linear_motion_kernel",
    "linear_to_srgb",
    "srgb_to_linear",
    "trajectory_kernel",
    "trajectory_kernels",
]

# Kernels at least this wide go through the FFT: on a 2-core CPU direct grouped convolution
# wins only for small kernels (measured on 256x256 and 1280x720 RGB batches).
FFT_MIN_KERNEL_SIZE = 8
# Rasterised trajectories are resampled so that consecutive samples are at most this many pixels
# apart; bilinear splatting then draws a continuous stroke with no gaps.
_MAX_SAMPLE_SPACING = 0.35
_TRAJECTORY_VERTICES = 96

Range = float | Sequence[float]


def _as_range(value: Range, name: str) -> tuple[float, float]:
    """Turn a scalar or a two-item sequence (a Hydra list, too) into a ``(low, high)`` pair."""
    if isinstance(value, int | float):
        return float(value), float(value)
    items = [float(v) for v in value]
    if len(items) != 2 or items[0] > items[1]:
        raise ValueError(f"{name} must be a number or [low, high] with low <= high, got {value!r}")
    return items[0], items[1]


def _uniform(
    n: int, low: float, high: float, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """``n`` samples from U(low, high) drawn on ``device`` (the generator's device when given)."""
    gen_device = generator.device if generator is not None else device
    u = torch.rand(n, generator=generator, device=gen_device)
    return (low + (high - low) * u).to(device)


def _check_size(size: int) -> None:
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"kernel size must be a positive int, got {size!r}")


# --------------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------------


def _splat(points: Tensor, size: int) -> Tensor:
    """Rasterise sub-pixel point sets into normalised kernels by bilinear splatting.

    Args:
        points: kernel-pixel coordinates ``(x, y)``, all inside ``[0, size - 1]``.
        size: side of the square kernels.

    Returns:
        Kernels that are non-negative and sum to 1.

    Shape:
        - points: :math:`(N, P, 2)`
        - output: :math:`(N, size, size)`
    """
    n = points.shape[0]
    pts = points.clamp(0.0, size - 1.0)
    base = pts.floor()
    frac = pts - base
    x0 = base[..., 0].long()
    y0 = base[..., 1].long()
    fx = frac[..., 0]
    fy = frac[..., 1]
    # The four neighbours; indices past the border only ever carry zero weight, so clamping is safe.
    x1 = (x0 + 1).clamp(max=size - 1)
    y1 = (y0 + 1).clamp(max=size - 1)
    index = torch.cat([y0 * size + x0, y0 * size + x1, y1 * size + x0, y1 * size + x1], dim=1)
    weight = torch.cat([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], dim=1)
    flat = torch.zeros(n, size * size, dtype=points.dtype, device=points.device)
    flat.scatter_add_(1, index, weight)
    total = flat.sum(dim=1, keepdim=True)
    # Points are always inside the grid so the total is positive; the guard only keeps NaN out.
    flat = torch.where(total > 0, flat / total.clamp_min(1e-12), _delta_flat(n, size, flat))
    return flat.view(n, size, size)


def _delta_flat(n: int, size: int, like: Tensor) -> Tensor:
    flat = torch.zeros(n, size * size, dtype=like.dtype, device=like.device)
    centre = (size // 2) * size + size // 2
    flat[:, centre] = 1.0
    return flat


def _resample_polyline(path: Tensor) -> Tensor:
    """Insert evenly spaced points on every segment so no two samples are far apart.

    Each vertex stands for an equal slice of exposure time, so every segment gets the same number
    of samples: where the camera moves slowly the samples bunch up and the kernel is brighter.

    Shape:
        - path: :math:`(N, T, 2)`
        - output: :math:`(N, (T - 1) m + 1, 2)` for the smallest ``m`` meeting the spacing bound.
    """
    seg = path[:, 1:] - path[:, :-1]
    longest = float(seg.norm(dim=-1).max()) if seg.numel() else 0.0
    m = max(1, min(256, math.ceil(longest / _MAX_SAMPLE_SPACING)))
    if m == 1:
        return path
    t = torch.arange(m, dtype=path.dtype, device=path.device) / m
    dense = path[:, :-1, None, :] + seg[:, :, None, :] * t[None, None, :, None]
    return torch.cat([dense.flatten(1, 2), path[:, -1:]], dim=1)


def _fit_to_kernel(path: Tensor, size: int, extent: Tensor) -> Tensor:
    """Scale paths to a target extent and centre them on the kernel.

    The larger side of each path's bounding box is scaled to ``extent`` pixels. The path is then
    shifted so its centre of mass sits on the kernel centre (the blur does not move the image),
    unless that would push it over the border, in which case it is shifted just enough to fit.

    Shape:
        - path: :math:`(N, P, 2)`; extent: :math:`(N,)`
        - output: :math:`(N, P, 2)` in kernel-pixel coordinates.
    """
    lo = path.amin(dim=1)
    hi = path.amax(dim=1)
    span = (hi - lo).amax(dim=1)
    scale = torch.where(span > 1e-9, extent / span.clamp_min(1e-9), torch.zeros_like(span))
    path = (path - lo[:, None]) * scale[:, None, None]
    lo = torch.zeros_like(lo)
    hi = path.amax(dim=1)
    centroid = path.mean(dim=1)
    centre = (size - 1) / 2.0
    shift = torch.minimum(torch.maximum(centre - centroid, -lo), (size - 1) - hi)
    return path + shift[:, None]


def _trajectory_kernels(
    size: int, intensity: Tensor, max_extent: Tensor, generator: torch.Generator | None
) -> Tensor:
    """Batched camera-shake kernels; see :func:`trajectory_kernels`. All inputs are (N,)."""
    n = intensity.shape[0]
    t = _TRAJECTORY_VERTICES
    gen_device = generator.device if generator is not None else torch.device("cpu")

    def randn(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=generator, device=gen_device)

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator, device=gen_device)

    # All draws happen up front in a fixed order so the result depends only on the generator state.
    heading0 = rand(n, 1) * (2 * math.pi)
    wobble = randn(n, t - 1)
    drift = randn(n, 1)
    jerk_at = rand(n, t - 1)
    jerk_angle = rand(n, t - 1)
    jerk_sign = rand(n, t - 1)
    speed_noise = randn(n, t - 1)
    extent_u = rand(n)

    k = intensity.to(gen_device)[:, None]
    # Heading: a random walk whose total wander grows with intensity (straight line at 0), a slow
    # steady turn (arc-shaped strokes), and rare sharp jerks that turn back on the path, which is
    # what hand-held shake looks like at long exposures.
    wander = wobble * (1.6 * math.pi * k / math.sqrt(t)) + drift * (0.8 * math.pi * k / t)
    jerk_prob = 2.5 * k / t
    jerk = (jerk_at < jerk_prob).float()
    jerk_turn = (0.25 + 0.75 * jerk_angle) * math.pi * torch.where(jerk_sign < 0.5, -1.0, 1.0)
    turns = wander + jerk * jerk_turn * k.clamp_min(0.3)
    heading = torch.cat([heading0, heading0 + torch.cumsum(turns, dim=1)], dim=1)[:, :-1]
    # Speed varies smoothly (log-normal around 1); slow parts of the path collect more light.
    log_speed = torch.cumsum(speed_noise * (0.25 * k), dim=1)
    log_speed = log_speed - log_speed.mean(dim=1, keepdim=True)
    speed = log_speed.clamp(-1.2, 1.2).exp()
    steps = torch.stack([torch.cos(heading), torch.sin(heading)], dim=-1) * speed[..., None]
    path = torch.cat([torch.zeros(n, 1, 2, device=gen_device), torch.cumsum(steps, dim=1)], dim=1)

    # Larger shakes span more of the kernel: from 25-45 % of it at intensity 0 to 60-100 % at 1.
    frac = (0.25 + 0.35 * k[:, 0]) + (0.2 + 0.2 * k[:, 0]) * extent_u
    extent = (max_extent.to(gen_device) * frac).clamp(0.0, size - 1.0)
    path = _fit_to_kernel(path, size, extent)
    path = _resample_polyline(path)
    return _splat(path, size)


def trajectory_kernels(
    n: int,
    size: int,
    intensity: float | tuple[float, float] = 0.5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random camera-shake blur kernels from smooth random-walk trajectories.

    A trajectory is a walk of equal time steps whose heading wanders more, turns more sharply and
    whose speed varies more as ``intensity`` grows: ``0`` gives a short straight stroke, ``1`` a
    long tangled one. Each trajectory is scaled to fill part of the kernel (more with intensity),
    centred on its centre of mass and drawn with sub-pixel bilinear splatting, so every size from
    3 upwards gives a valid kernel: non-negative, summing to 1 and free of NaN.

    Args:
        n: number of kernels.
        size: side of the square kernels (any int >= 1; odd sizes keep the blur centred).
        intensity: shake strength in [0, 1], or a ``(low, high)`` range sampled per kernel.
        generator: random source; the same seed gives the same kernels.

    Returns:
        float32 kernels.

    Shape:
        - output: :math:`(n, size, size)`

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> trajectory_kernels(4, 33, (0.2, 0.8), generator=g).shape
        torch.Size([4, 33, 33])
    """
    _check_size(size)
    lo, hi = _as_range(intensity, "intensity")
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"intensity must lie in [0, 1], got {intensity!r}")
    device = generator.device if generator is not None else torch.device("cpu")
    k = _uniform(n, lo, hi, generator, device)
    extent = torch.full((n,), size - 1.0, device=device)
    return _trajectory_kernels(size, k, extent, generator)


def trajectory_kernel(
    size: int, intensity: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """One camera-shake kernel; see :func:`trajectory_kernels`.

    Shape:
        - output: :math:`(size, size)`
    """
    return trajectory_kernels(1, size, intensity, generator)[0]


def gaussian_kernel(size: int, sigma: float | Tensor) -> Tensor:
    """Isotropic Gaussian kernel(s) (kornia), normalised to sum 1.

    Args:
        size: side of the square kernel; even sizes are centred between pixels.
        sigma: standard deviation in pixels (> 0), or a tensor of them for a batch.

    Shape:
        - output: :math:`(size, size)` for a float sigma, :math:`(N, size, size)` for sigma (N,).
    """
    _check_size(size)
    sig = torch.as_tensor(sigma, dtype=torch.float32)
    if (sig <= 0).any():
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    batch = sig.reshape(-1, 1).expand(-1, 2)
    kernel = kornia.filters.get_gaussian_kernel2d(size, batch, force_even=True)
    return kernel[0] if sig.ndim == 0 else kernel


def linear_motion_kernel(size: int, length: float, angle_deg: float) -> Tensor:
    """A straight motion-blur stroke, anti-aliased, of sub-pixel ``length``, centred.

    kornia's ``get_motion_kernel2d`` ties the stroke length to an odd kernel size; this draws the
    same line with the trajectory rasteriser so any length fits in any size.

    Args:
        size: side of the square kernel.
        length: stroke length in pixels (clipped to ``size - 1``; 0 gives a delta).
        angle_deg: direction, counter-clockwise from the +x axis.

    Shape:
        - output: :math:`(size, size)`
    """
    _check_size(size)
    length = min(max(float(length), 0.0), size - 1.0)
    theta = math.radians(angle_deg)
    # y grows downwards in an image, so a counter-clockwise angle flips the y component.
    direction = torch.tensor([math.cos(theta), -math.sin(theta)])
    t = torch.linspace(-0.5, 0.5, max(2, math.ceil(length / _MAX_SAMPLE_SPACING) + 1))
    centre = (size - 1) / 2.0
    points = centre + t[:, None] * length * direction[None]
    return _splat(points[None], size)[0]


def disk_kernel(size: int, radius: float) -> Tensor:
    """An anti-aliased uniform disk (defocus blur), centred, normalised to sum 1.

    kornia has no disk kernel; pixel coverage is approximated by a one-pixel linear ramp.

    Args:
        size: side of the square kernel.
        radius: disk radius in pixels (clipped to ``(size - 1) / 2``; 0 gives a delta).

    Shape:
        - output: :math:`(size, size)`
    """
    _check_size(size)
    radius = min(max(float(radius), 0.0), (size - 1) / 2.0)
    coords = torch.arange(size, dtype=torch.float32) - (size - 1) / 2.0
    dist = torch.sqrt(coords[None, :] ** 2 + coords[:, None] ** 2)
    cover = (radius + 0.5 - dist).clamp(0.0, 1.0)
    total = cover.sum()
    if total <= 0:
        return _delta_flat(1, size, cover)[0].view(size, size)
    return cover / total


# --------------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------------


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


def convolve(images: Tensor, kernels: Tensor, fft: bool | None = None) -> Tensor:
    """Blur images with one shared kernel or one kernel per image, keeping the size.

    This is a true convolution (the kernel is flipped), so a trajectory kernel reads as the path
    of a point light. Borders are reflect-padded; large kernels go through the FFT.

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
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    b, c, h, w = images.shape
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
        padded = _reflect_pad(images, k)
        weight = kernels.flip(-2, -1).repeat_interleave(c, dim=0)[:, None]
        out = F.conv2d(padded.reshape(1, b * c, *padded.shape[-2:]), weight, groups=b * c)
        return out.view(b, c, h, w)
    ph, pw = h + k - 1, w + k - 1
    fh, fw = _fast_len(ph), _fast_len(pw)
    # Circular convolution of the padded frame equals the linear one from row/col k-1 onwards,
    # whatever fills the frame beyond the first k-1 padding rows, so reflection can fill it all.
    padded = _reflect_pad(images, k, extra=(fh - ph, fw - pw))
    spec = torch.fft.rfft2(padded) * torch.fft.rfft2(kernels, s=(fh, fw))[:, None]
    out = torch.fft.irfft2(spec, s=(fh, fw))
    return out[..., k - 1 : k - 1 + h, k - 1 : k - 1 + w].contiguous()


# --------------------------------------------------------------------------------------------------
# Camera pipeline pieces
# --------------------------------------------------------------------------------------------------


def srgb_to_linear(x: Tensor, gamma: float = 2.2) -> Tensor:
    """Undo the camera response with a power-law gamma (the usual 2.2 approximation of sRGB).

    Shape:
        - x, output: any shape, values in [0, 1].
    """
    return x.clamp(0.0, 1.0).pow_(gamma)


def linear_to_srgb(x: Tensor, gamma: float = 2.2) -> Tensor:
    """Apply the power-law camera response, the inverse of :func:`srgb_to_linear`.

    Shape:
        - x, output: any shape, values in [0, 1].
    """
    return x.clamp(0.0, 1.0).pow_(1.0 / gamma)


def add_poisson_gaussian_noise(
    x: Tensor,
    shot: float | Tensor,
    read: float | Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Add sensor noise with variance ``shot * x + read**2`` (Gaussian approximation), clamped.

    ``shot`` is the photon-noise gain (1 / photo-electrons at full scale) and ``read`` the standard
    deviation of the signal-independent read noise. The Gaussian approximation of the Poisson part
    is accurate above a few photons and much faster than ``torch.poisson``.

    Args:
        x: linear-light images.
        shot: photon-noise gain, one for all or a (B,) tensor (one per image of a batch).
        read: read-noise standard deviation, one for all or a (B,) tensor.
        generator: random source.

    Shape:
        - x, output: :math:`(C, H, W)` or :math:`(B, C, H, W)`, values in [0, 1].
    """

    def per_image(value: float | Tensor) -> Tensor:
        t = torch.as_tensor(value, dtype=x.dtype, device=x.device)
        if (t < 0).any():
            raise ValueError(f"shot and read noise must be >= 0, got {value!r}")
        return t.view(-1, *([1] * (x.ndim - 1))) if t.ndim else t

    shot_t, read_t = per_image(shot), per_image(read)
    if not bool((shot_t > 0).any() or (read_t > 0).any()):
        return x
    return _add_noise_(x.clone(), shot_t, read_t, generator)


def _add_noise_(x: Tensor, shot: Tensor, read: Tensor, generator: torch.Generator | None) -> Tensor:
    """In-place core of :func:`add_poisson_gaussian_noise`: few passes over a large image."""
    gen_device = generator.device if generator is not None else x.device
    z = torch.randn(x.shape, generator=generator, device=gen_device, dtype=x.dtype).to(x.device)
    std = (x.clamp_min(0.0) * shot).add_(read * read).sqrt_()
    return x.add_(z.mul_(std)).clamp_(0.0, 1.0)


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
    blur = linear_to_srgb(srgb_to_linear(frames, gamma).mean(dim=0), gamma)
    return blur, frames[frames.shape[0] // 2].clone()


# --------------------------------------------------------------------------------------------------
# Composable degradations
# --------------------------------------------------------------------------------------------------


def _as_batch(images: Tensor) -> tuple[Tensor, bool]:
    if images.ndim == 3:
        return images[None], True
    if images.ndim == 4:
        return images, False
    raise ValueError(f"images must be (C, H, W) or (B, C, H, W), got shape {tuple(images.shape)}")


def _size_range(value: int | Sequence[int], name: str) -> tuple[int, int]:
    lo, hi = _as_range(value, name)
    if lo < 1 or lo != int(lo) or hi != int(hi):
        raise ValueError(f"{name} must be positive ints, got {value!r}")
    return int(lo), int(hi)


def _odd_sizes(
    n: int, low: int, high: int, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """Odd kernel sizes in [low, high] (rounded up to odd) so kernels stay centred."""
    u = _uniform(n, 0.0, 1.0, generator, torch.device("cpu"))
    sizes = (low + (u * (high - low + 1)).floor().clamp(max=high - low)).long()
    return (sizes | 1).to(device)


def _embed(kernels: list[Tensor], size: int) -> Tensor:
    """Centre odd-sized kernels in a common ``size`` x ``size`` grid."""
    out = torch.zeros(len(kernels), size, size)
    for i, kern in enumerate(kernels):
        off = (size - kern.shape[-1]) // 2
        out[i, off : off + kern.shape[-1], off : off + kern.shape[-1]] = kern
    return out


class SimpleBlur:
    """Random Gaussian, linear-motion or disk blur applied directly to sRGB values.

    This is the naive synthetic pair of the paper's starting point: no camera response, no noise.
    Each image gets its own kernel type, size and parameters.

    Args:
        kernel_size: kernel side, or ``[low, high]`` range (rounded up to odd).
        kinds: kernel types to draw from: ``"gaussian"``, ``"motion"``, ``"disk"``.
        probs: probability of each kind (defaults to uniform).
        sigma: Gaussian sigma range as a fraction of ``(size - 1) / 2``.
        motion_length: motion stroke length range as a fraction of ``size - 1``.
        disk_radius: disk radius range as a fraction of ``(size - 1) / 2``.

    Shape:
        - images: :math:`(C, H, W)` or :math:`(B, C, H, W)` in [0, 1]
        - output: same shape; ``last_kernels``: :math:`(B, k, k)`, k the largest size drawn.

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
    ) -> None:
        self.kernel_size = _size_range(kernel_size, "kernel_size")
        self.kinds = tuple(str(k) for k in kinds)
        unknown = set(self.kinds) - set(self.KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be a non-empty subset of {self.KINDS}, got {kinds!r}")
        weights = [1.0] * len(self.kinds) if probs is None else [float(p) for p in probs]
        if len(weights) != len(self.kinds) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"probs must give one non-negative weight per kind, got {probs!r}")
        self.probs = torch.tensor(weights) / sum(weights)
        self.sigma = _as_range(sigma, "sigma")
        self.motion_length = _as_range(motion_length, "motion_length")
        self.disk_radius = _as_range(disk_radius, "disk_radius")
        self.last_kernels: Tensor | None = None

    def kernels(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` kernels, centred in a common grid.

        Shape:
            - output: :math:`(n, k, k)`
        """
        cpu = torch.device("cpu")
        sizes = _odd_sizes(n, *self.kernel_size, generator, cpu).tolist()
        gen_device = generator.device if generator is not None else cpu
        kind_idx = torch.multinomial(
            self.probs.to(gen_device), n, replacement=True, generator=generator
        ).tolist()
        params = _uniform(n, 0.0, 1.0, generator, cpu).tolist()
        angles = _uniform(n, 0.0, 180.0, generator, cpu).tolist()
        out = []
        for size, kind_i, p, angle in zip(sizes, kind_idx, params, angles, strict=True):
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
        return _embed(out, max(sizes))

    def sample(
        self, images: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Blur ``images`` and also return the kernels used, ``(blurred, kernels)``."""
        batch, single = _as_batch(images)
        kernels = self.kernels(batch.shape[0], generator)
        blurred = convolve(batch, kernels).clamp(0.0, 1.0)
        self.last_kernels = kernels
        return (blurred[0] if single else blurred), kernels

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.sample(images, generator)[0]

    def __repr__(self) -> str:
        return f"SimpleBlur(kernel_size={self.kernel_size}, kinds={self.kinds})"


class RealisticBlur:
    """Camera-shake blur simulated through a camera pipeline.

    Steps, each switched off by passing None (or a zero range for the noise):
    camera-shake trajectory kernel -> linearise with ``gamma`` -> blur in linear light ->
    exposure gain and sensor saturation (clip at 1) -> Poisson-Gaussian noise -> re-apply gamma
    -> JPEG at a random quality. Parameters given as ranges are drawn per image.

    Args:
        kernel_size: kernel side, or ``[low, high]`` range (rounded up to odd).
        intensity: camera-shake intensity in [0, 1], or a range.
        gamma: camera gamma; None blurs the sRGB values directly.
        exposure: gain applied in linear light before clipping (values > 1 saturate highlights
            the way long exposures do); None for no gain.
        noise_shot: photon-noise gain range (variance ``shot * x``); None for no shot noise.
        noise_read: read-noise standard deviation range; None for no read noise.
        jpeg_quality: JPEG quality or range; None for no JPEG.

    Shape:
        - images: :math:`(C, H, W)` or :math:`(B, C, H, W)` in [0, 1]
        - output: same shape; ``last_kernels``: :math:`(B, k, k)`, k the largest size drawn.

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
    ) -> None:
        self.kernel_size = _size_range(kernel_size, "kernel_size")
        self.intensity = _as_range(intensity, "intensity")
        if not 0.0 <= self.intensity[0] <= self.intensity[1] <= 1.0:
            raise ValueError(f"intensity must lie in [0, 1], got {intensity!r}")
        self.gamma = None if gamma is None else float(gamma)
        self.exposure = None if exposure is None else _as_range(exposure, "exposure")
        self.noise_shot = None if noise_shot is None else _as_range(noise_shot, "noise_shot")
        self.noise_read = None if noise_read is None else _as_range(noise_read, "noise_read")
        self.jpeg_quality = None if jpeg_quality is None else _size_range(jpeg_quality, "jpeg")
        if self.jpeg_quality is not None and self.jpeg_quality[1] > 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality!r}")
        self.last_kernels: Tensor | None = None

    def kernels(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``n`` camera-shake kernels, each scaled to its own size, in a common grid.

        Shape:
            - output: :math:`(n, k, k)`
        """
        cpu = torch.device("cpu")
        sizes = _odd_sizes(n, *self.kernel_size, generator, cpu)
        intensity = _uniform(n, *self.intensity, generator, cpu)
        grid = int(sizes.max())
        return _trajectory_kernels(grid, intensity, sizes.float() - 1.0, generator).cpu()

    def sample(
        self, images: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Degrade ``images`` and also return the kernels used, ``(blurred, kernels)``."""
        batch, single = _as_batch(images)
        n, device = batch.shape[0], batch.device
        kernels = self.kernels(n, generator)
        # Draw every per-image parameter before touching pixels so the stream order is fixed.
        gain = None if self.exposure is None else _uniform(n, *self.exposure, generator, device)
        shot = None if self.noise_shot is None else _uniform(n, *self.noise_shot, generator, device)
        read = None if self.noise_read is None else _uniform(n, *self.noise_read, generator, device)
        quality = None
        if self.jpeg_quality is not None:
            lo, hi = self.jpeg_quality
            quality = [int(q) for q in _uniform(n, lo, hi + 1 - 1e-6, generator, device).floor()]

        # convolve() returns a fresh tensor, so every later step can work in place on it.
        x = convolve(batch if self.gamma is None else srgb_to_linear(batch, self.gamma), kernels)
        if gain is not None:
            x.mul_(gain.view(n, 1, 1, 1))
        x.clamp_(0.0, 1.0)
        if shot is not None or read is not None:
            zeros = torch.zeros(n, device=device)
            shot_t = (zeros if shot is None else shot).view(n, 1, 1, 1)
            read_t = (zeros if read is None else read).view(n, 1, 1, 1)
            x = _add_noise_(x, shot_t, read_t, generator)
        if self.gamma is not None:
            x.pow_(1.0 / self.gamma)
        if quality is not None:
            x = jpeg_compress(x, quality)
        self.last_kernels = kernels
        return (x[0] if single else x), kernels

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.sample(images, generator)[0]

    def __repr__(self) -> str:
        return (
            f"RealisticBlur(kernel_size={self.kernel_size}, intensity={self.intensity}, "
            f"gamma={self.gamma}, exposure={self.exposure}, noise_shot={self.noise_shot}, "
            f"noise_read={self.noise_read}, jpeg_quality={self.jpeg_quality})"
        )
