"""Datasets: unpaired training triplets and paired evaluation images.

Training items use the batch vocabulary ``{"sharp", "blur_syn", "blur_real"}``: a sharp crop,
its synthetic blur (made on the fly, or read from pre-made pairs: two folders or pix2pix AB
images; same crop, same flips) and an independently drawn crop of a real blurry photo.
Evaluation items are ``{"blur", "sharp", "name"}``. All images are float32 (C, H, W) in [0, 1].

Randomness comes from torch's global generator, which Lightning seeds per worker
(``seed_everything(workers=True)``), so a seed reproduces the crops, flips and kernels.

Bad files never stop an epoch: an item whose file cannot be read (or whose pair does not fit)
is replaced by the next usable item, and the file is reported once per process with a warning.
A read error happens before any random draw, so the replacement does not shift the random
stream: a run with a bad file gives the same batches whether or not a worker has met it before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from realblur_gan.data.decoded import DecodedCache
from realblur_gan.data.io import ImageReadError, read_image, to_channels
from realblur_gan.errors import DataError

log = logging.getLogger(__name__)

BlurFn = Callable[..., torch.Tensor]
SmallImages = Literal["pad", "skip"]
SMALL_IMAGE_MODES = ("pad", "skip")
AB_SIDES = ("left", "right")
T = TypeVar("T")
# EXIF orientations 5-8 turn the picture a quarter: read_image applies them, so H and W swap.
_EXIF_ORIENTATION = 0x0112
_QUARTER_TURNS = frozenset({5, 6, 7, 8})


class BadItemError(ValueError):
    """A readable file that cannot serve as an item (too small, pair sizes differ, odd AB width).

    The message is one line naming the file and the fix, like :class:`ImageReadError`.
    """


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairFile:
    """One (blur, sharp) pair on disk: two files, or one pix2pix AB image holding both.

    Attributes:
        blur: The blurry image, or the AB image when ``sharp`` is None.
        sharp: The sharp image; None for an AB image.
        name: Name of the pair in evaluation items (relative path, blur folder left out).
        blur_side: For AB images, the half that holds the blurry image: "left" or "right".
    """

    blur: Path
    sharp: Path | None = None
    name: str = ""
    blur_side: str = "left"

    @property
    def files(self) -> tuple[Path, ...]:
        return (self.blur,) if self.sharp is None else (self.blur, self.sharp)

    @property
    def label(self) -> str:
        return self.name or self.blur.name


def as_pair(pair: PairFile | tuple[Path, Path]) -> PairFile:
    """Accept ``(blur_path, sharp_path)`` tuples wherever a :class:`PairFile` is expected."""
    if isinstance(pair, PairFile):
        return pair
    blur, sharp = (Path(p) for p in pair)
    return PairFile(blur, sharp, blur.name)


def load(path: Path, channels: int) -> torch.Tensor:
    """Read an image as (channels, H, W) in [0, 1] (alpha dropped: blur is on colour).

    Shape:
        - output: :math:`(channels, H, W)`
    """
    image, _ = read_image(path)
    return to_channels(image, channels)


class MemoryCache:
    """Decoded images kept in memory after their first read, for datasets read many times.

    8-bit images (nearly all photos) are kept as uint8, a quarter of float32's memory, and
    turned back into exactly the floats :func:`load` returns (``k / 255``); deeper ones are kept
    as float32. A cache belongs to one process: each loader worker fills its own.
    """

    def __init__(self) -> None:
        self._images: dict[Path, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._images)

    def load(self, path: Path, channels: int) -> torch.Tensor:
        """:func:`load`, decoding ``path`` only the first time.

        Shape:
            - output: :math:`(channels, H, W)`
        """
        stored = self._images.get(path)
        if stored is None:
            image, info = read_image(path)
            stored = image.mul(255.0).round_().to(torch.uint8) if info.bit_depth <= 8 else image
            self._images[path] = stored
        image = stored.float().div_(255.0) if stored.dtype == torch.uint8 else stored
        return to_channels(image, channels)


def read_pair(
    pair: PairFile, channels: int, cache: MemoryCache | DecodedCache | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a pair as ``(blur, sharp)``, from two files or from the halves of an AB image.

    Raises:
        ImageReadError: A file cannot be read.
        BadItemError: The two images differ in size, or an AB image has an odd width.

    Shape:
        - output: two :math:`(channels, H, W)` tensors of the same size.
    """
    read = load if cache is None else cache.load
    if pair.sharp is None:
        ab = read(pair.blur, channels)
        width = ab.shape[-1]
        if width % 2:
            raise BadItemError(
                f"{pair.blur}: odd width {width}, not an AB image of two equal halves; "
                "re-make it with `python -m data_tools.ab concat BLUR_DIR SHARP_DIR OUT`"
            )
        left, right = ab[..., : width // 2], ab[..., width // 2 :]
        return (left, right) if pair.blur_side == "left" else (right, left)
    blur, sharp = read(pair.blur, channels), read(pair.sharp, channels)
    if blur.shape != sharp.shape:
        raise BadItemError(
            f"{pair.blur}: size {tuple(blur.shape[1:])} differs from its sharp partner "
            f"{pair.sharp} {tuple(sharp.shape[1:])}; fix or delete the pair "
            "(`python -m data_tools.verify` lists them all)"
        )
    return blur, sharp


def probe_image(path: Path, verify: bool = False) -> tuple[int, int]:
    """``(height, width)`` of an image from its header, as :func:`read_image` will return it.

    Cheap: no pixels are decoded. With ``verify`` the whole image is decoded by
    :func:`read_image`, the reader training uses, so every file that training would fail to read
    (a JPEG cut short, a corrupt PNG or TIFF) fails here; a header holds up even when the data
    after it is missing.

    Raises:
        ImageReadError: The file is missing, empty, not an image, or (with ``verify``) cannot be
            decoded.
    """
    from PIL import Image, UnidentifiedImageError

    if verify:
        image, _ = read_image(path)
        return int(image.shape[-2]), int(image.shape[-1])
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ImageReadError(f"{path}: cannot be read ({err.strerror}); check the path") from None
    if size == 0:
        raise ImageReadError(f"{path}: file is empty (0 bytes); re-copy or delete it")
    try:
        with Image.open(path) as img:
            width, height = img.size
            turned = img.getexif().get(_EXIF_ORIENTATION) in _QUARTER_TURNS
    except UnidentifiedImageError:
        raise ImageReadError(
            f"{path}: not a recognised image; delete it or convert it to PNG/JPEG/TIFF/BMP/WebP"
        ) from None
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError... when corrupt
        detail = " ".join(str(err).split())[:120] or type(err).__name__
        raise ImageReadError(
            f"{path}: truncated or corrupt image ({detail}); re-download or re-export it"
        ) from None
    return (width, height) if turned else (height, width)


# --------------------------------------------------------------------------------------------------
# Geometry, applied identically to every image of a pair
# --------------------------------------------------------------------------------------------------
# Own code rather than kornia.augmentation: crops, flips and quarter turns are pure indexing, so
# they are exact (no resampling of either image), cost nothing, take any image size per item
# (kornia batches need equal sizes before the crop) and share parameters between the two images
# of a pair by construction: one draw, applied to a list.


def pad_to(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Reflect-pad (replicate when too small to reflect) to at least ``height x width``.

    Shape:
        - image: :math:`(C, H, W)`
        - output: :math:`(C, \\max(H, height), \\max(W, width))`
    """
    _, h, w = image.shape
    ph, pw = max(0, height - h), max(0, width - w)
    if ph == 0 and pw == 0:
        return image
    pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    # Reflection cannot pad by more than the side minus one: tiny images replicate instead.
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(image[None], pads, mode=mode)[0]


def resize_shorter(images: Sequence[torch.Tensor], size: int) -> list[torch.Tensor]:
    """Resize images (of one size) so the shorter side is ``size``, keeping the aspect ratio.

    Antialiased bilinear: stays within [0, 1] (bicubic overshoots) and does not alias when it
    shrinks, which would add false sharp detail to blurry photos.

    Shape:
        - images: :math:`(C, H, W)` each
        - output: :math:`(C, H', W')` with :math:`\\min(H', W') = size`
    """
    _, h, w = images[0].shape
    if min(h, w) == size:
        return list(images)
    scale = size / min(h, w)
    out_size = (max(size, round(h * scale)), max(size, round(w * scale)))
    return [
        F.interpolate(im[None], size=out_size, mode="bilinear", antialias=True)[0].clamp(0, 1)
        for im in images
    ]


def random_crop(
    images: Sequence[torch.Tensor], size: int, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """The same random ``size x size`` window of every image (they share H and W).

    Shape:
        - images: :math:`(C, H, W)` each, :math:`H, W \\geq size`
        - output: :math:`(C, size, size)` each
    """
    _, h, w = images[0].shape
    top = int(torch.randint(0, h - size + 1, (), generator=generator))
    left = int(torch.randint(0, w - size + 1, (), generator=generator))
    return [im[:, top : top + size, left : left + size] for im in images]


def center_crop(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The central ``height x width`` window.

    Shape:
        - image: :math:`(C, H, W)`
        - output: :math:`(C, height, width)`
    """
    _, h, w = image.shape
    top, left = (h - height) // 2, (w - width) // 2
    return image[:, top : top + height, left : left + width]


def random_flip_rotate(
    images: Sequence[torch.Tensor],
    flip: bool = True,
    rotate: bool = True,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """One random horizontal flip and quarter turn, applied identically to every image.

    Flip x 4 turns spans all 8 symmetries of the square; a blur kernel turns with the image, so
    a pair stays a valid (blur, sharp) pair.

    Shape:
        - images: :math:`(C, S, S)` each (square, so a quarter turn keeps the shape)
        - output: the same
    """
    out = list(images)
    # Both draws always happen, so switching one off does not shift the other's random stream.
    do_flip = bool(torch.rand((), generator=generator) < 0.5)
    turns = int(torch.randint(0, 4, (), generator=generator))
    if flip and do_flip:
        out = [im.flip(-1) for im in out]
    if rotate and turns:
        out = [im.rot90(turns, dims=(-2, -1)) for im in out]
    return out


def _generator() -> torch.Generator:
    """A generator seeded from the global stream, so blur kernels follow the run's seed."""
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))


# --------------------------------------------------------------------------------------------------
# Skipping bad files
# --------------------------------------------------------------------------------------------------


class SkipBad:
    """Finds the first usable item at or after an index (cyclically), remembering bad ones.

    The replacement is the next index, so it is deterministic; a known-bad index is passed over
    without reading it again. Each bad file is logged once per process (so once per worker).

    Args:
        count: Number of items.
        what: What the items are, for messages (e.g. "real blurry photo").
    """

    def __init__(self, count: int, what: str) -> None:
        self.count = count
        self.what = what
        self.bad: set[int] = set()

    def __call__(self, start: int, fetch: Callable[[int], T]) -> T:
        for step in range(self.count):
            index = (start + step) % self.count
            if index in self.bad:
                continue
            try:
                return fetch(index)
            except (ImageReadError, BadItemError) as err:
                self.bad.add(index)
                log.warning("%s [skipped: the next %s is used instead]", err, self.what)
        raise DataError(
            f"all {self.count} {self.what} files are unreadable or unusable (see the warnings "
            "above); check the data folder, e.g. with `python -m data_tools.verify`"
        )


# --------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------


class UnpairedTrainSet(Dataset):
    """Sharp crops with their synthetic blur, plus unpaired real-blur crops.

    Args:
        sharp: Sharp image paths (one item each), used when ``pairs`` is None.
        real_blur: Real blurry photo paths, drawn at random for each item.
        crop_size: Side of the square training crops.
        synthetic_blur: Callable ``(image (C, H, W), generator) -> blurred`` making the
            synthetic pair on the fly; its ``kernel_size`` (when it has one) sets the margin
            cropped around the pair so that the pair has no border artefacts.
        pairs: Pre-made synthetic pairs (:class:`PairFile` or ``(blur, sharp)`` tuples) instead.
        channels: 1 (gray) or 3 (RGB).
        flip: Random horizontal flips (shared within a pair).
        rotate: Random quarter turns (shared within a pair).
        resize: Resize every image so its shorter side is this many pixels before cropping
            (the original reproduction used 1200 with 1024 crops); None keeps the size.
        small_images: Images smaller than the crop: "pad" (reflect, or replicate when tiny) or
            "skip" (replaced by the next usable item, with a warning).
        cache: Keep every decoded image in memory after its first use (small datasets such as
            the demo's: decoding is then paid once, not once per crop).
        real_pairs: Real (blur, sharp) pairs, e.g. frame averages and their middle frames.
        real_pairs_ratio: Share of the items whose synthetic pair is replaced by a crop of a
            random real pair (when ``synthetic`` is on).
        decoded: Decode each photo once into this on-disk cache (large photos shared by loader
            workers and runs; :mod:`realblur_gan.data.decoded`); ``cache`` takes precedence.

    Attributes:
        synthetic: Whether items carry ``blur_syn``. A stage that never reads the synthetic
            pairs turns it off (see ``BlurDataModule.synthetic_pairs``) and saves the blur.

    Shape:
        - item["sharp"], item["blur_syn"], item["blur_real"]: :math:`(C, S, S)`, S = crop_size
    """

    def __init__(
        self,
        sharp: Sequence[Path] | None,
        real_blur: Sequence[Path],
        crop_size: int,
        synthetic_blur: BlurFn | None = None,
        pairs: Sequence[PairFile | tuple[Path, Path]] | None = None,
        channels: int = 3,
        flip: bool = True,
        rotate: bool = True,
        resize: int | None = None,
        small_images: SmallImages = "pad",
        cache: bool = False,
        real_pairs: Sequence[PairFile | tuple[Path, Path]] | None = None,
        real_pairs_ratio: float = 0.0,
        decoded: DecodedCache | None = None,
    ) -> None:
        if pairs is None and (synthetic_blur is None or not sharp):
            raise DataError("UnpairedTrainSet needs sharp images with synthetic_blur, or pairs")
        if not real_blur:
            raise DataError("UnpairedTrainSet needs at least one real blurry image")
        self.sharp = list(sharp or [])
        self.real_blur = list(real_blur)
        self.pairs = None if pairs is None else [as_pair(p) for p in pairs]
        self.real_pairs = [as_pair(p) for p in real_pairs or []]
        if real_pairs_ratio > 0.0 and not self.real_pairs:
            raise DataError("real_pairs_ratio > 0 needs at least one real pair")
        self.real_pairs_ratio = float(real_pairs_ratio)
        self.crop_size = crop_size
        self.synthetic_blur = synthetic_blur
        self.channels = channels
        self.flip = flip
        self.rotate = rotate
        self.resize = resize
        self.small_images = small_images
        self.synthetic = True
        # Where decoded images come from: memory, the on-disk cache, or the file every time.
        self._images: MemoryCache | DecodedCache | None = MemoryCache() if cache else decoded
        kernel = getattr(synthetic_blur, "kernel_size", (0, 0))
        kernel = (kernel,) if isinstance(kernel, int) else kernel
        self.margin = int(max(kernel)) // 2 if self.pairs is None else 0
        self._skip_items = SkipBad(len(self), "training image" if pairs is None else "pair")
        self._skip_real = SkipBad(len(self.real_blur), "real blurry photo")
        self._skip_real_pairs = SkipBad(len(self.real_pairs), "real pair")

    def __len__(self) -> int:
        return len(self.pairs) if self.pairs is not None else len(self.sharp)

    def _fit(self, images: list[torch.Tensor], path: Path, size: int) -> list[torch.Tensor]:
        """Resize (when configured), then pad or reject images smaller than ``size``."""
        if self.resize is not None:
            images = resize_shorter(images, self.resize)
        _, h, w = images[0].shape
        if min(h, w) < self.crop_size and self.small_images == "skip":
            raise BadItemError(
                f"{path}: {h}x{w} px is smaller than the {self.crop_size} px crop "
                "(small_images=skip); use larger images, a smaller crop_size or small_images=pad"
            )
        return [pad_to(im, size, size) for im in images]

    def _paired(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._crop_pair(self.pairs[index])

    def _real_pair(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._crop_pair(self.real_pairs[index])

    def _crop_pair(self, pair: PairFile) -> tuple[torch.Tensor, torch.Tensor]:
        blur, sharp = read_pair(pair, self.channels, self._images)
        blur, sharp = self._fit([blur, sharp], pair.blur, self.crop_size)
        sharp, blur = random_crop([sharp, blur], self.crop_size)
        return sharp, blur

    def _load(self, path: Path) -> torch.Tensor:
        images = self._images
        return load(path, self.channels) if images is None else images.load(path, self.channels)

    def _crop(self, path: Path, size: int) -> torch.Tensor:
        """A random ``size`` x ``size`` window of the photo at ``path`` (resized or padded as
        configured): from the decoded cache, only the window is converted (the same window, by
        the same random draws as :func:`random_crop`)."""
        if isinstance(self._images, DecodedCache) and self.resize is None:
            samples = self._images.samples(path)
            _, h, w = samples.shape
            if h >= size and w >= size:
                top = int(torch.randint(0, h - size + 1, ()))
                left = int(torch.randint(0, w - size + 1, ()))
                window = samples[:, top : top + size, left : left + size]
                return to_channels(DecodedCache.to_float(window), self.channels)
        (image,) = self._fit([self._load(path)], path, size)
        return random_crop([image], size)[0]

    def _synthesised(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        path = self.sharp[index]
        # Blur a crop with a margin, then cut the margin: no border artefacts in the pair.
        big = self.crop_size + 2 * self.margin
        region = self._crop(path, big)
        m, size = self.margin, self.crop_size
        if not self.synthetic:
            return region[:, m : m + size, m : m + size], None
        blurred = self.synthetic_blur(region, generator=_generator())
        return region[:, m : m + size, m : m + size], blurred[:, m : m + size, m : m + size]

    def _real(self, index: int) -> torch.Tensor:
        return self._crop(self.real_blur[index], self.crop_size)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        # No draw without real pairs: the random stream of other configs stays as it was.
        use_real_pair = (
            self.real_pairs_ratio > 0.0
            and self.synthetic
            and float(torch.rand(())) < self.real_pairs_ratio
        )
        if use_real_pair:
            start = int(torch.randint(0, len(self.real_pairs), ()))
            sharp, blur_syn = self._skip_real_pairs(start, self._real_pair)
        else:
            sharp, blur_syn = self._skip_items(
                index, self._paired if self.pairs is not None else self._synthesised
            )
        real = self._skip_real(int(torch.randint(0, len(self.real_blur), ())), self._real)
        pair = [sharp] if blur_syn is None else [sharp, blur_syn]
        pair = random_flip_rotate(pair, self.flip, self.rotate)
        (real,) = random_flip_rotate([real], self.flip, self.rotate)
        item = {"sharp": pair[0].contiguous(), "blur_real": real.contiguous()}
        if blur_syn is not None:
            item["blur_syn"] = pair[1].contiguous()
        return item


def crop_pair(
    blur: torch.Tensor, sharp: torch.Tensor, crop_size: int | None
) -> dict[str, torch.Tensor]:
    """Centre-crop a pair to at most ``crop_size`` a side (None: keep the whole images).

    Any size will do: validation and inference pad to the net's stride and crop back.

    Shape:
        - blur, sharp: :math:`(C, H, W)`
        - output["blur"], output["sharp"]: :math:`(C, min(H, crop), min(W, crop))`
    """
    if crop_size is None:
        return {"blur": blur, "sharp": sharp}
    _, h, w = blur.shape
    h, w = min(h, crop_size), min(w, crop_size)
    return {"blur": center_crop(blur, h, w), "sharp": center_crop(sharp, h, w)}


class PairedEvalSet(Dataset):
    """Paired (blur, sharp) images for validation/evaluation.

    A pair that turns out unreadable mid-run is replaced by the next one with a warning (the
    setup pass of :class:`~realblur_gan.data.datamodule.BlurDataModule` checks every pair first,
    so this only happens to files that broke or were truncated past their header).

    Args:
        pairs: :class:`PairFile` items or ``(blur_path, sharp_path)`` tuples.
        channels: 1 or 3.
        crop_size: Centre crop side, or None for the whole image.

    Shape:
        - item["blur"], item["sharp"]: :math:`(C, H, W)`; item["name"]: str
    """

    def __init__(
        self,
        pairs: Sequence[PairFile | tuple[Path, Path]],
        channels: int = 3,
        crop_size: int | None = None,
    ) -> None:
        self.pairs = [as_pair(p) for p in pairs]
        self.channels = channels
        self.crop_size = crop_size
        self._skip = SkipBad(len(self.pairs), "evaluation pair (metrics count it twice)")

    def __len__(self) -> int:
        return len(self.pairs)

    def _fetch(self, index: int) -> dict[str, torch.Tensor | str]:
        pair = self.pairs[index]
        blur, sharp = read_pair(pair, self.channels)
        return {**crop_pair(blur, sharp, self.crop_size), "name": pair.label}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        return self._skip(index, self._fetch)


class TensorPairSet(Dataset):
    """Evaluation pairs held in memory (e.g. a validation split blurred at setup).

    Shape:
        - item["blur"], item["sharp"]: :math:`(C, H, W)`; item["name"]: str
    """

    def __init__(
        self, blur: list[torch.Tensor], sharp: list[torch.Tensor], names: list[str]
    ) -> None:
        self.blur, self.sharp, self.names = blur, sharp, names

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        return {"blur": self.blur[index], "sharp": self.sharp[index], "name": self.names[index]}
