"""Run a generator on an image of any size: pad to its stride, tile large images, crop back.

:func:`deblur_image` reflect-pads an image to the net's ``stride`` multiple and, for large
images, runs overlapping tiles one at a time, blending them with a raised-cosine window into an
output buffer, so memory is bounded by the tile size rather than the image size. Loading the
net is :func:`realblur_gan.weights.checkpoints.load_generator`'s; walking files is
:mod:`realblur_gan.predict`'s.
"""

from __future__ import annotations

import logging
import math
from itertools import pairwise

import torch
from torch import Tensor, nn

from realblur_gan.data.io import to_channels
from realblur_gan.defaults import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    TILE_SIDE,
    WHOLE_IMAGE_PIXELS,
    Tile,
    parse_tile,
)
from realblur_gan.inference.runtime import Runner, forward_runner
from realblur_gan.nets.init import net_channels
from realblur_gan.nets.padding import pad_to_multiple

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_TILE",
    "SELF_ENSEMBLE",
    "TILE_SIDE",
    "WHOLE_IMAGE_PIXELS",
    "Tile",
    "auto_tile",
    "deblur_image",
    "parse_tile",
    "pick_device",
]


def auto_tile(height: int, width: int, one_pass_pixels: int = WHOLE_IMAGE_PIXELS) -> int | None:
    """The tiling ``tile="auto"`` uses for an image of this size: None (one pass) up to
    ``one_pass_pixels`` (the runtime's, at most :data:`WHOLE_IMAGE_PIXELS`), else tiles of
    :data:`TILE_SIDE`."""
    whole = min(one_pass_pixels, WHOLE_IMAGE_PIXELS)
    return None if height * width <= whole else TILE_SIDE


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` is CUDA when available, else the CPU; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available; use --device cpu")
    return device


def _grid(length: int, tile: int, overlap: int, stride: int) -> tuple[list[int], int]:
    """Tile origins and tile size covering ``length`` with at least ``overlap`` shared pixels.

    Uses the fewest tiles of at most ``tile`` pixels, then shrinks them to spread the overlap
    evenly: a 720-pixel side takes two 376-pixel tiles rather than 512 + a 512 that is almost
    all overlap. Origins are multiples of ``stride``. Neighbours are kept more than
    ``overlap // 4`` apart so that every pixel gets a positive blend weight (see :func:`_ramp`);
    on small images that can make a tile slightly larger than ``tile``.
    """
    count = math.ceil((length - overlap) / (tile - overlap)) if length > tile else 1
    while count > 1:
        size = math.ceil((length + (count - 1) * overlap) / count / stride) * stride
        while True:
            starts = [i * (length - size) // (count - 1) // stride * stride for i in range(count)]
            if all(a + size - b >= overlap for a, b in pairwise(starts)):
                break
            size += stride
        if all(b - a > overlap // 4 for a, b in pairwise(starts)):
            return starts, size
        count -= 1
    return [0], length


def _ramp(overlap: int) -> Tensor:
    """Blend weights across an overlap, rising from 0 to 1.

    Zero over the first quarter (the pixels next to a tile's inner edge, which saw the net's zero
    padding instead of the neighbouring content), a raised-cosine ramp over the middle half, one
    over the last quarter. Two neighbours' ramps sum to one where tiles are a regular step apart.
    """
    margin = overlap // 4
    length = overlap - 2 * margin
    t = (torch.arange(length, dtype=torch.float32) + 0.5) / length
    rise = 0.5 - 0.5 * torch.cos(math.pi * t)
    return torch.cat([torch.zeros(margin), rise, torch.ones(margin)])


def _window(start: int, size: int, total: int, overlap: int) -> Tensor:
    """1-D weights of one tile: ramps at the edges shared with a neighbour, flat at the image's."""
    weights = torch.ones(size)
    if overlap == 0:
        return weights
    ramp = _ramp(overlap)
    if start > 0:
        weights[:overlap] = torch.minimum(weights[:overlap], ramp)
    if start + size < total:
        weights[-overlap:] = torch.minimum(weights[-overlap:], ramp.flip(0))
    return weights


def _flip(x: Tensor, transpose: bool, flip_h: bool, flip_w: bool) -> Tensor:
    """One of the square's eight symmetries: an optional transpose, then optional flips."""
    if transpose:
        x = x.transpose(-2, -1)
    dims = [d for d, on in ((-2, flip_h), (-1, flip_w)) if on]
    return x.flip(dims) if dims else x


def _unflip(y: Tensor, transpose: bool, flip_h: bool, flip_w: bool) -> Tensor:
    """The inverse of :func:`_flip` with the same arguments."""
    dims = [d for d, on in ((-2, flip_h), (-1, flip_w)) if on]
    y = y.flip(dims) if dims else y
    return y.transpose(-2, -1) if transpose else y


#: The eight symmetries of the square as ``(transpose, flip_h, flip_w)``, identity first.
SELF_ENSEMBLE: tuple[tuple[bool, bool, bool], ...] = tuple(
    (t, fh, fw) for t in (False, True) for fh in (False, True) for fw in (False, True)
)


def _restore(run: Runner, stride: int, x: Tensor, tile: Tile, overlap: int) -> Tensor:
    """One pass of ``run`` (the net) over ``x`` (already in the net's channels): padded, tiled,
    cropped; the result is where ``x`` is."""
    h, w = x.shape[-2:]
    x = pad_to_multiple(x, stride)
    hp, wp = x.shape[-2:]
    if tile == "auto":
        tile = auto_tile(hp, wp, getattr(run, "one_pass_pixels", WHOLE_IMAGE_PIXELS))
    if tile is None or (hp <= tile and wp <= tile):
        return run(x).to(x.device)[..., :h, :w]
    tile = math.ceil(tile / stride) * stride
    overlap = math.ceil(overlap / stride) * stride
    if not 0 <= overlap <= tile // 2:
        raise ValueError(f"overlap must be in [0, tile / 2] = [0, {tile // 2}], got {overlap}")
    tops, th = _grid(hp, tile, overlap, stride)
    lefts, tw = _grid(wp, tile, overlap, stride)
    out = torch.zeros(x.shape[0], x.shape[1], hp, wp, device=x.device)
    # Every tile's window is a product of a row and a column window, and the tiles form a grid:
    # the summed weights are the product of the summed row and column windows (no H x W buffer).
    rows = torch.zeros(hp, device=x.device)
    cols = torch.zeros(wp, device=x.device)
    for left in lefts:
        cols[left : left + tw] += _window(left, tw, wp, overlap).to(x.device)
    for top in tops:
        wy = _window(top, th, hp, overlap).to(x.device)
        rows[top : top + th] += wy
        for left in lefts:
            win = wy[:, None] * _window(left, tw, wp, overlap).to(x.device)[None, :]
            pred = run(x[..., top : top + th, left : left + tw]).to(x.device)
            out[..., top : top + th, left : left + tw].addcmul_(pred, win)
    out.div_(rows.clamp_min_(1e-8)[:, None]).div_(cols.clamp_min_(1e-8)[None, :])
    return out[..., :h, :w]


@torch.inference_mode()
def deblur_image(
    net: nn.Module,
    image: Tensor,
    tile: Tile = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    *,
    bf16: bool = False,
    self_ensemble: bool = False,
    runtime: str = "auto",
) -> Tensor:
    """Run a generator on an image of any size, in overlapping tiles when it is large.

    The image is reflect-padded to the net's ``stride`` multiple (and cropped back). Larger than
    ``tile``, it is cut into tiles of at most ``tile`` pixels sharing at least ``overlap`` pixels
    (:func:`_grid`), run one at a time and blended (:func:`_ramp`) into a float32 buffer beside
    the input, so memory grows with the tile, not the image. Tile origins are multiples of the
    stride, so a U-Net sees the same down-sampling grid as on the whole image. The result equals
    the untiled one wherever the net's receptive-field radius is at most ``overlap // 4``; beyond
    that the blend hides the seams (measured: max 1e-3 for a random U-Net of depth 2, tile 64,
    overlap 32).

    With ``self_ensemble`` the net also runs on the image's seven other flips and transposes
    (:data:`SELF_ENSEMBLE`) and the eight results, each mapped back, are averaged: eight times
    the compute for a smaller error where the net's mistakes differ between orientations
    (measured for the packaged model on 13 real GoPro pairs: +1.18 dB alone, +1.29 averaged).

    Gray images through a colour net are replicated to RGB and converted back (BT.601 luma), and
    vice versa. The computation runs on the net's device; the result returns to the image's. On
    the CPU the forward pass runs in onnxruntime when it is installed and reproduces torch, else
    in torch with channels-last input (:func:`realblur_gan.inference.runtime.forward_runner`): the
    same
    result within 1e-4, faster.

    Args:
        net: generator in eval mode with a ``stride`` attribute (1 when absent).
        image: images in [0, 1], 1 or 3 channels.
        tile: tile side in pixels (rounded up to the stride); None runs the whole image at once;
            ``"auto"`` (the default) picks by size and runtime (:func:`auto_tile`): one pass up
            to 1 MP with onnxruntime or on a GPU, 512 px tiles otherwise (measured faster).
        overlap: pixels shared by neighbouring tiles (rounded up to the stride), at most
            ``tile // 2``.
        bf16: bfloat16 autocast, on CUDA and on CPUs with native bf16 (AVX512-BF16, AMX);
            elsewhere ignored with a warning. Not within 1e-4 of float32 (about 5e-3).
        self_ensemble: average the net's outputs over the eight flips and transposes.
        runtime: ``"auto"``, ``"torch"`` or ``"onnxruntime"``
            (:data:`realblur_gan.inference.runtime.RUNTIMES`).

    Returns:
        The restored images in [0, 1], float32.

    Shape:
        - image: :math:`(B, C, H, W)`, usually B = 1
        - output: :math:`(B, C, H, W)`

    Example:
        >>> from realblur_gan.nets import UNet
        >>> net = UNet(width=4, depth=2).eval()
        >>> deblur_image(net, torch.rand(1, 3, 37, 50), tile=32, overlap=8).shape
        torch.Size([1, 3, 37, 50])
    """
    if image.ndim != 4:
        raise ValueError(f"image must be (B, C, H, W), got shape {tuple(image.shape)}")
    try:
        device = next(net.parameters()).device
    except StopIteration:
        device = image.device
    run = forward_runner(net, device, runtime, bf16)
    stride = int(getattr(net, "stride", 1))
    channels_in = image.shape[1]
    channels_net = net_channels(net)
    x = image.float()
    if channels_in != channels_net:
        x = to_channels(x, channels_net)
    if self_ensemble:
        out = torch.zeros_like(x)
        for symmetry in SELF_ENSEMBLE:
            pred = _restore(run, stride, _flip(x, *symmetry), tile, overlap)
            out.add_(_unflip(pred, *symmetry))
        out.div_(len(SELF_ENSEMBLE))
    else:
        out = _restore(run, stride, x, tile, overlap)
    if channels_in != channels_net:
        out = to_channels(out, channels_in)
    return out.clamp_(0.0, 1.0)
