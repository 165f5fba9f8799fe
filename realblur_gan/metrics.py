"""Image quality metrics on [0, 1] tensors, per image (no reduction over the batch)."""

from __future__ import annotations

import torch
from kornia.metrics import ssim as _kornia_ssim


def psnr(pred: torch.Tensor, target: torch.Tensor, max_val: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image.

    Args:
        pred: (B, C, H, W) in [0, max_val].
        target: (B, C, H, W) in [0, max_val].
        max_val: The dynamic range.

    Returns:
        (B,) PSNR in dB; identical images give ``inf``.
    """
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(1)
    return 10.0 * torch.log10(max_val**2 / mse)


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
