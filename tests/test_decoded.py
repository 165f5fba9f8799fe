"""The decoded-photo cache: exact samples, crops identical to decoding each time, invalidation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from realblur_gan.data.datasets import UnpairedTrainSet
from realblur_gan.data.decoded import DecodedCache
from realblur_gan.data.io import list_images, read_image, write_image


def _photos(folder: Path, n: int, h: int = 50, w: int = 70, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return list_images(folder)


@pytest.mark.parametrize("kind", ["rgb8_jpeg", "gray8", "rgba8", "rgb16", "gray16_tiff"])
def test_samples_are_read_images_values_exactly(tmp_path: Path, kind: str) -> None:
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(4 if kind == "rgba8" else 3, 30, 41, generator=gen)
    suffix = {"rgb8_jpeg": ".jpg", "gray16_tiff": ".tif"}.get(kind, ".png")
    path = tmp_path / f"photo{suffix}"
    if kind.startswith("gray"):
        image = image[:1]
    write_image(path, image, bit_depth=16 if "16" in kind else 8)
    cache = DecodedCache(tmp_path / "cache")
    expected, _ = read_image(path)
    for _ in range(2):  # decoded, then read back memory-mapped
        samples = cache.samples(path)
        assert samples.dtype == (np.uint16 if "16" in kind else np.uint8)
        assert torch.equal(DecodedCache.to_float(samples), expected)
        assert torch.equal(DecodedCache.to_float(samples[:, 3:20, 5:9]), expected[:, 3:20, 5:9])
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1


def test_an_edited_or_damaged_cache_entry_is_decoded_again(tmp_path: Path) -> None:
    (path,) = _photos(tmp_path / "p", 1)
    cache = DecodedCache(tmp_path / "cache")
    first = np.array(cache.samples(path))
    Image.fromarray(np.zeros((50, 70, 3), np.uint8)).save(path)
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock says
    assert not np.array(cache.samples(path)).any()
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2  # one per version of the file
    entry = cache._file(path)
    entry.write_bytes(entry.read_bytes()[:64])  # cut short (a disk that filled up)
    assert np.array_equal(np.array(cache.samples(path)), np.zeros_like(first))


def test_training_items_are_the_same_with_and_without_the_cache(tmp_path: Path) -> None:
    """Same seed, same items: the cache changes the cost of a crop, not which crop."""
    sharp = _photos(tmp_path / "sharp", 4)
    # A photo smaller than the crop takes the padded path, with or without the cache.
    real = [*_photos(tmp_path / "real", 2, seed=5), *_photos(tmp_path / "small", 1, 20, 20, 9)]
    blur = lambda x, generator=None: x.flip(-1)  # noqa: E731
    sets = [
        UnpairedTrainSet(sharp, real, 32, synthetic_blur=blur, channels=channels, decoded=cache)
        for channels in (3, 1)
        for cache in (None, DecodedCache(tmp_path / f"cache{channels}"))
    ]
    for plain, cached in (sets[:2], sets[2:]):
        for epoch in range(3):
            for index in range(4):
                torch.manual_seed(100 * epoch + index)
                expected = plain[index]
                torch.manual_seed(100 * epoch + index)
                got = cached[index]
                assert got.keys() == expected.keys()
                for key in expected:
                    assert torch.equal(got[key], expected[key]), key
