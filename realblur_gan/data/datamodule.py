"""The Lightning DataModule for the three sources the method needs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from realblur_gan.data.datasets import (
    PairedEvalSet,
    TensorPairSet,
    UnpairedTrainSet,
    crop_pair,
    load,
)
from realblur_gan.data.io import list_images

log = logging.getLogger(__name__)


def match_pairs(blur_dir: Path, sharp_dir: Path) -> list[tuple[Path, Path]]:
    """Pair ``blur_dir/x`` with ``sharp_dir/x`` by relative path (extension may differ).

    Raises:
        ValueError: One line naming the first unmatched file and the expected layout.
    """
    blur = {p.relative_to(blur_dir).with_suffix(""): p for p in list_images(blur_dir)}
    sharp = {p.relative_to(sharp_dir).with_suffix(""): p for p in list_images(sharp_dir)}
    missing = sorted(set(blur) ^ set(sharp))
    if missing:
        side = blur_dir if missing[0] in blur else sharp_dir
        raise ValueError(
            f"{side / missing[0]}: has no partner with the same name in the other folder; "
            f"{blur_dir} and {sharp_dir} must hold the same file names"
        )
    return [(blur[k], sharp[k]) for k in sorted(blur)]


class BlurDataModule(L.LightningDataModule):
    """Sharp folder + unpaired real-blur folder + synthetic pairs + a paired validation split.

    Args:
        sharp_dir: Sharp photos.
        real_blur_dir: Real blurry photos, NOT paired with ``sharp_dir``.
        val_dir: Paired validation folder with ``blur/`` and ``sharp/``; None holds out
            ``val_fraction`` of the sharp photos and blurs them with ``val_blur``.
        pairs_dir: Pre-made synthetic pairs (``blur/`` + ``sharp/``); None makes them on the fly
            from the sharp crops with ``synthetic_blur``.
        synthetic_blur: Callable ``(images, generator) -> blurred`` for on-the-fly pairs.
        val_blur: Callable used to blur held-out sharp photos when ``val_dir`` is None.
        val_fraction: Share of sharp photos held out when ``val_dir`` is None.
        crop_size: Training crop side.
        batch_size: Training batch size.
        val_batch_size: Validation batch size (1 when images differ in size).
        val_crop_size: Centre crop for validation images, or None for whole images.
        size_multiple: Validation images are cropped to a multiple of this (the nets' stride).
        channels: 1 (gray) or 3 (RGB).
        num_workers: DataLoader workers.
        seed: Seed of the held-out split and its blur.
    """

    def __init__(
        self,
        sharp_dir: str | Path,
        real_blur_dir: str | Path,
        val_dir: str | Path | None = None,
        pairs_dir: str | Path | None = None,
        synthetic_blur: Callable[..., torch.Tensor] | None = None,
        val_blur: Callable[..., torch.Tensor] | None = None,
        val_fraction: float = 0.05,
        crop_size: int = 256,
        batch_size: int = 4,
        val_batch_size: int = 1,
        val_crop_size: int | None = 256,
        size_multiple: int = 16,
        channels: int = 3,
        num_workers: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.sharp_dir = Path(sharp_dir)
        self.real_blur_dir = Path(real_blur_dir)
        self.val_dir = None if val_dir is None else Path(val_dir)
        self.pairs_dir = None if pairs_dir is None else Path(pairs_dir)
        self.synthetic_blur = synthetic_blur
        self.val_blur = val_blur
        self.val_fraction = val_fraction
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.val_crop_size = val_crop_size
        self.size_multiple = size_multiple
        self.channels = channels
        self.num_workers = num_workers
        self.seed = seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        sharp = list_images(self.sharp_dir)
        real = list_images(self.real_blur_dir)
        pairs = None if self.pairs_dir is None else match_pairs(
            self.pairs_dir / "blur", self.pairs_dir / "sharp"
        )
        if self.val_dir is not None:
            self.val_set = PairedEvalSet(
                match_pairs(self.val_dir / "blur", self.val_dir / "sharp"),
                channels=self.channels,
                crop_size=self.val_crop_size,
                multiple=self.size_multiple,
            )
        else:
            sharp, held_out = self._split(sharp)
            self.val_set = self._blurred_split(held_out)
        self.train_set = UnpairedTrainSet(
            sharp,
            real,
            crop_size=self.crop_size,
            synthetic_blur=self.synthetic_blur,
            pairs=pairs,
            channels=self.channels,
        )
        log.info(
            "data: %d training items, %d real blurry photos, %d validation pairs",
            len(self.train_set),
            len(real),
            len(self.val_set),
        )

    def _split(self, sharp: list[Path]) -> tuple[list[Path], list[Path]]:
        order = torch.randperm(len(sharp), generator=torch.Generator().manual_seed(self.seed))
        n_val = max(1, round(self.val_fraction * len(sharp)))
        if n_val >= len(sharp):
            raise ValueError(f"{self.sharp_dir}: too few images to hold out a validation split")
        val_idx = set(order[:n_val].tolist())
        train = [p for i, p in enumerate(sharp) if i not in val_idx]
        return train, [p for i, p in enumerate(sharp) if i in val_idx]

    def _blurred_split(self, paths: list[Path]) -> TensorPairSet:
        if self.val_blur is None:
            raise ValueError("val_dir is None: set val_blur (e.g. RealisticBlur) to make pairs")
        gen = torch.Generator().manual_seed(self.seed + 1)
        blur, sharp, names = [], [], []
        for path in paths:
            image = load(path, self.channels)
            pair = crop_pair(image, image, self.val_crop_size, self.size_multiple)
            sharp.append(pair["sharp"])
            blur.append(self.val_blur(pair["sharp"], generator=gen))
            names.append(path.name)
        return TensorPairSet(blur, sharp, names)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_set,
            batch_size=self.batch_size,
            shuffle=True,
            num_workers=self.num_workers,
            drop_last=True,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val_set,
            batch_size=self.val_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
