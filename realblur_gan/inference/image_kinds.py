"""In-memory images of every kind to a float batch in [0, 1], and back to the kind they were.

:func:`to_batch` takes a PIL image, a numpy array or a torch tensor and returns a float32
``(B, C, H, W)`` batch in [0, 1] with C = 1 or 3, plus an :class:`ImageKind` that remembers what
the image was; :func:`from_batch` turns a batch of results back into that: the same type,
dtype, shape, PIL mode and device, the input's alpha channel passed through untouched.

What is accepted, and how values are read:

- numpy ``(H, W)`` or ``(H, W, C)``, C = 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA):
  ``uint8`` as 0..255, ``uint16`` as 0..65535, float (16, 32, 64 bit) as 0..1;
- torch ``(C, H, W)`` or ``(B, C, H, W)``, C as above: float as 0..1, ``uint8`` as 0..255;
- PIL modes 1, L, LA, RGB, RGBA, I;16, I (read as 16-bit), F (as 0..1), and P, CMYK, YCbCr,
  which are converted to RGB and back (P to its own palette).

Anything else (other integer types, bool arrays, floats outside [0, 1], NaN, channels-first
numpy) is refused with one line saying what to pass instead: a guess would come back wrong
without a word (a uint8 tensor read as floats comes back white).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from realblur_gan.errors import UserError

__all__ = ["ImageInputError", "ImageKind", "from_batch", "to_batch"]

# PIL modes that map to a numpy array and back without conversion, and those converted to RGB.
_PIL_DIRECT = frozenset({"1", "L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I", "F"})
_PIL_VIA_RGB = frozenset({"P", "CMYK", "YCbCr"})
# Floats within this of [0, 1] are rounding, not a different range: clipped, not refused.
_RANGE_SLACK = 1e-4


class ImageInputError(UserError, ValueError):
    """An in-memory image has a type, dtype, shape or value range that cannot be read."""


@dataclass
class ImageKind:
    """What an image passed to :func:`to_batch` was, to rebuild the result in its form.

    Attributes:
        kind: ``"numpy"``, ``"torch"`` or ``"pil"``.
        dtype: the numpy or torch dtype of the samples (for PIL, of ``np.asarray(image)``).
        scale: the integer sample range (255, 65535), or None for floats in [0, 1].
        shape: the input's shape (numpy and torch).
        alpha: the input's alpha samples, untouched, or None.
        mode: the PIL mode (PIL only).
        source: the PIL image itself, for its palette (mode P only).
        device: the tensor's device (torch only).
    """

    kind: str
    dtype: Any
    scale: int | None
    shape: tuple[int, ...]
    alpha: Any = None
    mode: str | None = None
    source: Any = None
    device: torch.device | None = None


def _describe(image: Any) -> str:
    shape = getattr(image, "shape", None)
    dtype = getattr(image, "dtype", None)
    return f"{type(image).__name__}" + (f" {tuple(shape)} {dtype}" if shape is not None else "")


def _scale_of(dtype: Any) -> int | None:
    """255 or 65535 for the integer dtypes read as samples, None for floats; else refused."""
    if isinstance(dtype, torch.dtype):
        if dtype == torch.uint8:
            return 255
        if dtype.is_floating_point:
            return None
    elif dtype == np.uint8:
        return 255
    elif dtype == np.uint16:
        return 65535
    elif np.issubdtype(dtype, np.floating):
        return None
    raise ImageInputError(
        f"images of dtype {dtype} are not read: pass uint8 (0..255), uint16 (0..65535, numpy) "
        "or floats in [0, 1]"
    )


def _check_range(values: Tensor) -> Tensor:
    """Float samples checked to lie in [0, 1] (up to rounding), as float32."""
    values = values.float()
    if not bool(torch.isfinite(values).all()):
        raise ImageInputError("the image holds NaN or Inf values: pass finite values in [0, 1]")
    low, high = float(values.min()), float(values.max())
    if low < -_RANGE_SLACK or high > 1 + _RANGE_SLACK:
        hint = "(x + 1) / 2 for [-1, 1]" if low >= -1 - _RANGE_SLACK else "x / x.max()"
        raise ImageInputError(
            f"float images must hold values in [0, 1], this one spans [{low:.4g}, {high:.4g}]: "
            f"scale it first (e.g. x / 255 for 0..255, {hint})"
        )
    return values.clamp_(0.0, 1.0)


def _channels_last_to_batch(array: np.ndarray, kind: ImageKind) -> Tensor:
    """(H, W[, C]) numpy samples -> (1, C, H, W) float, the alpha channel kept aside."""
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4) or 0 in array.shape[:2]:
        raise ImageInputError(
            f"numpy images are (H, W) or (H, W, C) with C = 1-4, got shape {array.shape}: "
            "for (C, H, W) pass np.moveaxis(image, 0, -1), or pass a torch tensor"
        )
    if array.shape[-1] in (2, 4):
        kind.alpha, array = array[..., -1:], array[..., :-1]
    values = torch.from_numpy(np.ascontiguousarray(array).astype(np.float32))
    values = _check_range(values) if kind.scale is None else values / kind.scale
    return values.permute(2, 0, 1)[None]


def _from_numpy(array: np.ndarray) -> tuple[Tensor, ImageKind]:
    dtype = array.dtype.newbyteorder("=") if array.dtype.byteorder == ">" else array.dtype
    kind = ImageKind("numpy", dtype, _scale_of(dtype), array.shape)
    return _channels_last_to_batch(array.astype(dtype, copy=False), kind), kind


def _from_torch(tensor: Tensor) -> tuple[Tensor, ImageKind]:
    if tensor.ndim not in (3, 4) or tensor.shape[-3] not in (1, 2, 3, 4) or tensor.numel() == 0:
        raise ImageInputError(
            f"torch images are (C, H, W) or (B, C, H, W) with C = 1-4, got shape "
            f"{tuple(tensor.shape)}: for (H, W, C) pass image.permute(2, 0, 1)"
        )
    kind = ImageKind("torch", tensor.dtype, _scale_of(tensor.dtype), tuple(tensor.shape))
    kind.device = tensor.device
    batch = tensor.detach()
    batch = batch if batch.ndim == 4 else batch[None]
    if batch.shape[1] in (2, 4):
        kind.alpha, batch = batch[:, -1:], batch[:, :-1]
    batch = _check_range(batch) if kind.scale is None else batch.float() / kind.scale
    return batch, kind


def _from_pil(image: Any) -> tuple[Tensor, ImageKind]:
    mode = image.mode
    if mode in _PIL_VIA_RGB:
        has_alpha = mode == "P" and "transparency" in image.info
        array = np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
    elif mode in _PIL_DIRECT:
        array = np.asarray(image)
    else:
        raise ImageInputError(
            f"PIL images of mode {mode} are not read: convert it first, e.g. image.convert('RGB')"
        )
    if mode == "1":
        array = array.astype(np.uint8) * 255
    elif mode == "I":  # 32-bit gray almost always holds 16-bit samples (16-bit PNGs open so)
        array = np.clip(array, 0, 65535).astype(np.uint16)
    elif mode.startswith("I;16"):
        array = array.astype(np.uint16)
    dtype = array.dtype
    kind = ImageKind("pil", dtype, _scale_of(dtype), array.shape, mode=mode)
    kind.source = image if mode == "P" else None
    return _channels_last_to_batch(array, kind), kind


def to_batch(image: Any) -> tuple[Tensor, ImageKind]:
    """Read an in-memory image (see the module docstring for what is accepted).

    Args:
        image: a ``PIL.Image.Image``, ``numpy.ndarray`` or ``torch.Tensor``.

    Returns:
        ``(batch, kind)``: the colour channels as float32 in [0, 1] (on the tensor's device for
        a tensor, else the CPU) and the record :func:`from_batch` needs.

    Raises:
        ImageInputError: An unsupported type, dtype, shape, mode or value range; one line.

    Shape:
        - batch: :math:`(B, C, H, W)`, C = 1 or 3, B = 1 except for a 4-D tensor
    """
    if isinstance(image, Tensor):
        return _from_torch(image)
    if isinstance(image, np.ndarray):
        return _from_numpy(image)
    if type(image).__module__.startswith("PIL.") and hasattr(image, "mode"):
        return _from_pil(image)
    raise ImageInputError(
        f"cannot deblur a {_describe(image)}: pass a PIL image, a numpy array (H, W[, C]) or a "
        "torch tensor ([B,] C, H, W)"
    )


def _to_samples(batch: Tensor, kind: ImageKind) -> np.ndarray:
    """(1, C, H, W) float results -> (H, W, C) numpy samples in the input's dtype."""
    hwc = batch[0].permute(1, 2, 0).cpu()
    if kind.scale is None:
        samples = hwc.numpy().astype(kind.dtype)
    else:
        samples = (hwc * kind.scale).round_().numpy().astype(kind.dtype)
    if kind.alpha is not None:
        samples = np.concatenate([samples, np.asarray(kind.alpha, dtype=kind.dtype)], axis=-1)
    return samples


def from_batch(batch: Tensor, kind: ImageKind) -> Any:
    """Turn results in [0, 1] back into the kind of image :func:`to_batch` read.

    Args:
        batch: results for the batch :func:`to_batch` returned, same shape.
        kind: its record.

    Returns:
        A PIL image, numpy array or tensor like the input: same dtype, shape, mode and device.
    """
    batch = batch.clamp(0.0, 1.0)
    if kind.kind == "torch":
        out = batch if kind.scale is None else (batch * kind.scale).round_()
        out = out.to(device=kind.device, dtype=kind.dtype)
        if kind.alpha is not None:
            out = torch.cat([out, kind.alpha.to(out.device)], dim=1)
        return out if len(kind.shape) == 4 else out[0]
    samples = _to_samples(batch, kind)
    if kind.kind == "numpy":
        return samples.reshape(kind.shape)
    from PIL import Image

    mode = kind.mode
    if mode in _PIL_VIA_RGB:
        rgb = Image.fromarray(samples[..., :3])
        if mode == "P":
            # Back to the input's own palette (no dithering); transparency stays in its info.
            out = rgb.quantize(palette=kind.source, dither=Image.Dither.NONE)
            out.info.update(kind.source.info)
            return out
        return rgb.convert(mode)
    if mode == "1":
        return Image.fromarray(samples[..., 0] >= 128)
    if mode == "I":
        return Image.fromarray(samples[..., 0].astype(np.int32))
    if samples.shape[-1] == 1:
        samples = samples[..., 0]
    # 16-bit gray comes back as I;16 whatever the byte order of the input's mode.
    return Image.fromarray(samples)
