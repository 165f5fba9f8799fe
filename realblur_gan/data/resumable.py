"""Exactly resumable training data: keyed item randomness, a seeded sampler, a stateful loader.

An interrupted run must see, after resuming, the very batches the uninterrupted run would have
seen. Three pieces make that true independently of workers and prefetching:

- ``EpochKeySampler`` draws each epoch's order from ``(seed, epoch)`` and yields *keys*
  ``epoch * n + index``, so an item knows which epoch it belongs to;
- ``KeyedDataset`` seeds torch's RNG from ``(seed, key)`` around each item (in a forked RNG
  state, leaving the global stream untouched), so crops, flips and blur kernels are a pure
  function of the key: prefetching one batch early changes nothing;
- ``ResumableDataLoader`` implements Lightning's stateful-loader protocol: its state is the
  number of batches the training loop finished in the current epoch, and loading it makes the
  sampler skip exactly those.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

_MIX = 0x9E3779B97F4A7C15  # golden-ratio constant: spreads neighbouring keys over the seed space


def key_seed(seed: int, key: int) -> int:
    """A 63-bit seed for item ``key`` of a run seeded with ``seed``."""
    return (seed * _MIX + key * 0xBF58476D1CE4E5B9 + 1) % (2**63 - 1)


class KeyedDataset(Dataset):
    """Wraps a dataset whose items draw from torch's global RNG; the key fixes that RNG.

    Args:
        dataset: The wrapped map-style dataset (its items may use ``torch.rand`` etc.).
        seed: Run seed.
    """

    def __init__(self, dataset: Dataset, seed: int = 0) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int) -> Any:
        index = key % len(self.dataset)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(key_seed(self.seed, key))
            return self.dataset[index]


class EpochKeySampler(Sampler[int]):
    """Seeded per-epoch order over ``n`` items, yielding keys ``epoch * n + index``.

    Lightning calls ``set_epoch`` before each epoch. ``resume_at(epoch, items)`` makes the next
    iteration of that epoch skip its first ``items`` keys (a resumed mid-epoch checkpoint).
    """

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True) -> None:
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, items: int) -> None:
        # The epoch too: with workers, Lightning starts the resumed loader's iterator (which
        # prefetches keys at once) before its set_epoch call, and would draw epoch 0's order.
        self.epoch = epoch
        self._resume = (epoch, items)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(key_seed(self.seed, -1 - self.epoch))
            order = torch.randperm(self.n, generator=gen)
        else:
            order = torch.arange(self.n)
        keys = (order + self.epoch * self.n).tolist()
        if self._resume is not None and self._resume[0] == self.epoch:
            keys = keys[self._resume[1] :]
        self._resume = None
        return iter(keys)


class ResumableDataLoader(DataLoader):
    """A DataLoader over an ``EpochKeySampler`` whose position survives a checkpoint.

    ``progress`` is a callable returning ``(epoch, batches finished in that epoch)`` (the
    DataModule reads it off its Trainer); Lightning stores ``state_dict()`` in checkpoints and
    calls ``load_state_dict`` when resuming.
    """

    def __init__(self, *args: Any, progress: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress

    def state_dict(self) -> dict[str, int]:
        if self.progress is None:
            return {}
        epoch, batches = self.progress()
        return {"epoch": int(epoch), "batches": int(batches)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state and isinstance(self.sampler, EpochKeySampler):
            self.sampler.resume_at(state["epoch"], state["batches"] * int(self.batch_size or 1))
