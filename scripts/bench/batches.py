"""In-memory random batches in the project's batch vocabulary, so a timing sees no disk or decode.

Training batches are ``{"sharp", "blur_syn", "blur_real"}``, validation batches ``{"blur",
"sharp", "name"}``, images uniform in [0, 1] (a step costs the same on noise as on photos).
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

Batch = dict[str, torch.Tensor | list[str]]

TRAIN_KEYS = ("sharp", "blur_syn", "blur_real")


def random_batches(
    n: int, batch: int, size: int, channels: int, *, validation: bool = False, seed: int = 0
) -> list[Batch]:
    """``n`` batches of ``batch`` images of ``channels`` x ``size`` x ``size``.

    Args:
        n: Number of batches.
        batch: Images per batch.
        size: Side of the square crops.
        channels: Image channels (``model.image_channels``).
        validation: Validation batches (``blur``, ``sharp``, ``name``) instead of training ones.
        seed: Seeds the images; the same seed gives the same batches.
    """
    gen = torch.Generator().manual_seed(seed)
    keys = ("blur", "sharp") if validation else TRAIN_KEYS
    out: list[Batch] = []
    for i in range(n):
        item: Batch = {k: torch.rand(batch, channels, size, size, generator=gen) for k in keys}
        if validation:
            item["name"] = [f"bench_{i}_{j}" for j in range(batch)]
        out.append(item)
    return out


def loader(batches: list[Batch]) -> DataLoader:
    """A loader yielding ``batches`` as they are, in order (each item is a whole batch)."""
    return DataLoader(batches, batch_size=None, shuffle=False)
