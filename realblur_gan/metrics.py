"""Image quality metrics on [0, 1] tensors, per image (no reduction over the batch)."""

from __future__ import annotations

from collections.abc import Callable

import torch
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


def _shift_scores(
    metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    pred: torch.Tensor,
    target: torch.Tensor,
    max_shift: int,
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Scores (B, S) of every shift within ``±max_shift`` and the shifts themselves."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    h, w = pred.shape[-2:]
    if max_shift >= min(h, w):
        raise ValueError(f"max_shift {max_shift} leaves no overlap in a {h}x{w} image")
    span = range(-max_shift, max_shift + 1)
    shifts = [(dy, dx) for dy in span for dx in span]
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
    return torch.tensor(shifts, dtype=torch.long)[index]
