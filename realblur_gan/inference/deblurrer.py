"""Deblur images in Python: :class:`Deblurrer`, the packaged model or any trained one, in 3 lines.

Example::

    from realblur_gan import Deblurrer

    deblur = Deblurrer.from_pretrained()           # the packaged DBGAN, SHA-256 checked
    restored = deblur(Image.open("photo.jpg"))     # a PIL image back, same mode and size

It takes PIL images, numpy arrays and torch tensors and returns each in kind (see
:mod:`realblur_gan.inference.image_kinds`); any size runs, large images in tiles
(:func:`realblur_gan.inference.tiling.deblur_image`).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from realblur_gan.defaults import DEFAULT_NET, DEFAULT_OVERLAP, DEFAULT_TILE, TILE_SIDE, Tile
from realblur_gan.errors import UserError
from realblur_gan.inference.image_kinds import from_batch, to_batch
from realblur_gan.inference.tiling import deblur_image, pick_device
from realblur_gan.weights.model_zoo import DEFAULT_MODEL, load_model

__all__ = ["Deblurrer"]


class Deblurrer(nn.Module):
    """A trained DBGAN generator wrapped to deblur images of any kind and size.

    Calling it on an image returns the restored image in the input's own form: a PIL image in
    its mode, a numpy array in its shape and dtype (``uint8`` as 0..255, ``uint16`` as 0..65535,
    floats in [0, 1]), a torch tensor (``(C, H, W)`` or ``(B, C, H, W)``, floats in [0, 1] or
    ``uint8``) in its dtype and on its device. An alpha channel passes through untouched; gray
    stays gray. A list or tuple of images returns a list or tuple. Inputs it cannot read (other
    dtypes, floats outside [0, 1], channels-first numpy) are refused with one line
    (:class:`~realblur_gan.inference.image_kinds.ImageInputError`).

    It is an ``nn.Module``: ``.to("cuda")`` moves the net, and the images follow it.

    Args:
        net: the generator (see :func:`realblur_gan.weights.checkpoints.load_generator`).
        device: ``"auto"`` (CUDA when there is one), ``"cpu"``, ``"cuda"``, ... or a device.
        tile: tile side in pixels for large images; None runs every image whole; ``"auto"``
            picks by image size and runtime (:func:`realblur_gan.inference.tiling.auto_tile`).
        overlap: pixels neighbouring tiles share.
        self_ensemble: average the results over the image's 8 flips and transposes (8x the
            time, a little better: see the model card).
        bf16: bfloat16 autocast (CUDA only).

    Example:
        >>> import numpy as np
        >>> from realblur_gan import Deblurrer
        >>> deblur = Deblurrer.from_pretrained(device="cpu")
        >>> photo = np.zeros((48, 64, 3), np.uint8)
        >>> out = deblur(photo)
        >>> out.shape, out.dtype
        ((48, 64, 3), dtype('uint8'))
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        device: str | torch.device = "auto",
        tile: Tile = DEFAULT_TILE,
        overlap: int = DEFAULT_OVERLAP,
        self_ensemble: bool = False,
        bf16: bool = False,
    ) -> None:
        super().__init__()
        side = TILE_SIDE if tile == "auto" else tile
        if side is not None and not 0 <= overlap <= side // 2:
            raise UserError(f"tile={tile}, overlap={overlap}: need 0 <= overlap <= tile / 2")
        self.net = net.eval().requires_grad_(False)
        self.tile = tile
        self.overlap = overlap
        self.self_ensemble = self_ensemble
        self.bf16 = bf16
        self.eval()
        self.to(pick_device(device) if isinstance(device, str) else device)

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] = DEFAULT_MODEL,
        *,
        net: str = DEFAULT_NET,
        ema: bool = True,
        **options: Any,
    ) -> Deblurrer:
        """Load a named model (its SHA-256 checked) or a checkpoint file.

        Args:
            model: a name in :data:`realblur_gan.weights.model_zoo.MODELS` (default: the packaged
                DBGAN), or the path of a ``.ckpt`` from training or an exported
                ``.safetensors`` / export folder.
            net: the net to read from a checkpoint file (``dbgan_g`` deblurs).
            ema: use a checkpoint's moving-average weights when it has them.
            **options: ``device``, ``tile``, ``overlap``, ``self_ensemble``, ``bf16`` (see the
                class).

        Raises:
            UserError: ``model`` is neither a registered name nor an existing file or folder.
            CheckpointError: The file is damaged, does not match its registered SHA-256, or
                lacks the net.
        """
        return cls(load_model(model, net, ema), **options)

    @property
    def device(self) -> torch.device:
        """Where the net runs."""
        return next(self.net.parameters()).device

    def forward(self, image: Any) -> Any:
        """Deblur ``image`` (or a list or tuple of images); the result comes back in kind.

        Shape:
            - tensor input: :math:`(C, H, W)` or :math:`(B, C, H, W)`, C in 1-4
            - numpy input: :math:`(H, W)` or :math:`(H, W, C)`, C in 1-4
            - output: the input's shape
        """
        if isinstance(image, list | tuple):
            return type(image)(self.forward(item) for item in image)
        batch, kind = to_batch(image)
        restored = deblur_image(
            self.net,
            batch,
            self.tile,
            self.overlap,
            bf16=self.bf16,
            self_ensemble=self.self_ensemble,
        )
        return from_batch(restored, kind)

    def extra_repr(self) -> str:
        return f"tile={self.tile}, overlap={self.overlap}, self_ensemble={self.self_ensemble}"
