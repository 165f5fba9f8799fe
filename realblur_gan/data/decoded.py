"""Photos decoded once and kept on disk as raw arrays, so that a training crop reads a few rows.

A training item needs one crop (256 px by default) of a photo, but decoding a 12 MP JPEG and
converting it to float costs ~0.3 s of CPU, eight times per batch (four sharp crops, four real
blurry ones): measured on 2 cores that was 39 % of a DeblurGAN step (``scripts/bench.py --parts
feed``, ``docs/speed.md``). :class:`DecodedCache` decodes each photo the first time it is used and
stores its samples as an ``.npy`` file (8-bit sources as uint8, 16-bit as uint16, float as
float32: the same values :func:`~realblur_gan.data.io.read_image` gives, exactly); later reads
memory-map the file and convert only the crop. The operating system's page cache shares the
files between loader workers and runs.

A photo is keyed by its resolved path, size and modification time: an edited photo is decoded
again. The files take the decoded size (36 MB per 12 MP RGB photo); delete the folder to free it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from pathlib import Path

import numpy as np
import torch

from realblur_gan.data.io import read_image, to_channels

log = logging.getLogger(__name__)

__all__ = ["DecodedCache"]

# Samples are stored in the narrowest type that holds the source's values exactly.
_STORAGE = {1: np.uint8, 8: np.uint8, 16: np.uint16}
_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class DecodedCache:
    """Decoded photos under ``folder``, read back memory-mapped.

    Args:
        folder: Where the ``.npy`` files go (created on first use).

    Example:
        >>> cache = DecodedCache(tmp)  # doctest: +SKIP
        >>> samples = cache.samples(Path("photo.jpg"))  # (C, H, W) uint8, memory-mapped
        >>> crop = DecodedCache.to_float(samples[:, 0:256, 0:256])  # (C, 256, 256) in [0, 1]
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)

    def _file(self, path: Path) -> Path:
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return self.folder / f"{hashlib.sha1(key.encode()).hexdigest()}.npy"

    def samples(self, path: Path) -> np.ndarray:
        """The photo's colour samples (alpha dropped), decoding it first if not cached yet.

        Raises:
            ImageReadError: The photo cannot be read (from :func:`read_image`).

        Shape:
            - output: :math:`(C, H, W)`, C = the file's colour channels (1 or 3)
        """
        file = self._file(path)
        try:
            return np.load(file, mmap_mode="r")
        except (OSError, ValueError):  # not cached yet, or a file cut short: decode again
            pass
        image, info = read_image(path)
        dtype = _STORAGE.get(info.bit_depth)
        if dtype is None:
            samples = image.numpy()
        else:
            samples = (image * _SCALE[np.dtype(dtype)]).round_().numpy().astype(dtype)
        self.folder.mkdir(parents=True, exist_ok=True)
        # Written under a private name, then renamed: a reader never sees half a file, and two
        # workers decoding the same photo at once both succeed.
        partial = file.with_name(f".{file.stem}.{secrets.token_hex(4)}.partial.npy")
        try:
            np.save(partial, samples)
            os.replace(partial, file)
        except OSError as err:
            log.warning("%s: cannot cache the decoded photo in %s (%s)", path, self.folder, err)
            return samples
        finally:
            partial.unlink(missing_ok=True)
        return np.load(file, mmap_mode="r")

    def load(self, path: Path, channels: int) -> torch.Tensor:
        """The whole photo as :func:`~realblur_gan.data.datasets.load` gives it, from the cache.

        Shape:
            - output: :math:`(channels, H, W)`
        """
        return to_channels(self.to_float(self.samples(path)), channels)

    @staticmethod
    def to_float(samples: np.ndarray) -> torch.Tensor:
        """Samples (a crop of :meth:`samples`) as float32 in [0, 1], as ``read_image`` gives them.

        Shape:
            - samples, output: :math:`(C, h, w)`
        """
        values = torch.from_numpy(np.array(samples, dtype=np.float32))
        scale = _SCALE.get(samples.dtype)
        return values if scale is None else values.div_(scale)
