"""Pieces the blind deconvolution methods share: cropping the latent, luma/chroma, kernels, SSIM.

Both methods estimate a *latent* sharp image larger than the blurry one by ``k - 1`` pixels and
blur it with the camera's *valid* convolution (:func:`realblur_gan.camera.valid_convolve`), so
the blurry image is reproduced without any assumption about what lies beyond its border (Ren et
al. do the same in SelfDeblur). The restored image is
the latent's crop that lines up with the input, chosen from the kernel's centre of mass
(:func:`crop_restored`): blind deconvolution recovers the image only up to a translation.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from realblur_gan.data.io import write_image
from realblur_gan.progress import progress_bar

logger = logging.getLogger(__name__)

__all__ = [
    "BlindError",
    "BlindResult",
    "check_kernel_size",
    "crop_restored",
    "deterministic",
    "iteration_bar",
    "kernel_similarity",
    "merge_luma",
    "split_luma",
    "ssim_valid",
    "write_kernel",
]

# BT.601 full-range YCbCr (the JPEG convention): exactly invertible, so the chroma that is kept
# comes back unchanged where the luma is not touched.
_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB


class BlindError(ValueError):
    """Blind deconvolution cannot run on this input; the message names it and the fix."""


@dataclass
class BlindResult:
    """What a blind method returns for a batch of images.

    Attributes:
        restored: the deblurred images, same channels and size as the input, in [0, 1].
        kernels: the estimated blur kernels, non-negative, summing to 1, centred on their
            centre of mass, so ``convolve(restored, kernels)`` reproduces the input.
        seconds: wall time of the optimisation.

    Shape:
        - restored: :math:`(B, C, H, W)`
        - kernels: :math:`(B, k, k)`
    """

    restored: Tensor
    kernels: Tensor
    seconds: float = 0.0


def check_kernel_size(kernel_size: int, height: int, width: int, name: str = "image") -> int:
    """Validate a blind kernel size against the image; returns it (odd sizes only).

    Raises:
        BlindError: even, below 3, or not smaller than the image.
    """
    if not isinstance(kernel_size, int) or kernel_size < 3 or kernel_size % 2 == 0:
        raise BlindError(
            f"{name}: kernel size must be an odd int >= 3, got {kernel_size!r}; "
            "pass e.g. --kernel-size 31"
        )
    if kernel_size >= min(height, width):
        raise BlindError(
            f"{name}: a {kernel_size} px kernel does not fit the {height}x{width} image; "
            f"pass a --kernel-size below {min(height, width)}"
        )
    return kernel_size


# --------------------------------------------------------------------------------------------------
# Colour
# --------------------------------------------------------------------------------------------------


def split_luma(images: Tensor) -> tuple[Tensor, Tensor | None]:
    """Split RGB into full-range luma and the two chroma planes; gray passes through.

    Blur acts on luma the way it acts on each colour channel, and the eye judges sharpness by
    luma, so deblurring Y alone costs a third of the work and keeps colours from drifting.

    Returns:
        ``(y, chroma)``; ``chroma`` is None for gray input.

    Shape:
        - images: :math:`(B, 1, H, W)` or :math:`(B, 3, H, W)`
        - output: :math:`(B, 1, H, W)` and :math:`(B, 2, H, W)`
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise BlindError(f"expected (B, 1 or 3, H, W) images, got shape {tuple(images.shape)}")
    if images.shape[1] == 1:
        return images, None
    r, g, b = images.unbind(1)
    y = _KR * r + _KG * g + _KB * b
    cb = (b - y) / (2.0 * (1.0 - _KB))
    cr = (r - y) / (2.0 * (1.0 - _KR))
    return y[:, None], torch.stack([cb, cr], dim=1)


def merge_luma(y: Tensor, chroma: Tensor | None) -> Tensor:
    """Inverse of :func:`split_luma`, clamped to [0, 1].

    Shape:
        - y: :math:`(B, 1, H, W)`; chroma: :math:`(B, 2, H, W)` or None
        - output: :math:`(B, 3, H, W)`, or :math:`(B, 1, H, W)` without chroma
    """
    if chroma is None:
        return y.clamp(0.0, 1.0)
    y0 = y[:, 0]
    cb, cr = chroma.unbind(1)
    r = y0 + 2.0 * (1.0 - _KR) * cr
    b = y0 + 2.0 * (1.0 - _KB) * cb
    g = (y0 - _KR * r - _KB * b) / _KG
    return torch.stack([r, g, b], dim=1).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# Aligning the latent with the input
# --------------------------------------------------------------------------------------------------


def _centre_of_mass(kernels: Tensor) -> tuple[Tensor, Tensor]:
    """Rounded (row, col) of each kernel's centre of mass, as long tensors (B,)."""
    k = kernels.shape[-1]
    idx = torch.arange(k, dtype=kernels.dtype, device=kernels.device)
    mass = kernels.sum(dim=(-2, -1)).clamp_min(1e-12)
    row = (kernels.sum(-1) * idx).sum(-1) / mass
    col = (kernels.sum(-2) * idx).sum(-1) / mass
    return row.round().long(), col.round().long()


def _shift_zero(kernel: Tensor, dy: int, dx: int) -> Tensor:
    """Move a (k, k) kernel by (dy, dx) px, filling with zeros (what leaves the frame is lost)."""
    k = kernel.shape[-1]
    out = torch.zeros_like(kernel)
    ys, yd = max(-dy, 0), max(dy, 0)
    xs, xd = max(-dx, 0), max(dx, 0)
    h, w = k - abs(dy), k - abs(dx)
    if h > 0 and w > 0:
        out[yd : yd + h, xd : xd + w] = kernel[ys : ys + h, xs : xs + w]
    return out


def crop_restored(latent: Tensor, kernels: Tensor) -> tuple[Tensor, Tensor]:
    """The latent crop aligned with the blurry input, and the kernels re-centred to match.

    A kernel whose mass sits at pixel ``m`` maps latent pixel ``i + k - 1 - m`` onto output pixel
    ``i``, so that crop is the restored image; the kernel is then moved so its mass sits on the
    centre pixel ``k // 2``, the convention of :func:`realblur_gan.camera.convolve`. Together,
    ``convolve(restored, kernel)`` reproduces the valid convolution away from the borders.

    Shape:
        - latent: :math:`(B, C, H + k - 1, W + k - 1)`
        - kernels: :math:`(B, k, k)`
        - output: :math:`(B, C, H, W)` and :math:`(B, k, k)`
    """
    k = kernels.shape[-1]
    h, w = latent.shape[-2] - k + 1, latent.shape[-1] - k + 1
    rows, cols = _centre_of_mass(kernels)
    crops, centred = [], []
    for i in range(latent.shape[0]):
        m_r, m_c = int(rows[i]), int(cols[i])
        top, left = k - 1 - m_r, k - 1 - m_c
        crops.append(latent[i, :, top : top + h, left : left + w])
        moved = _shift_zero(kernels[i], k // 2 - m_r, k // 2 - m_c)
        centred.append(moved / moved.sum().clamp_min(1e-12))
    return torch.stack(crops), torch.stack(centred)


# --------------------------------------------------------------------------------------------------
# Similarity measures
# --------------------------------------------------------------------------------------------------


def _gaussian_window(size: int, sigma: float, like: Tensor) -> Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2.0
    g = torch.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def ssim_valid(pred: Tensor, target: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """SSIM per image with a Gaussian window over valid positions only (no padding).

    Written out with two separable ``conv2d`` passes rather than kornia's metric, whose padded
    filtering has a backward pass that is not deterministic on CUDA; this one is, and it is the
    loss SelfDeblur switches to after its MSE warm-up.

    Shape:
        - pred, target: :math:`(B, C, H, W)` with H, W >= ``window``
        - output: :math:`(B,)`
    """
    c = pred.shape[1]
    g = _gaussian_window(window, sigma, pred)
    wy = g.view(1, 1, window, 1).expand(c, 1, window, 1)
    wx = g.view(1, 1, 1, window).expand(c, 1, 1, window)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(x, wy, groups=c), wx, groups=c)

    c1, c2 = 0.01**2, 0.03**2
    mu_p, mu_t = blur(pred), blur(target)
    var_p = blur(pred * pred) - mu_p**2
    var_t = blur(target * target) - mu_t**2
    cov = blur(pred * target) - mu_p * mu_t
    num = (2 * mu_p * mu_t + c1) * (2 * cov + c2)
    den = (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    return (num / den).flatten(1).mean(1)


def kernel_similarity(estimate: Tensor, truth: Tensor, max_shift: int | None = None) -> float:
    """Best Pearson correlation between two kernels over integer shifts of the estimate.

    A blind estimate is right only up to a translation (and its centring), so the score is the
    maximum over shifts within ``±max_shift`` px. Kernels of different sizes are compared in a
    common frame, each zero-padded around its centre. 1 is a perfect match; a flat box against
    a thin stroke scores near 0.

    Args:
        estimate: estimated kernel.
        truth: reference kernel.
        max_shift: largest shift tried; None for a quarter of the larger kernel.

    Shape:
        - estimate: :math:`(k_1, k_1)`; truth: :math:`(k_2, k_2)`
    """
    size = max(estimate.shape[-1], truth.shape[-1])
    shift = size // 4 if max_shift is None else max_shift
    frame = size + 2 * shift

    def embed(kernel: Tensor) -> Tensor:
        k = kernel.shape[-1]
        before = (frame - k) // 2
        return F.pad(kernel.double(), (before, frame - k - before, before, frame - k - before))

    a, b = embed(estimate.detach().cpu()), embed(truth.detach().cpu())
    b = b - b.mean()
    best = -1.0
    for dy in range(-shift, shift + 1):
        for dx in range(-shift, shift + 1):
            moved = torch.roll(a, shifts=(dy, dx), dims=(0, 1))
            moved = moved - moved.mean()
            denom = float(moved.norm() * b.norm())
            if denom > 0:
                best = max(best, float((moved * b).sum()) / denom)
    return best


# --------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------


def iteration_bar(total: int, names: list[str] | None, progress: bool) -> tqdm:
    """A per-image (or per-batch) progress bar over optimisation steps, on stderr.

    Off a terminal (a log file, a pipe) it still reports, one line every half minute (see
    :func:`realblur_gan.progress.progress_bar`): MAP's default budget takes minutes.
    """
    desc = ", ".join(names) if names else "deblur"
    if len(desc) > 40:
        desc = f"{names[0]} +{len(names) - 1}" if names else desc[:40]
    return progress_bar(total=total, desc=desc, unit="it", enabled=progress, leave=False)


@contextlib.contextmanager
def deterministic(device: torch.device) -> Iterator[None]:
    """Ask cuDNN for deterministic algorithms while the block runs (a no-op on the CPU).

    The nets use zero padding, nearest upsampling and FFTs, whose CUDA backward passes are
    deterministic; cuDNN's convolution autotuner is the remaining source of run-to-run jitter.
    """
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def write_kernel(path: str | os.PathLike[str], kernel: Tensor) -> Path:
    """Write a kernel as a 16-bit gray PNG scaled to its peak (``load_kernel`` reads it back).

    Shape:
        - kernel: :math:`(k, k)`
    """
    peak = kernel.detach().float().cpu().amax().clamp_min(1e-12)
    return write_image(path, (kernel.detach().float().cpu() / peak)[None], bit_depth=16)
