"""Image quality metrics on [0, 1] tensors, per image (no reduction over the batch)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from kornia.metrics import ssim as _kornia_ssim

# PSNR ceiling in dB. Identical images have an infinite PSNR, which would turn every mean it
# enters into inf; 100 dB (an RMS error of 1e-5 of the range) is far beyond any restoration and
# beyond float32's resolution of an 8-bit image, so nothing real is cut.
PSNR_CAP_DB = 100.0


def psnr(pred: torch.Tensor, target: torch.Tensor, max_val: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, capped at :data:`PSNR_CAP_DB`.

    Args:
        pred: (B, C, H, W) in [0, max_val].
        target: (B, C, H, W) in [0, max_val].
        max_val: The dynamic range.

    Returns:
        (B,) PSNR in dB; identical images give ``PSNR_CAP_DB`` (100), not ``inf``.
    """
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
    return (10.0 * torch.log10(max_val**2 / mse)).clamp(max=PSNR_CAP_DB)


def ssim(
    pred: torch.Tensor, target: torch.Tensor, window_size: int = 11, max_val: float = 1.0
) -> torch.Tensor:
    """Structural similarity per image (Gaussian window, averaged over channels and pixels).

    Shape:
        - pred, target: (B, C, H, W).
        - output: (B,).
    """
    ssim_map = _kornia_ssim(pred.float(), target.float(), window_size, max_val=max_val)
    return ssim_map.flatten(1).mean(1)


# ITU-R BT.601 luma for 8-bit "studio swing" video (Y in [16, 235]), the convention of MATLAB's
# rgb2ycbcr that deblurring and super-resolution papers report their Y-channel PSNR with.
_Y_WEIGHTS_STUDIO = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
_Y_OFFSET_STUDIO = 16.0 / 255.0
# The same luma in full swing (Y in [0, 1]), as Pillow's RGB -> L.
_Y_WEIGHTS_FULL = (0.299, 0.587, 0.114)


def rgb_to_y(x: torch.Tensor, studio_swing: bool = True) -> torch.Tensor:
    """ITU-R BT.601 luma of RGB images; gray images pass through unchanged.

    Args:
        x: images in [0, 1].
        studio_swing: MATLAB's ``rgb2ycbcr`` (Y in [16/255, 235/255]), the published-benchmark
            convention; False gives full-range luma ``0.299 R + 0.587 G + 0.114 B``.

    Returns:
        The Y channel.

    Shape:
        - x: :math:`(B, 3, H, W)` or :math:`(B, 1, H, W)`
        - output: :math:`(B, 1, H, W)`
    """
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"rgb_to_y expects (B, 1 or 3, H, W) images, got {tuple(x.shape)}")
    if x.shape[1] == 1:
        return x
    weights = _Y_WEIGHTS_STUDIO if studio_swing else _Y_WEIGHTS_FULL
    w = torch.tensor(weights, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    y = (x * w).sum(dim=1, keepdim=True)
    return y + _Y_OFFSET_STUDIO if studio_swing else y


def crop_border(x: torch.Tensor, border: int) -> torch.Tensor:
    """Drop ``border`` pixels on every side (benchmarks ignore the borders a method pads).

    Shape:
        - x: :math:`(..., H, W)` with H, W > 2 * border
        - output: :math:`(..., H - 2 border, W - 2 border)`
    """
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    if border == 0:
        return x
    h, w = x.shape[-2:]
    if h <= 2 * border or w <= 2 * border:
        raise ValueError(f"cannot crop {border} px from each side of a {h}x{w} image")
    return x[..., border : h - border, border : w - border]


def shift_overlap(
    pred: torch.Tensor, target: torch.Tensor, dy: int, dx: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The region where ``pred`` shifted by ``(dy, dx)`` overlaps ``target``.

    ``pred[y + dy, x + dx]`` is compared against ``target[y, x]``.

    Shape:
        - pred, target: :math:`(..., H, W)`
        - output: two :math:`(..., H - |dy|, W - |dx|)` tensors
    """
    h, w = pred.shape[-2:]
    p = pred[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)]
    t = target[..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)]
    return p, t


def shift_grid(max_shift: int) -> list[tuple[int, int]]:
    """Every integer shift ``(dy, dx)`` within ``±max_shift``, ``dy`` major (the order of the
    scores of :func:`psnr_at_shifts` and :func:`ssim_at_shifts`)."""
    span = range(-max_shift, max_shift + 1)
    return [(dy, dx) for dy in span for dx in span]


def _check_shift(pred: torch.Tensor, target: torch.Tensor, max_shift: int) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    h, w = pred.shape[-2:]
    if max_shift >= min(h, w):
        raise ValueError(f"max_shift {max_shift} leaves no overlap in a {h}x{w} image")


def _window_sums(x: torch.Tensor, max_shift: int, sign: int) -> torch.Tensor:
    """Sum of ``x`` over the region :func:`shift_overlap` keeps, for every shift at once.

    ``sign=1`` gives the region of ``pred``, ``sign=-1`` that of ``target``.

    Shape:
        - x: :math:`(B, H, W)` float64
        - output: :math:`(B, S)`, S = (2 max_shift + 1)²
    """
    h, w = x.shape[-2:]
    # Summed-area table with a zero first row and column: any rectangle in four reads.
    table = F.pad(x.cumsum(-2).cumsum(-1), (1, 0, 1, 0))
    span = torch.arange(-max_shift, max_shift + 1, device=x.device) * sign
    top, bottom = span.clamp(min=0), h + span.clamp(max=0)
    left, right = span.clamp(min=0), w + span.clamp(max=0)
    rows = lambda index: table[:, index]  # noqa: E731
    whole = rows(bottom)[:, :, right] - rows(bottom)[:, :, left]
    whole = whole - rows(top)[:, :, right] + rows(top)[:, :, left]
    return whole.flatten(1)


def psnr_at_shifts(
    pred: torch.Tensor, target: torch.Tensor, max_shift: int, max_val: float = 1.0
) -> torch.Tensor:
    """:func:`psnr` of every shift of :func:`shift_grid` on its :func:`shift_overlap`, at once.

    The squared error of a shift is ``Σp² + Σt² − 2Σpt`` over the overlap: the first two from
    summed-area tables, the cross term for all shifts from one FFT cross-correlation, all in
    float64 (so the cancellation costs nothing at any PSNR below the cap). Equal to the loop
    ``psnr(*shift_overlap(pred, target, dy, dx))`` within float32 rounding.

    Shape:
        - pred, target: :math:`(B, C, H, W)`
        - output: :math:`(B, S)`, S = (2 max_shift + 1)², in :func:`shift_grid` order
    """
    _check_shift(pred, target, max_shift)
    p, t = pred.double(), target.double()
    c, h, w = p.shape[1:]
    k = max_shift
    size = (h + k, w + k)  # zero-padded so that lags up to ±k do not wrap around
    spectrum = torch.fft.rfft2(p, s=size) * torch.fft.rfft2(t, s=size).conj()
    correlation = torch.fft.irfft2(spectrum, s=size).sum(1)  # [dy, dx] = Σ p[y+dy, x+dx] t[y, x]
    lags = torch.arange(-k, k + 1, device=p.device)
    cross = correlation[:, lags % size[0]][:, :, lags % size[1]].flatten(1)
    squares = _window_sums(p.pow(2).sum(1), k, 1) + _window_sums(t.pow(2).sum(1), k, -1)
    counts = [c * (h - abs(dy)) * (w - abs(dx)) for dy, dx in shift_grid(k)]
    counts = torch.tensor(counts, device=p.device)
    mse = ((squares - 2 * cross) / counts).clamp(min=0)
    return (10.0 * torch.log10(max_val**2 / mse)).clamp(max=PSNR_CAP_DB).to(pred.dtype)


def _gaussian_window(window_size: int, like: torch.Tensor) -> torch.Tensor:
    """The 2-D SSIM window (sampled Gaussian, σ = 1.5, sum 1), as kornia's ``ssim`` uses."""
    from kornia.filters import get_gaussian_kernel1d

    line = get_gaussian_kernel1d(window_size, 1.5, device=like.device, dtype=like.dtype)[0]
    return line[:, None] * line[None, :]


def _blur_valid(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Every channel filtered by ``window``, no padding (a depthwise conv, channels-last: with
    many channels stacked that is several times faster on a CPU than a loop of small ones)."""
    channels = x.shape[1]
    weight = window.expand(channels, 1, *window.shape).contiguous(memory_format=torch.channels_last)
    out = F.conv2d(x.contiguous(memory_format=torch.channels_last), weight, groups=channels)
    return out.contiguous()  # the SSIM arithmetic after it runs on whole rows


def _ssim_map(
    p: torch.Tensor, t: torch.Tensor, window: torch.Tensor, max_val: float
) -> torch.Tensor:
    """kornia's SSIM map (``padding="same"``: each image reflect-padded) of image pairs.

    Shape:
        - p, t: :math:`(N, C, H, W)`, H and W larger than the window's radius
        - output: :math:`(N, C, H, W)`
    """
    r = window.shape[-1] // 2
    c = p.shape[1]
    stack = torch.cat([p, t, p * p, t * t, p * t], 1)
    moments = _blur_valid(F.pad(stack, (r, r, r, r), mode="reflect"), window)
    mu_p, mu_t, pp, tt, pt = moments.split(c, 1)
    return _ssim_from_moments(mu_p, mu_t, pp - mu_p**2, tt - mu_t**2, pt, max_val)


def _ssim_from_moments(
    mu_p: torch.Tensor,
    mu_t: torch.Tensor,
    var_p: torch.Tensor,
    var_t: torch.Tensor,
    mean_pt: torch.Tensor,
    max_val: float,
) -> torch.Tensor:
    """SSIM from the local means, variances and mean product (kornia's formula, its eps)."""
    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    mu_pt = mu_p * mu_t
    num = (2.0 * mu_pt + c1) * (2.0 * (mean_pt - mu_pt) + c2)
    den = (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    return num / (den + 1e-12)


def ssim_at_shifts(
    pred: torch.Tensor,
    target: torch.Tensor,
    max_shift: int,
    window_size: int = 11,
    max_val: float = 1.0,
) -> torch.Tensor:
    """:func:`ssim` of every shift of :func:`shift_grid` on its :func:`shift_overlap`, at once.

    Equal to the loop ``ssim(*shift_overlap(pred, target, dy, dx))`` (each overlap
    reflect-padded on its own) within float32 rounding; ~7x faster on 480x320 RGB pairs at ±5 px
    (``scripts/bench_load.py``). An overlap's SSIM map splits in two: the pixels farther than
    the window radius ``r`` from its edges, whose windows see no padding, so that their local
    means and variances are those of the whole images (filtered once for all shifts) and only
    the mean product ``E[pt]`` is filtered per shift (stacked over ``dx`` as channels of one
    convolution); and a frame ``r`` pixels wide, computed from strips ``2r`` wide that the
    padding reaches exactly as it reaches the overlap.

    Shape:
        - pred, target: :math:`(B, C, H, W)`
        - output: :math:`(B, S)`, S = (2 max_shift + 1)², in :func:`shift_grid` order
    """
    _check_shift(pred, target, max_shift)
    p, t = pred.float(), target.float()
    window = _gaussian_window(window_size, p)
    r, k = window_size // 2, max_shift
    c, h, w = p.shape[1:]
    if min(h, w) - k <= 4 * r:  # overlaps too small to have an interior: one shift at a time
        maps = [
            _ssim_map(*shift_overlap(p, t, dy, dx), window, max_val) for dy, dx in shift_grid(k)
        ]
        return torch.stack([m.flatten(1).mean(1) for m in maps], 1)
    totals = _ssim_interior_sums(p, t, window, max_val, k) + _ssim_frame_sums(
        p, t, window, max_val, k
    )
    counts = [c * (h - abs(dy)) * (w - abs(dx)) for dy, dx in shift_grid(k)]
    counts = torch.tensor(counts, device=p.device)
    return (totals / counts).to(pred.dtype)


def _ssim_interior_sums(
    p: torch.Tensor, t: torch.Tensor, window: torch.Tensor, max_val: float, k: int
) -> torch.Tensor:
    """Per shift, the SSIM map summed over the overlap's pixels at least ``r`` from its edges.

    Works through bands of a few rows, so that the per-shift arithmetic (memory-bound: a dozen
    element-wise operations per pixel and shift) runs on data in the CPU's cache.

    Shape:
        - p, t: :math:`(B, C, H, W)`
        - output: :math:`(B, S)` float64
    """
    r = window.shape[-1] // 2
    b, c, h, w = p.shape
    c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
    # Local moments of the whole images; entry [i, j] is the window centred on [i + r, j + r].
    # What depends on one image only is prepared once: mu_p², and the target's terms with c1/c2.
    mu_p, mu_t, pp, tt = _blur_valid(torch.cat([p, t, p * p, t * t], 1), window).split(c, 1)
    mu_p_sq = mu_p**2
    var_p = pp - mu_p_sq
    mu_t_sq_c1 = mu_t**2 + c1
    var_t_c2 = tt - mu_t**2 + c2
    dxs = range(-k, k + 1)
    # Rows per band: the stacked products of all 2k + 1 shifts of a band near 1 M values.
    band = max(1, (1 << 20) // (b * c * w * len(dxs)))
    sums = torch.zeros(b, len(dxs), len(dxs), dtype=torch.float64, device=p.device)
    for i, dy in enumerate(range(-k, k + 1)):
        top, bottom = max(-dy, 0), h + min(-dy, 0)  # the overlap's rows, in target coordinates
        # Window centres of the interior are target rows [top + r, bottom - r): moment rows
        # [top, bottom - 2r), and pred's moment rows dy further on.
        for first in range(top, bottom - 2 * r, band):
            last = min(first + band, bottom - 2 * r)
            # Target rows [first, last + 2r) times pred moved by (dy, dx), zero where pred ends.
            # Made in channels-last layout, the layout the convolution reads.
            products = torch.empty(
                b,
                len(dxs) * c,
                last - first + 2 * r,
                w,
                device=p.device,
                memory_format=torch.channels_last,
            )
            moved = products.unflatten(1, (len(dxs), c))
            target = t[..., first : last + 2 * r, :]
            for j, dx in enumerate(dxs):
                left, right = max(-dx, 0), w + min(-dx, 0)
                rows = slice(first + dy, last + 2 * r + dy)
                moved[:, j, ..., :left] = 0.0
                moved[:, j, ..., right:] = 0.0
                torch.mul(
                    p[..., rows, left + dx : right + dx],
                    target[..., left:right],
                    out=moved[:, j, ..., left:right],
                )
            mean_pt = _blur_valid(products, window).unflatten(1, (len(dxs), c))
            rows_t, rows_p = slice(first, last), slice(first + dy, last + dy)
            for j, dx in enumerate(dxs):
                left, right = max(-dx, 0), w + min(-dx, 0)
                cols_t, cols_p = slice(left, right - 2 * r), slice(left + dx, right - 2 * r + dx)
                mu_pt = mu_p[..., rows_p, cols_p] * mu_t[..., rows_t, cols_t]
                num = (mean_pt[:, j, ..., cols_t] - mu_pt).mul_(2.0).add_(c2)
                num.mul_(mu_pt.mul_(2.0).add_(c1))
                den = mu_p_sq[..., rows_p, cols_p] + mu_t_sq_c1[..., rows_t, cols_t]
                den.mul_(var_p[..., rows_p, cols_p] + var_t_c2[..., rows_t, cols_t]).add_(1e-12)
                # float32 sums of a band (pairwise, exact enough), added up in float64
                sums[:, i, j] += num.div_(den).flatten(1).sum(1)
    return sums.flatten(1)


def _ssim_frame_sums(
    p: torch.Tensor, t: torch.Tensor, window: torch.Tensor, max_val: float, k: int
) -> torch.Tensor:
    """Per shift, the SSIM map summed over the overlap's frame ``r`` pixels wide.

    A strip ``2r`` wide along an edge of the overlap, reflect-padded on its own, gives the
    frame's values on that edge exactly: the padding at the strip's inner side reaches only
    pixels ``r`` or more from the edge. Strips of equal size are scored in one batch.

    Shape:
        - p, t: :math:`(B, C, H, W)`
        - output: :math:`(B, S)` float64
    """
    r = window.shape[-1] // 2
    shifts = shift_grid(k)
    sums = torch.zeros(p.shape[0], len(shifts), dtype=torch.float64, device=p.device)
    # (which strip, the size that groups the shifts): top/bottom strips have the overlap's
    # width (|dx| decides it), left/right ones its height (|dy|).
    for side in ("top", "bottom", "left", "right"):
        for size in range(k + 1):
            chosen = [
                n
                for n, (dy, dx) in enumerate(shifts)
                if abs(dx if side in ("top", "bottom") else dy) == size
            ]
            crops = [shift_overlap(p, t, *shifts[n]) for n in chosen]
            strips_p, strips_t = zip(*(_strip(pc, tc, side, r) for pc, tc in crops), strict=True)
            maps = _ssim_map(torch.cat(strips_p), torch.cat(strips_t), window, max_val)
            kept = _frame_part(maps, side, r).flatten(1).sum(1, dtype=torch.float64)
            sums[:, chosen] += kept.view(len(chosen), -1).T
    return sums


def _strip(
    p: torch.Tensor, t: torch.Tensor, side: str, r: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``2r``-wide strips of two overlaps along one edge."""
    pick = {
        "top": lambda x: x[..., : 2 * r, :],
        "bottom": lambda x: x[..., -2 * r :, :],
        "left": lambda x: x[..., :, : 2 * r],
        "right": lambda x: x[..., :, -2 * r :],
    }[side]
    return pick(p), pick(t)


def _frame_part(maps: torch.Tensor, side: str, r: int) -> torch.Tensor:
    """The frame pixels a strip's SSIM map gives: the whole edge for top and bottom, the edge
    between them for left and right (so corners count once)."""
    if side == "top":
        return maps[..., :r, :]
    if side == "bottom":
        return maps[..., -r:, :]
    rows = maps[..., r:-r, :]
    return rows[..., :r] if side == "left" else rows[..., -r:]


def _shift_scores(
    metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    pred: torch.Tensor,
    target: torch.Tensor,
    max_shift: int,
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Scores (B, S) of every shift within ``±max_shift`` and the shifts themselves.

    :func:`psnr` and :func:`ssim` (their default arguments) are scored at all shifts at once by
    :func:`psnr_at_shifts` and :func:`ssim_at_shifts`; any other metric one shift at a time.
    """
    _check_shift(pred, target, max_shift)
    shifts = shift_grid(max_shift)
    if metric is psnr:
        return psnr_at_shifts(pred, target, max_shift), shifts
    if metric is ssim:
        return ssim_at_shifts(pred, target, max_shift), shifts
    scores = torch.stack([metric(*shift_overlap(pred, target, dy, dx)) for dy, dx in shifts], 1)
    return scores, shifts


def shift_tolerant(
    metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    pred: torch.Tensor,
    target: torch.Tensor,
    max_shift: int,
    higher_is_better: bool = True,
) -> torch.Tensor:
    """Best score over integer shifts of ``pred`` within ``±max_shift`` pixels, per image.

    Blind deblurring recovers the image only up to a translation (the kernel's centre is
    unknown), so benchmarks such as Levin et al.'s and Köhler et al.'s score the best alignment.
    For each shift ``(dy, dx)`` only the region where the shifted prediction and the target
    overlap is compared (see :func:`shift_overlap`).

    Args:
        metric: per-image metric, ``(pred, target) -> (B,)``, e.g. :func:`psnr`.
        pred: restored images.
        target: reference images.
        max_shift: largest shift tried in each direction (0 = plain metric).
        higher_is_better: keep the maximum (PSNR, SSIM) or the minimum (LPIPS).

    Returns:
        The best score per image.

    Shape:
        - pred, target: :math:`(B, C, H, W)`
        - output: :math:`(B,)`

    Example:
        >>> t = torch.rand(1, 1, 32, 32)
        >>> p = torch.roll(t, shifts=(2, -1), dims=(2, 3))
        >>> shift_tolerant(psnr, p, t, 2).tolist()  # found: the capped PSNR of a match
        [100.0]
    """
    scores, _ = _shift_scores(metric, pred, target, max_shift)
    return scores.amax(1) if higher_is_better else scores.amin(1)


def best_shift(
    metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    pred: torch.Tensor,
    target: torch.Tensor,
    max_shift: int,
    higher_is_better: bool = True,
) -> torch.Tensor:
    """The shift ``(dy, dx)`` per image that :func:`shift_tolerant` picks (ties: the first).

    Shape:
        - pred, target: :math:`(B, C, H, W)`
        - output: :math:`(B, 2)` long
    """
    scores, shifts = _shift_scores(metric, pred, target, max_shift)
    index = scores.argmax(1) if higher_is_better else scores.argmin(1)
    return torch.tensor(shifts, dtype=torch.long)[index.cpu()]
