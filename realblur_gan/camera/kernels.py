"""Blur kernels and the one rasteriser that draws them.

Every kernel here is non-negative and sums to 1 (the blur keeps the image's mean brightness).
Paths of a point light -- straight strokes, random camera-shake trajectories, the learnable
camera's random walks (:mod:`realblur_gan.nets.learnable_camera`) -- all become kernels through
:func:`rasterise`, which is differentiable in the path points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import kornia
import torch
from torch import Tensor

__all__ = [
    "SIZE_LAWS",
    "FrameExposures",
    "Range",
    "as_range",
    "check_size_law",
    "disk_kernel",
    "frame_exposures",
    "gaussian_kernel",
    "linear_motion_kernel",
    "odd_sizes",
    "rasterise",
    "shake_kernels",
    "trajectory_kernel",
    "trajectory_kernels",
    "uniform",
    "varying_shake_kernels",
]

# Rasterised trajectories are resampled so that consecutive samples are at most this many pixels
# apart; bilinear splatting then draws a continuous stroke with no gaps.
_MAX_SAMPLE_SPACING = 0.35
_TRAJECTORY_VERTICES = 96
# Samples per path drawn as separate frame exposures: a few tenths of a pixel apart within each
# frame even for the longest, most tangled paths of a 95 px kernel.
_EXPOSURE_POINTS = 2048


# --------------------------------------------------------------------------------------------------
# Ranges and seeded draws (the synthetic blurs draw from them too)
# --------------------------------------------------------------------------------------------------

Range = float | Sequence[float]


def as_range(value: Range, name: str) -> tuple[float, float]:
    """Turn a scalar or a two-item sequence (a Hydra list, too) into a ``(low, high)`` pair.

    Raises:
        ValueError: not a number or a ``[low, high]`` pair with ``low <= high``.
    """
    if isinstance(value, int | float):
        return float(value), float(value)
    items = [float(v) for v in value]
    if len(items) != 2 or items[0] > items[1]:
        raise ValueError(f"{name} must be a number or [low, high] with low <= high, got {value!r}")
    return items[0], items[1]


def uniform(
    n: int, low: float, high: float, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """``n`` samples from U(low, high) drawn on the generator's device, returned on ``device``."""
    gen_device = generator.device if generator is not None else device
    u = torch.rand(n, generator=generator, device=gen_device)
    return (low + (high - low) * u).to(device)


#: How kernel sizes spread over their range: ``"uniform"`` in pixels, or ``"log"``: uniform in
#: log-size, so every octave of blur (3-6 px, 6-12 px, ...) is drawn equally often.
SIZE_LAWS = ("uniform", "log")


def check_size_law(law: str) -> str:
    """``law`` if it is one of :data:`SIZE_LAWS`, else a ValueError that lists them."""
    if law not in SIZE_LAWS:
        raise ValueError(f"kernel size law must be one of {SIZE_LAWS}, got {law!r}")
    return law


def odd_sizes(
    n: int,
    low: int,
    high: int,
    generator: torch.Generator | None,
    device: torch.device,
    law: str = "uniform",
) -> Tensor:
    """Odd kernel sizes in [low, high] (rounded up to odd) so kernels stay centred.

    One uniform draw per size whatever the ``law`` (:data:`SIZE_LAWS`), so the draws that
    follow are the same under either law.

    Shape:
        - output: :math:`(n,)`, long.
    """
    check_size_law(law)
    u = uniform(n, 0.0, 1.0, generator, torch.device("cpu"))
    if law == "log":
        # Uniform in log-size over [low, high + 1): as many mild blurs as large ones per octave.
        span = math.log(high + 1) - math.log(low)
        sizes = torch.exp(math.log(low) + u.double() * span).floor().clamp(low, high).long()
    else:
        sizes = (low + (u * (high - low + 1)).floor().clamp(max=high - low)).long()
    return (sizes | 1).to(device)


# --------------------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------------------


def _check_size(size: int) -> None:
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"kernel size must be a positive int, got {size!r}")


def rasterise(points: Tensor, size: int, light: Tensor | None = None) -> Tensor:
    """Draw point paths into normalised kernels by bilinear splatting.

    Each point spreads one unit of light (or its ``light``) over its four neighbouring pixels,
    so a densely sampled path draws a continuous anti-aliased stroke, and where points bunch up
    (the camera moved slowly) the stroke is brighter. Differentiable in the point positions (the
    weights are bilinear in them), so a loss on a blurred image reaches the path.

    Args:
        points: kernel-pixel coordinates ``(x, y)`` from the top-left pixel's centre; points
            beyond ``[0, size - 1]`` are clamped onto the border.
        size: side of the square kernels.
        light: non-negative light carried by each point; None for one unit each.

    Returns:
        Kernels that are non-negative and sum to 1.

    Shape:
        - points: :math:`(N, P, 2)`; light: :math:`(N, P)`
        - output: :math:`(N, size, size)`

    Example:
        >>> rasterise(torch.tensor([[[1.0, 1.0], [1.5, 1.0]]]), 3)[0]
        tensor([[0.0000, 0.0000, 0.0000],
                [0.0000, 0.7500, 0.2500],
                [0.0000, 0.0000, 0.0000]])
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
    if light is not None:
        weight = weight * light.repeat(1, 4)
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
    path = _trajectory_paths(size, intensity, max_extent, generator)
    return rasterise(_resample_polyline(path), size)


def _trajectory_paths(
    size: int,
    intensity: Tensor,
    max_extent: Tensor,
    generator: torch.Generator | None,
    span: tuple[float, float] | None = None,
) -> Tensor:
    """The camera-shake paths of :func:`_trajectory_kernels`, fitted to the kernel, not drawn.

    ``span`` is the range of the fraction of ``max_extent`` a path spans, drawn per path; None
    ties it to the intensity (25-45 % at 0, 60-100 % at 1). The draws are the same either way.

    Shape:
        - intensity, max_extent: :math:`(N,)`
        - output: :math:`(N, T, 2)` in kernel-pixel coordinates, T trajectory vertices.
    """
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
    if span is not None:
        frac = span[0] + (span[1] - span[0]) * extent_u
    extent = (max_extent.to(gen_device) * frac).clamp(0.0, size - 1.0)
    return _fit_to_kernel(path, size, extent)


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
    lo, hi = as_range(intensity, "intensity")
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"intensity must lie in [0, 1], got {intensity!r}")
    device = generator.device if generator is not None else torch.device("cpu")
    k = uniform(n, lo, hi, generator, device)
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
    return rasterise(points[None], size)[0]


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


def shake_kernels(
    n: int,
    kernel_size: tuple[int, int],
    intensity: tuple[float, float],
    generator: torch.Generator | None = None,
    size_law: str = "uniform",
    exposures: FrameExposures | None = None,
    span: tuple[float, float] | None = None,
) -> Tensor:
    """Camera-shake kernels of random odd sizes and intensities, centred in a common grid.

    Each kernel draws its size from ``kernel_size`` (rounded up to odd) and its intensity from
    ``intensity``, then a trajectory scaled to its own size (see :func:`trajectory_kernels`);
    the grid is the largest size drawn. With ``exposures`` a share of them is drawn as the
    average of video frames along the same trajectory (:func:`frame_exposures`). Draw order:
    sizes, intensities, trajectories, then the frame draws (only with ``exposures``).

    Args:
        n: number of kernels.
        kernel_size: ``(low, high)`` kernel sides.
        intensity: ``(low, high)`` shake strengths in [0, 1].
        generator: random source; the same seed gives the same kernels.
        size_law: how sizes spread over ``kernel_size`` (:data:`SIZE_LAWS`).
        exposures: draw a share of the kernels as frame averages; None for none.
        span: ``(low, high)`` fraction of its size each path spans (drawn per kernel, in
            (0, 1]); None ties it to the intensity (see :func:`trajectory_kernels`).

    Shape:
        - output: :math:`(n, k, k)` on the CPU, ``k`` the largest size drawn.
    """
    cpu = torch.device("cpu")
    sizes = odd_sizes(n, *kernel_size, generator, cpu, size_law)
    strength = uniform(n, *intensity, generator, cpu)
    grid = int(sizes.max())
    paths = _trajectory_paths(grid, strength, sizes.float() - 1.0, generator, span)
    kernels = rasterise(_resample_polyline(paths), grid).cpu()
    if exposures is None:
        return kernels
    return _as_frame_averages(kernels, paths, grid, exposures, generator)


def _centre_paths(path: Tensor, size: int, light: Tensor | None = None) -> Tensor:
    """Shift paths so their centre of mass sits on the kernel centre, or as near as fits.

    Shape:
        - path: :math:`(N, P, 2)`, each no wider than ``size - 1``; light: :math:`(N, P)`,
          each point's share of the light (None: equal shares)
        - output: :math:`(N, P, 2)`
    """
    lo = path.amin(dim=1)
    hi = path.amax(dim=1)
    centre = (size - 1) / 2.0
    if light is None:
        mass = path.mean(dim=1)
    else:
        mass = (path * light[..., None]).sum(dim=1) / light.sum(dim=1, keepdim=True)
    shift = torch.minimum(torch.maximum(centre - mass, -lo), (size - 1) - hi)
    return path + shift[:, None]


class FrameExposures(NamedTuple):
    """Blur made by averaging video frames, not by one long exposure (see :func:`frame_exposures`).

    Attributes:
        frames: ``(low, high)`` frames averaged per image, each count equally likely.
        shutter: ``(low, high)`` range of each frame's open time, as a fraction of the frame
            interval (in (0, 1]; 1 is a continuous exposure).
        share: probability that an image's blur is a frame average; the others keep the
            continuous exposure.
    """

    frames: tuple[int, int] = (7, 13)
    shutter: tuple[float, float] = (0.1, 1.0)
    share: float = 1.0

    @classmethod
    def checked(
        cls, frames: Sequence[int], shutter: Range = (0.1, 1.0), share: float = 1.0
    ) -> FrameExposures:
        """Validated settings from config values; ValueError names the bad one."""
        lo, hi = as_range(frames, "frames")
        if lo < 1 or lo != int(lo) or hi != int(hi) or hi > _EXPOSURE_POINTS // 8:
            raise ValueError(
                f"frames must be whole numbers in 1..{_EXPOSURE_POINTS // 8}, got {frames!r}"
            )
        open_lo, open_hi = as_range(shutter, "shutter")
        if not 0.0 < open_lo <= open_hi <= 1.0:
            raise ValueError(f"shutter must lie in (0, 1], got {shutter!r}")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"frames_share must lie in [0, 1], got {share!r}")
        return cls((int(lo), int(hi)), (open_lo, open_hi), float(share))


def frame_exposures(
    path: Tensor, frames: Tensor, shutter: Tensor, points: int = _EXPOSURE_POINTS
) -> tuple[Tensor, Tensor]:
    """Where a path's camera points while each of ``frames`` video frames has its shutter open.

    Averaging consecutive frames of a fast video (the GoPro recipe of Nah et al., CVPR 2017) is
    not one long exposure: each frame records only its own open-shutter slice of the motion, so
    a fast move leaves ``frames`` separate short strokes, ghost copies of every edge, where a
    still camera's long exposure draws one continuous stroke. The path's vertices are equal
    steps of time from the first frame's opening to the last one's closing: frame ``i`` of
    ``F`` opens at ``i * dt`` and stays open ``shutter * dt``, with ``dt = 1 / (F - 1 +
    shutter)``. Each frame gets an equal share of the light, spread evenly over its open time,
    so at ``shutter = 1`` the frames touch and the kernel is the continuous exposure's.

    Args:
        path: trajectory vertices at equal steps of time, kernel-pixel coordinates.
        frames: frames averaged per path (whole numbers >= 1, at most ``points``).
        shutter: each frame's open time as a fraction of the frame interval, in (0, 1].
        points: samples per path, shared evenly among its frames.

    Returns:
        ``(points, light)`` for :func:`rasterise`: sample positions and each sample's light,
        which sums to 1 per path.

    Shape:
        - path: :math:`(N, T, 2)`; frames, shutter: :math:`(N,)`
        - output: :math:`(N, points, 2)` and :math:`(N, points)`
    """
    n, t, _ = path.shape
    # float64 index arithmetic: frame boundaries m * F / points must not round across a sample.
    count_f = frames.to(path.device, torch.float64).clamp_min(1.0)[:, None]
    duty = shutter.to(path.device, torch.float64)[:, None]
    m = torch.arange(points, device=path.device, dtype=torch.float64)[None]
    frame = torch.floor(m * count_f / points)
    first = torch.ceil(frame * points / count_f)
    count = torch.ceil((frame + 1) * points / count_f) - first
    within = (m - first + 0.5) / count  # evenly inside the frame's open time
    time = (frame + duty * within) / (count_f - 1 + duty)
    s = time.clamp(0.0, 1.0) * (t - 1)
    k = s.floor().clamp(max=t - 2).long()
    a = (s - k).to(path.dtype)[..., None]
    p0 = torch.gather(path, 1, k[..., None].expand(n, points, 2))
    p1 = torch.gather(path, 1, (k + 1)[..., None].expand(n, points, 2))
    light = (1.0 / (count * count_f)).to(path.dtype)
    return p0 + (p1 - p0) * a, light


def _as_frame_averages(
    kernels: Tensor,
    paths: Tensor,
    size: int,
    exposures: FrameExposures,
    generator: torch.Generator | None,
    per_image: int = 1,
) -> Tensor:
    """Redraw a share of the kernels as frame averages of the same paths.

    Draws (after every other draw of the kernels): one block of ``3 x images`` uniforms for
    whether, how many frames and which shutter, so the continuous kernels' draws are untouched.

    Shape:
        - kernels: :math:`(N, size, size)`; paths: :math:`(N, T, 2)`, ``N = images x per_image``
          (the anchors of one image share its frames and shutter)
        - output: :math:`(N, size, size)`
    """
    images = paths.shape[0] // per_image
    gen_device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(3, images, generator=generator, device=gen_device).cpu().double()
    u = u.repeat_interleave(per_image, dim=1)
    framed = u[0] < exposures.share
    if not bool(framed.any()):
        return kernels
    lo, hi = exposures.frames
    count = lo + (u[1] * (hi - lo + 1)).floor().clamp(max=hi - lo)
    duty = exposures.shutter[0] + (exposures.shutter[1] - exposures.shutter[0]) * u[2]
    points, light = frame_exposures(paths.cpu(), count, duty)
    drawn = rasterise(_centre_paths(points, size, light), size, light).to(kernels.device)
    return torch.where(framed.to(kernels.device)[:, None, None], drawn, kernels)


def varying_shake_kernels(
    n: int,
    kernel_size: tuple[int, int],
    intensity: tuple[float, float],
    rotation: tuple[float, float],
    grid: int = 2,
    generator: torch.Generator | None = None,
    size_law: str = "uniform",
    exposures: FrameExposures | None = None,
    span: tuple[float, float] | None = None,
) -> Tensor:
    """Camera-shake kernels that change across the image, as a camera's roll makes them.

    A hand-held camera also turns about its optical axis while the shutter is open, so points
    far from the centre of that turn trace longer, differently bent paths than points near it:
    real camera-shake blur is not one kernel for the whole photo (Whyte et al., "Non-uniform
    Deblurring for Shaken Images", IJCV 2012). Each image here gets one shake path as in
    :func:`shake_kernels` (the same draws first, so ``rotation=(0, 0)`` gives its kernels at
    every anchor), plus a roll: a random walk of the angle, a centre of rotation drawn anywhere
    within 1.5 half-widths of the image centre (inside or off the photo, as for a crop of a
    larger frame), and an amplitude that moves the anchor farthest from that centre by up to
    ``rotation`` times the image's kernel size. The kernels are drawn at a ``grid x grid``
    lattice of anchors spanning the image from corner to corner (small angles: the roll adds a
    displacement perpendicular to the lever from the centre). When an anchor's path would not
    fit in the image's kernel size, all the image's paths shrink by the same factor; each is
    centred on its own centre of mass, so the blur moves no part of the image.

    Args:
        n: number of images.
        kernel_size: ``(low, high)`` kernel sides.
        intensity: ``(low, high)`` shake strengths in [0, 1].
        rotation: ``(low, high)`` roll amplitude at the farthest anchor, as a fraction of the
            image's kernel size (>= 0).
        grid: anchors per side (>= 1); :func:`realblur_gan.camera.ops.convolve_varying`
            interpolates between them.
        generator: random source; the same seed gives the same kernels.
        size_law: how sizes spread over ``kernel_size`` (:data:`SIZE_LAWS`).
        exposures: draw a share of the images' blur as frame averages (every anchor of an
            image alike; the draws come after the roll's); None for none.
        span: the shake path's share of its size, as in :func:`shake_kernels`.

    Returns:
        float32 kernels on the CPU, non-negative, each summing to 1; ``[:, i, j]`` is the
        kernel at anchor row ``i`` (top to bottom) and column ``j`` (left to right).

    Shape:
        - output: :math:`(n, grid, grid, k, k)`, ``k`` the largest size drawn.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> varying_shake_kernels(2, (9, 21), (0.0, 1.0), (0.2, 0.5), generator=g).shape
        torch.Size([2, 2, 2, 21, 21])
    """
    lo_rot, hi_rot = as_range(rotation, "rotation")
    if not 0.0 <= lo_rot <= hi_rot:
        raise ValueError(f"rotation must be a range of fractions >= 0, got {rotation!r}")
    if not isinstance(grid, int) or grid < 1:
        raise ValueError(f"grid must be a positive int, got {grid!r}")
    cpu = torch.device("cpu")
    sizes = odd_sizes(n, *kernel_size, generator, cpu, size_law)
    strength = uniform(n, *intensity, generator, cpu)
    size = int(sizes.max())
    shake = _trajectory_paths(size, strength, sizes.float() - 1.0, generator, span).cpu()
    t = shake.shape[1]
    gen_device = generator.device if generator is not None else cpu
    # The roll's draws come after the shake's, so the shake is the same with or without it.
    walk = torch.randn(n, t - 1, generator=generator, device=gen_device).cpu()
    amplitude = uniform(n, lo_rot, hi_rot, generator, cpu) * (sizes.float() - 1.0)
    centre = (torch.rand(n, 2, generator=generator, device=gen_device).cpu() * 2 - 1) * 1.5

    # The angle integrates a random angular velocity: a hand turns smoothly, without jitter.
    angle = torch.cat([torch.zeros(n, 1), torch.cumsum(torch.cumsum(walk, dim=1), dim=1)], dim=1)
    angle = angle - angle.mean(dim=1, keepdim=True)
    angle = angle / angle.abs().amax(dim=1, keepdim=True).clamp_min(1e-9)
    ticks = torch.linspace(-1.0, 1.0, grid) if grid > 1 else torch.zeros(1)
    # Anchors as (x, y), row-major: anchor (i, j) sits at x = ticks[j], y = ticks[i].
    anchors = torch.stack(torch.meshgrid(ticks, ticks, indexing="ij")[::-1], dim=-1).view(-1, 2)
    lever = anchors[None] - centre[:, None]  # (n, A, 2)
    lever = lever / lever.norm(dim=-1).amax(dim=1).clamp_min(1e-9)[:, None, None]
    across = torch.stack([-lever[..., 1], lever[..., 0]], dim=-1)  # the lever turned by 90°
    roll = (amplitude[:, None] * angle)[:, None, :, None] * across[:, :, None, :]
    paths = shake[:, None] + roll  # (n, A, T, 2)

    # One shrink factor per image keeps the anchors' blurs in proportion.
    span = (paths.amax(dim=2) - paths.amin(dim=2)).amax(dim=-1).amax(dim=1)  # (n,)
    shrink = ((sizes.float() - 1.0) / span.clamp_min(1e-9)).clamp(max=1.0)
    middle = paths.mean(dim=2, keepdim=True)
    paths = middle + (paths - middle) * shrink[:, None, None, None]
    paths = _centre_paths(paths.flatten(0, 1), size)
    kernels = rasterise(_resample_polyline(paths), size)
    if exposures is not None:
        kernels = _as_frame_averages(kernels, paths, size, exposures, generator, grid * grid)
    return kernels.view(n, grid, grid, size, size)
