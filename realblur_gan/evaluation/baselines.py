"""Classical non-blind deblurring baselines: identity, Wiener, Richardson–Lucy.

Wiener and Richardson–Lucy need the blur kernel, so they are reference points on synthetic data
whose kernels are known (``data_tools.synthesize`` saves them in ``OUT/kernels/``): the non-blind
ceiling. The blind methods, which estimate the kernel too, are :mod:`realblur_gan.blind`'s
(:func:`realblur_gan.blind.registry.blind_deblur`). All functions are batched torch code on
[0, 1] images; the forward model is :func:`realblur_gan.camera.convolve`, a true convolution
centred on the kernel's pixel ``k // 2``.

Example::

    kernel = load_kernel("pairs/kernels/0001.npy")
    restored = wiener(blurry, kernel, nsr=1e-2)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from realblur_gan.camera import convolve
from realblur_gan.data.io import ImageReadError, read_image

logger = logging.getLogger(__name__)

__all__ = [
    "KERNEL_EXTENSIONS",
    "KernelError",
    "identity",
    "load_kernel",
    "richardson_lucy",
    "wiener",
]

KERNEL_EXTENSIONS = (".npy", ".png", ".tif", ".tiff")


class KernelError(ValueError):
    """A kernel file is missing or unusable; the message names the file and the fix."""


def load_kernel(path: str | os.PathLike[str]) -> Tensor:
    """Read a blur kernel from ``.npy`` or a grayscale image, normalised to sum 1.

    ``data_tools.synthesize`` writes the exact float32 weights as ``.npy`` and, for viewing, a
    16-bit PNG scaled to its peak; both load to the same normalised kernel here.

    Args:
        path: kernel file.

    Returns:
        The kernel, float32, non-negative, summing to 1.

    Raises:
        KernelError: missing, unreadable, not 2-D, or all zeros.

    Shape:
        - output: :math:`(k_h, k_w)`
    """
    path = Path(path)
    if not path.is_file():
        raise KernelError(f"{path}: kernel not found; check --kernels and the image's name")
    if path.suffix.lower() == ".npy":
        try:
            # allow_pickle=False: a kernel file must not be able to run code.
            array = np.load(path, allow_pickle=False)
        except Exception as err:
            raise KernelError(f"{path}: cannot read as .npy ({err}); re-save it") from None
        kernel = torch.from_numpy(np.asarray(array, dtype=np.float32))
        kernel = kernel.squeeze()
    else:
        try:
            image, _ = read_image(path, channels=1)
        except ImageReadError as err:
            raise KernelError(str(err)) from None
        kernel = image[0]
    if kernel.ndim != 2:
        raise KernelError(f"{path}: a kernel must be 2-D, got shape {tuple(kernel.shape)}")
    kernel = torch.nan_to_num(kernel).clamp_min(0.0)
    total = kernel.sum()
    if total <= 0:
        raise KernelError(f"{path}: kernel is all zeros; re-generate it")
    return kernel / total


def _square_odd(kernels: Tensor) -> Tensor:
    """Zero-pad kernels after their last row/column to a square odd size.

    The centre pixel ``k // 2`` does not move, and an odd size makes the flipped kernel (the
    adjoint Richardson–Lucy needs) centred on the same pixel.
    """
    kh, kw = kernels.shape[-2:]
    k = max(kh, kw)
    k += 1 - k % 2
    return F.pad(kernels, (0, k - kw, 0, k - kh))


def _batch_kernels(images: Tensor, kernel: Tensor) -> Tensor:
    """(k, k) or (B, k, k) kernels as a square odd (B, k, k) float tensor on the images' device."""
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    b = images.shape[0]
    if kernel.ndim == 2:
        kernel = kernel[None].expand(b, -1, -1)
    if kernel.ndim != 3 or kernel.shape[0] != b:
        raise ValueError(
            f"kernel must be (k, k) or (B, k, k) with B={b}, got {tuple(kernel.shape)}"
        )
    kernel = kernel.to(device=images.device, dtype=torch.float32)
    kernel = kernel / kernel.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return _square_odd(kernel)


def identity(images: Tensor, kernel: Tensor | None = None) -> Tensor:
    """The do-nothing baseline: the blurry input itself (the score any method must beat).

    Shape:
        - images: :math:`(B, C, H, W)`
        - output: :math:`(B, C, H, W)`
    """
    return images


def _mirror(x: Tensor) -> Tensor:
    """Symmetric extension to twice the size, (x, flip(x)) along H and W.

    Its periodic continuation has no jump at any edge (the trick behind the DCT), so the FFT's
    circular boundary does not make the deconvolution ring across the picture, which it does
    badly with plain reflect padding wherever the kernel's spectrum has near-zeros.
    """
    x = torch.cat([x, x.flip(-2)], dim=-2)
    return torch.cat([x, x.flip(-1)], dim=-1)


def wiener(images: Tensor, kernel: Tensor, nsr: float = 1e-2) -> Tensor:
    """Wiener deconvolution in the Fourier domain.

    ``X = conj(K) Y / (|K|² + nsr)``, on the image's symmetric extension so that the FFT's
    periodic boundary does not ring across the picture.

    Args:
        images: blurry images in [0, 1].
        kernel: the blur kernel, shared or one per image (normalised to sum 1 here).
        nsr: noise-to-signal power ratio (1 / SNR), the regulariser: larger is smoother and
            rings less, smaller is sharper and amplifies noise.

    Returns:
        Restored images, clamped to [0, 1].

    Shape:
        - images: :math:`(B, C, H, W)`
        - kernel: :math:`(k, k)` or :math:`(B, k, k)`
        - output: :math:`(B, C, H, W)`
    """
    if nsr <= 0:
        raise ValueError(f"nsr must be > 0, got {nsr}")
    kernels = _batch_kernels(images, kernel)
    dtype = images.dtype
    x = images.float()
    h, w = x.shape[-2:]
    k = kernels.shape[-1]
    padded = _mirror(x)
    size = padded.shape[-2:]
    if k > min(size):
        raise ValueError(f"a {k}x{k} kernel is larger than twice the {h}x{w} image")
    # Optical transfer function: the kernel's centre moved to the origin of the padded frame.
    psf = F.pad(kernels, (0, size[1] - k, 0, size[0] - k))
    otf = torch.fft.rfft2(torch.roll(psf, shifts=(-(k // 2), -(k // 2)), dims=(-2, -1)))[:, None]
    spectrum = torch.fft.rfft2(padded) * otf.conj() / (otf.abs().square() + nsr)
    out = torch.fft.irfft2(spectrum, s=size)[..., :h, :w]
    return out.clamp(0.0, 1.0).to(dtype)


def richardson_lucy(
    images: Tensor, kernel: Tensor, iterations: int = 30, eps: float = 1e-6
) -> Tensor:
    """Richardson–Lucy deconvolution, the maximum-likelihood restoration under Poisson noise.

    ``x ← x · (Kᵀ ⊛ (y / (K ⊛ x)))``, starting from the blurry image. Each iteration costs two
    convolutions; more iterations sharpen further but amplify noise (there is no regulariser).

    Args:
        images: blurry images in [0, 1].
        kernel: the blur kernel, shared or one per image (normalised to sum 1 here).
        iterations: number of multiplicative updates.
        eps: floor on the denominator (dark pixels).

    Returns:
        Restored images, clamped to [0, 1].

    Shape:
        - images: :math:`(B, C, H, W)`
        - kernel: :math:`(k, k)` or :math:`(B, k, k)`
        - output: :math:`(B, C, H, W)`
    """
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    kernels = _batch_kernels(images, kernel)
    adjoint = kernels.flip(-2, -1)
    dtype = images.dtype
    observed = images.float().clamp_min(0.0)
    estimate = observed.clamp_min(eps)
    for _ in range(iterations):
        ratio = observed / convolve(estimate, kernels).clamp_min(eps)
        estimate = estimate * convolve(ratio, adjoint)
    return estimate.clamp(0.0, 1.0).to(dtype)
