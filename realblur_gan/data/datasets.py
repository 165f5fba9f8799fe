"""Datasets: unpaired training triplets and paired evaluation images.

Training items use the batch vocabulary ``{"sharp", "blur_syn", "blur_real"}``: a sharp crop,
its synthetic blur (made on the fly or read from a paired folder; same crop, same flips) and
an independently drawn crop of a real blurry photo. Evaluation items are
``{"blur", "sharp", "name"}``. All images are float32 (C, H, W) in [0, 1].

Randomness comes from torch's global generator, which Lightning seeds per worker
(``seed_everything(workers=True)``), so a seed reproduces the crops, flips and kernels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from realblur_gan.data.io import read_image, to_channels

log = logging.getLogger(__name__)

BlurFn = Callable[..., torch.Tensor]


def load(path: Path, channels: int) -> torch.Tensor:
    """Read an image as (channels, H, W) in [0, 1] (alpha dropped: blur is on colour)."""
    image, _ = read_image(path)
    return to_channels(image, channels)


def pad_to(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Reflect-pad (replicate when too small to reflect) to at least ``height x width``."""
    _, h, w = image.shape
    ph, pw = max(0, height - h), max(0, width - w)
    if ph == 0 and pw == 0:
        return image
    pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(image[None], pads, mode=mode)[0]


def random_crop(images: Sequence[torch.Tensor], size: int) -> list[torch.Tensor]:
    """The same random ``size x size`` window of every image (they share H and W)."""
    _, h, w = images[0].shape
    top = int(torch.randint(0, h - size + 1, ()))
    left = int(torch.randint(0, w - size + 1, ()))
    return [im[:, top : top + size, left : left + size] for im in images]


def center_crop(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    _, h, w = image.shape
    top, left = (h - height) // 2, (w - width) // 2
    return image[:, top : top + height, left : left + width]


def random_flip_rotate(images: Sequence[torch.Tensor], rotate: bool = True) -> list[torch.Tensor]:
    """One random horizontal flip and quarter turn, applied identically to every image."""
    out = list(images)
    if bool(torch.rand(()) < 0.5):
        out = [im.flip(-1) for im in out]
    if rotate:
        turns = int(torch.randint(0, 4, ()))
        if turns:
            out = [im.rot90(turns, dims=(-2, -1)) for im in out]
    return out


def _generator() -> torch.Generator:
    """A generator seeded from the global stream, so blur kernels follow the run's seed."""
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))


class UnpairedTrainSet(Dataset):
    """Sharp crops with their synthetic blur, plus unpaired real-blur crops.

    Args:
        sharp: Sharp image paths (one item each), used when ``pairs`` is None.
        real_blur: Real blurry photo paths, drawn at random for each item.
        crop_size: Side of the square training crops.
        synthetic_blur: Callable ``(images (C, H, W), generator) -> blurred`` making the
            synthetic pair on the fly; needs ``kernel_size`` to crop a margin first.
        pairs: Pre-made synthetic pairs ``[(blur_path, sharp_path), ...]`` instead.
        channels: 1 (gray) or 3 (RGB).
        augment: Random flips and quarter turns (shared within a pair).
    """

    def __init__(
        self,
        sharp: Sequence[Path],
        real_blur: Sequence[Path],
        crop_size: int,
        synthetic_blur: BlurFn | None = None,
        pairs: Sequence[tuple[Path, Path]] | None = None,
        channels: int = 3,
        augment: bool = True,
    ) -> None:
        if pairs is None and synthetic_blur is None:
            raise ValueError("UnpairedTrainSet needs synthetic_blur or pre-made pairs")
        if not real_blur:
            raise ValueError("UnpairedTrainSet needs at least one real blurry image")
        self.sharp = list(sharp)
        self.real_blur = list(real_blur)
        self.pairs = None if pairs is None else list(pairs)
        self.crop_size = crop_size
        self.synthetic_blur = synthetic_blur
        self.channels = channels
        self.augment = augment
        kernel = getattr(synthetic_blur, "kernel_size", (0, 0))
        self.margin = int(max(kernel)) // 2 if synthetic_blur is not None else 0

    def __len__(self) -> int:
        return len(self.pairs) if self.pairs is not None else len(self.sharp)

    def _paired(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        blur_path, sharp_path = self.pairs[index]
        blur, sharp = load(blur_path, self.channels), load(sharp_path, self.channels)
        if blur.shape != sharp.shape:
            raise ValueError(
                f"{blur_path}: size {tuple(blur.shape[1:])} differs from its sharp pair "
                f"{sharp_path} {tuple(sharp.shape[1:])}; fix the pair or run data_tools.verify"
            )
        size = self.crop_size
        blur, sharp = (pad_to(x, size, size) for x in (blur, sharp))
        sharp, blur = random_crop([sharp, blur], size)
        return sharp, blur

    def _synthesised(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sharp = load(self.sharp[index], self.channels)
        # Blur a crop with a margin, then cut the margin: no border artefacts in the pair.
        big = self.crop_size + 2 * self.margin
        (region,) = random_crop([pad_to(sharp, big, big)], big)
        blurred = self.synthetic_blur(region, generator=_generator())
        m, size = self.margin, self.crop_size
        return region[:, m : m + size, m : m + size], blurred[:, m : m + size, m : m + size]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sharp, blur_syn = self._paired(index) if self.pairs is not None else self._synthesised(
            index
        )
        real_path = self.real_blur[int(torch.randint(0, len(self.real_blur), ()))]
        real = pad_to(load(real_path, self.channels), self.crop_size, self.crop_size)
        (real,) = random_crop([real], self.crop_size)
        if self.augment:
            sharp, blur_syn = random_flip_rotate([sharp, blur_syn])
            (real,) = random_flip_rotate([real])
        return {
            "sharp": sharp.contiguous(),
            "blur_syn": blur_syn.contiguous(),
            "blur_real": real.contiguous(),
        }


class PairedEvalSet(Dataset):
    """Paired (blur, sharp) images for validation/evaluation.

    Args:
        pairs: ``[(blur_path, sharp_path), ...]`` with matching content.
        channels: 1 or 3.
        crop_size: Centre crop side, or None for the whole image.
        multiple: Crop H and W down to a multiple of this (the nets' stride).
    """

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        channels: int = 3,
        crop_size: int | None = None,
        multiple: int = 16,
    ) -> None:
        self.pairs = list(pairs)
        self.channels = channels
        self.crop_size = crop_size
        self.multiple = multiple

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        blur_path, sharp_path = self.pairs[index]
        blur, sharp = load(blur_path, self.channels), load(sharp_path, self.channels)
        if blur.shape != sharp.shape:
            raise ValueError(
                f"{blur_path}: size {tuple(blur.shape[1:])} differs from {sharp_path} "
                f"{tuple(sharp.shape[1:])}; evaluation pairs must be the same size"
            )
        return {**crop_pair(blur, sharp, self.crop_size, self.multiple), "name": blur_path.name}


def crop_pair(
    blur: torch.Tensor, sharp: torch.Tensor, crop_size: int | None, multiple: int
) -> dict[str, torch.Tensor]:
    """Centre-crop a pair to ``crop_size`` (when given) and to a multiple of ``multiple``."""
    _, h, w = blur.shape
    if crop_size is not None:
        h, w = min(h, crop_size), min(w, crop_size)
    h, w = h - h % multiple, w - w % multiple
    if h == 0 or w == 0:
        raise ValueError(f"image of size {tuple(blur.shape[1:])} is smaller than {multiple} px")
    return {"blur": center_crop(blur, h, w), "sharp": center_crop(sharp, h, w)}


class TensorPairSet(Dataset):
    """Evaluation pairs held in memory (e.g. a validation split blurred at setup)."""

    def __init__(self, blur: list[torch.Tensor], sharp: list[torch.Tensor], names: list[str]):
        self.blur, self.sharp, self.names = blur, sharp, names

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        return {"blur": self.blur[index], "sharp": self.sharp[index], "name": self.names[index]}
