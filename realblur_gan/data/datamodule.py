"""The Lightning DataModule for the three sources the method needs.

Sources of the training items ``{"sharp", "blur_syn", "blur_real"}``:

- ``sharp`` + ``blur_syn``: either sharp photos (``sharp_dir``) blurred on the fly by
  ``synthetic_blur``, or pre-made pairs (``pairs_dir``): paired folders (``pairs_format=folders``,
  ``blur/x.png`` + ``sharp/x.png``, also nested as GoPro's ``<seq>/blur`` + ``<seq>/sharp``) or
  pix2pix AB images (``pairs_format=ab``, blur on the ``ab_blur_side`` half, as written by
  ``python -m data_tools.ab concat BLUR SHARP OUT``);
- ``blur_real``: real blurry photos (``real_blur_dir``), drawn independently of the sharp ones;
- optionally, real pairs (``real_pairs_dir``: e.g. GoPro-style frame averages and their middle
  frames) standing in for a ``real_pairs_ratio`` share of the on-the-fly synthetic pairs.

``sharp_dir``, ``real_blur_dir`` and ``real_pairs_dir`` each take one folder or a list of them
(diverse content from several sets: ``data.sharp_dir=[photos/a,photos/b]``).

Validation items ``{"blur", "sharp", "name"}`` come from ``val_dir`` (same formats), or from a
seeded held-out share of the training source: held-out sharp photos blurred once with
``val_blur``, or held-out pairs as they are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from realblur_gan.data.datasets import (
    AB_SIDES,
    SMALL_IMAGE_MODES,
    BadItemError,
    PairedEvalSet,
    PairFile,
    SmallImages,
    TensorPairSet,
    UnpairedTrainSet,
    crop_pair,
    load,
    probe_image,
)
from realblur_gan.data.decoded import DecodedCache
from realblur_gan.data.io import ImageFolderError, ImageReadError, list_images
from realblur_gan.data.resumable import EpochKeySampler, KeyedDataset, ResumableDataLoader
from realblur_gan.errors import ArgumentError, DataError, check_range

log = logging.getLogger(__name__)

PAIR_FORMATS = ("folders", "ab")
# A setup report lists this many bad files; the rest are counted.
_MAX_LISTED = 20


def match_pairs(
    root: Path, blur_folder: str = "blur", sharp_folder: str = "sharp"
) -> list[PairFile]:
    """Pair every file under a ``blur_folder`` folder with its twin under ``sharp_folder``.

    The twin has the same path with the blur folder's name swapped (extension may differ), so
    ``root/blur/a/x.png`` pairs with ``root/sharp/a/x.jpg`` and GoPro's
    ``root/<seq>/blur/x.png`` with ``root/<seq>/sharp/x.png``. Files in neither folder (GoPro's
    ``blur_gamma/``, a README) are ignored.

    Returns:
        Pairs sorted by name; the name is the relative path without the blur folder.

    Raises:
        ImageFolderError: No pairs, or a file without its twin (one line naming it).
    """
    # Folder names match case-insensitively: datasets spell them Blur/, GT/, sharp/...
    blur_folder, sharp_folder = blur_folder.lower(), sharp_folder.lower()
    roles: dict[str, dict[tuple[str, ...], Path]] = {blur_folder: {}, sharp_folder: {}}
    ignored = 0
    for path in list_images(root):
        parts = path.relative_to(root).with_suffix("").parts
        # The first folder named like a role decides: a file name itself never does.
        hit = next(((i, p.lower()) for i, p in enumerate(parts[:-1]) if p.lower() in roles), None)
        if hit is None:
            ignored += 1
            continue
        i, role = hit
        roles[role][(*parts[:i], "*", *parts[i + 1 :])] = path
    blur, sharp = roles[blur_folder], roles[sharp_folder]
    if not blur or not sharp:
        raise ImageFolderError(
            f"{root}: no images in a '{blur_folder}/' and a '{sharp_folder}/' folder; "
            f"paired folders need {root}/{blur_folder}/x.png + {root}/{sharp_folder}/x.png "
            "(or set the pair_folders / pairs_format options)"
        )
    lonely = sorted(blur.keys() ^ sharp.keys())
    if lonely:
        # Every lonely file (the first _MAX_LISTED, then a count), not just the first one.
        lines = [
            f"{blur.get(k) or sharp[k]}: has no partner of the same name in the "
            f"'{sharp_folder if k in blur else blur_folder}' folder"
            for k in lonely[:_MAX_LISTED]
        ]
        if len(lonely) > _MAX_LISTED:
            lines.append(f"... and {len(lonely) - _MAX_LISTED} more")
        raise ImageFolderError(
            f"{lines[0]} ({len(lonely)} such files); add the partners or remove these files"
            + "".join(f"\n  {line}" for line in lines[1:])
        )
    if ignored:
        log.info(
            "%s: %d images outside %s/ and %s/ ignored", root, ignored, blur_folder, sharp_folder
        )
    return [
        PairFile(blur[k], sharp[k], "/".join(p for p in k if p != "*") + blur[k].suffix)
        for k in sorted(blur)
    ]


def ab_pairs(root: Path, blur_side: str = "left") -> list[PairFile]:
    """Every image under ``root`` as a pix2pix AB pair with the blur on ``blur_side``."""
    return [
        PairFile(path, None, path.relative_to(root).as_posix(), blur_side)
        for path in list_images(root)
    ]


Folders = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]


def as_folders(value: Folders | None) -> Path | list[Path] | None:
    """One folder as a ``Path``, several (a list, also Hydra's) as a list of ``Path``."""
    if value is None:
        return None
    if isinstance(value, str | os.PathLike):
        return Path(value)
    return [Path(v) for v in value]


def _each(folders: Path | list[Path]) -> list[Path]:
    return folders if isinstance(folders, list) else [folders]


def find_images(folders: Path | list[Path], option: str) -> list[Path]:
    """:func:`list_images` of one folder or several in turn, an error prefixed with the config
    option that named the folder."""
    found: list[Path] = []
    for folder in _each(folders):
        try:
            found += list_images(folder)
        except ImageFolderError as err:
            raise ImageFolderError(f"data.{option}: {err}") from None
    return found


def relative_name(path: Path, folders: Path | list[Path]) -> str:
    """``path`` relative to the folder of ``folders`` that holds it (its name in tables)."""
    for folder in _each(folders):
        if path.is_relative_to(folder):
            name = path.relative_to(folder).as_posix()
            return name if isinstance(folders, Path) else f"{folder.name}/{name}"
    return path.name


def check_files(
    paths: Sequence[Path], verify: bool = False
) -> tuple[dict[Path, tuple[int, int]], dict[Path, str]]:
    """Read the header of every file: ``({path: (H, W)}, {bad path: one-line reason})``.

    ``verify`` decodes every image in full (see :func:`probe_image`).
    """
    sizes: dict[Path, tuple[int, int]] = {}
    bad: dict[Path, str] = {}
    for path in paths:
        try:
            sizes[path] = probe_image(path, verify)
        except ImageReadError as err:
            bad[path] = str(err)
    return sizes, bad


def check_pairs(
    pairs: Sequence[PairFile], verify: bool = False
) -> tuple[list[PairFile], dict[Path, str], dict[Path, tuple[int, int]]]:
    """Check the headers of pairs: ``(good pairs, {bad file: reason}, {file: (H, W)})``.

    A pair is bad when a file is unreadable, its two sizes differ, or an AB image has an odd
    width.
    """
    sizes, bad = check_files([f for p in pairs for f in p.files], verify)
    good = []
    for pair in pairs:
        if any(f in bad for f in pair.files):
            continue
        h, w = sizes[pair.blur]
        if pair.sharp is None:
            if w % 2:
                bad[pair.blur] = f"{pair.blur}: odd width {w}, not an AB image of equal halves"
                continue
            w //= 2
        elif sizes[pair.sharp] != (h, w):
            bad[pair.blur] = (
                f"{pair.blur}: size {(h, w)} differs from its sharp partner {pair.sharp} "
                f"{sizes[pair.sharp]}"
            )
            continue
        good.append(pair)
    return good, bad, sizes


def report_bad(bad: dict[Path, str], what: str, fix: str) -> None:
    """Raise one error listing every bad file (the first ``_MAX_LISTED``, then a count).

    Raises:
        ImageFolderError: When ``bad`` is not empty (a ``ValueError`` and a ``UserError``).
    """
    if not bad:
        return
    lines = [bad[p] for p in sorted(bad)[:_MAX_LISTED]]
    more = len(bad) - len(lines)
    if more:
        lines.append(f"... and {more} more")
    raise ImageFolderError(f"{len(bad)} bad {what}; {fix}:\n  " + "\n  ".join(lines))


class BlurDataModule(L.LightningDataModule):
    """Sharp photos or pre-made pairs + unpaired real-blur photos + a paired validation set.

    Args:
        sharp_dir: Sharp photos (a folder or a list of folders), blurred on the fly by
            ``synthetic_blur``; None when ``pairs_dir`` gives the synthetic pairs.
        real_blur_dir: Real blurry photos, NOT paired with the sharp ones (a folder or a list;
            required).
        val_dir: Paired validation data (format ``val_format``); None holds out
            ``val_fraction`` of the training source (sharp photos are blurred with ``val_blur``).
        pairs_dir: Pre-made synthetic pairs (format ``pairs_format``) instead of ``sharp_dir``.
        synthetic_blur: Callable ``(image, generator) -> blurred`` for on-the-fly pairs.
        val_blur: Callable blurring held-out sharp photos when ``val_dir`` is None.
        val_fraction: Share of the training source held out when ``val_dir`` is None.
        crop_size: Training crop side.
        batch_size: Training batch size.
        val_batch_size: Validation batch size (1 when images differ in size).
        val_crop_size: Centre crop for validation images, or None for whole images.
        channels: 1 (gray) or 3 (RGB).
        num_workers: DataLoader workers.
        seed: Seed of the held-out split and its blur.
        pairs_format: "folders" (``blur/`` + ``sharp/`` twins) or "ab" (side-by-side images).
        val_format: Format of ``val_dir``, as ``pairs_format``.
        pair_folders: Names of the blur and the sharp folder of paired folders (GoPro's gamma
            blur: ``[blur_gamma, sharp]``; RealBlur: ``[blur, gt]``).
        ab_blur_side: Half of an AB image that holds the blurry image: "left" (as
            ``data_tools.ab concat BLUR SHARP`` writes) or "right".
        resize: Resize training images so the shorter side is this many pixels before the crop
            (the original reproduction: 1200, with 1024 crops); None keeps their size.
        flip: Random horizontal flips of training crops (shared by the two images of a pair).
        rotate: Random quarter turns of training crops (shared likewise).
        small_images: Training images smaller than the crop: "pad" (reflect) or "skip".
        validate_files: Decode every training file in full at setup and report all bad ones
            in one error (otherwise a bad file is skipped with a warning when met).
        timeout: Seconds a worker may take for one batch before the loader fails instead of
            hanging (workers > 0 only).
        pin_memory: Page-locked batches, for faster copies to a GPU.
        cache_images: Keep decoded training images in memory (small datasets, e.g. the demo).
        real_pairs_dir: Real blurry/sharp pairs (paired folders as ``pair_folders`` names them,
            a folder or a list) that stand in for ``real_pairs_ratio`` of the synthetic pairs.
        real_pairs_ratio: Share of the training items whose ``blur_syn``/``sharp`` come from a
            random real pair instead of the item's synthetic pair.
        decoded_cache: Folder where each training photo is decoded once and from which crops
            are read (:class:`~realblur_gan.data.decoded.DecodedCache`; large photos); None
            decodes every photo for every crop. ``cache_images`` (in memory) takes precedence.

    Shape:
        - training batch: ``sharp``, ``blur_syn``, ``blur_real`` :math:`(B, C, S, S)`
        - validation batch: ``blur``, ``sharp`` :math:`(B, C, H, W)`; ``name``: list of str
    """

    def __init__(
        self,
        sharp_dir: str | Path | None = None,
        real_blur_dir: str | Path | None = None,
        val_dir: str | Path | None = None,
        pairs_dir: str | Path | None = None,
        synthetic_blur: Callable[..., torch.Tensor] | None = None,
        val_blur: Callable[..., torch.Tensor] | None = None,
        val_fraction: float = 0.05,
        crop_size: int = 256,
        batch_size: int = 4,
        val_batch_size: int = 1,
        val_crop_size: int | None = 256,
        channels: int = 3,
        num_workers: int = 2,
        seed: int = 0,
        pairs_format: str = "folders",
        val_format: str = "folders",
        pair_folders: Sequence[str] = ("blur", "sharp"),
        ab_blur_side: str = "left",
        resize: int | None = None,
        flip: bool = True,
        rotate: bool = True,
        small_images: SmallImages = "pad",
        validate_files: bool = False,
        timeout: float = 120.0,
        pin_memory: bool = False,
        cache_images: bool = False,
        real_pairs_dir: Folders | None = None,
        real_pairs_ratio: float = 0.0,
        decoded_cache: str | Path | None = None,
    ) -> None:
        super().__init__()
        # Option errors surface here, when Hydra instantiates the module, not epochs later.
        if real_blur_dir is None:
            raise DataError("data.real_blur_dir is required: a folder of real blurry photos")
        if (sharp_dir is None) == (pairs_dir is None):
            raise DataError(
                "set exactly one of data.sharp_dir (pairs blurred on the fly) and data.pairs_dir "
                "(pre-made pairs); e.g. data=folders or data=pairs"
            )
        if sharp_dir is not None and synthetic_blur is None:
            raise DataError("data.sharp_dir needs data.synthetic_blur to make the pairs")
        for option, value, allowed in (
            ("pairs_format", pairs_format, PAIR_FORMATS),
            ("val_format", val_format, PAIR_FORMATS),
            ("ab_blur_side", ab_blur_side, AB_SIDES),
            ("small_images", small_images, SMALL_IMAGE_MODES),
        ):
            if value not in allowed:
                raise DataError(f"data.{option} must be one of {allowed}, got {value!r}")
        if len(pair_folders) != 2 or pair_folders[0].lower() == pair_folders[1].lower():
            raise DataError(f"data.pair_folders must name two folders, got {list(pair_folders)}")
        # The one check of each bound: a config reaches it through validate_config, which builds
        # the data module and names the key (`data.batch_size=0: must be an integer >= 1`).
        for argument, value, bounds in (
            ("batch_size", batch_size, {"low": 1, "integer": True}),
            ("val_batch_size", val_batch_size, {"low": 1, "integer": True}),
            ("crop_size", crop_size, {"low": 1, "integer": True}),
            ("val_crop_size", val_crop_size, {"low": 1, "integer": True, "optional": True}),
            ("resize", resize, {"low": 1, "integer": True, "optional": True}),
            ("num_workers", num_workers, {"low": 0, "integer": True}),
            (
                "val_fraction",
                val_fraction,
                {"low": 0, "high": 1, "low_open": True, "high_open": True},
            ),
            ("real_pairs_ratio", real_pairs_ratio, {"low": 0, "high": 1}),
            ("timeout", timeout, {"low": 0, "low_open": True}),
        ):
            check_range(argument, value, **bounds)
        if resize is not None and resize < crop_size:
            raise ArgumentError(
                "resize", resize, f"must be at least crop_size ({crop_size}) or null"
            )
        if real_pairs_ratio > 0.0 and real_pairs_dir is None:
            raise DataError("data.real_pairs_ratio > 0 needs data.real_pairs_dir (paired folders)")
        self.sharp_dir = as_folders(sharp_dir)
        self.real_blur_dir = as_folders(real_blur_dir)
        self.real_pairs_dir = as_folders(real_pairs_dir)
        self.real_pairs_ratio = float(real_pairs_ratio)
        self.val_dir = None if val_dir is None else Path(val_dir)
        self.pairs_dir = None if pairs_dir is None else Path(pairs_dir)
        self.synthetic_blur = synthetic_blur
        self.val_blur = val_blur
        self.val_fraction = val_fraction
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size
        self.val_crop_size = val_crop_size
        self.channels = channels
        self.num_workers = num_workers
        self.seed = seed
        self.pairs_format = pairs_format
        self.val_format = val_format
        self.pair_folders = (str(pair_folders[0]), str(pair_folders[1]))
        self.ab_blur_side = ab_blur_side
        self.cache_images = cache_images
        self.decoded_cache = None if decoded_cache is None else DecodedCache(decoded_cache)
        self._synthetic_pairs = True
        self.resize = resize
        self.flip = flip
        self.rotate = rotate
        self.small_images = small_images
        self.validate_files = validate_files
        self.timeout = timeout
        self.pin_memory = pin_memory
        self.train_set: UnpairedTrainSet | None = None
        self.val_set: Dataset | None = None

    # ----------------------------------------------------------------------------------------------
    # Setup
    # ----------------------------------------------------------------------------------------------

    def _pairs(self, roots: Path | list[Path], fmt: str, option: str) -> list[PairFile]:
        pairs: list[PairFile] = []
        for root in _each(roots):
            try:
                if fmt == "ab":
                    pairs += ab_pairs(root, self.ab_blur_side)
                else:
                    pairs += match_pairs(root, *self.pair_folders)
            except ImageFolderError as err:
                raise ImageFolderError(f"data.{option}: {err}") from None
        return pairs

    @property
    def synthetic_pairs(self) -> bool:
        """Whether training batches carry ``blur_syn`` (on-the-fly pairs only; pre-made pairs
        are read either way). The runner turns it off for a stage that never reads them."""
        return self._synthetic_pairs

    @synthetic_pairs.setter
    def synthetic_pairs(self, value: bool) -> None:
        self._synthetic_pairs = bool(value)
        if self.train_set is not None:
            self.train_set.synthetic = self._synthetic_pairs

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        real = find_images(self.real_blur_dir, "real_blur_dir")
        sharp: list[Path] | None = None
        pairs: list[PairFile] | None = None
        if self.pairs_dir is not None:
            pairs = self._pairs(self.pairs_dir, self.pairs_format, "pairs_dir")
        else:
            sharp = find_images(self.sharp_dir, "sharp_dir")
        if self.validate_files or self.small_images == "skip":
            sharp, pairs, real = self._checked(sharp, pairs, real)

        if self.val_dir is not None:
            self.val_set = self._val_from_dir()
        elif pairs is not None:
            pairs, self.val_set = self._split_pairs(pairs)
        else:
            sharp, self.val_set = self._split_sharp(sharp)

        self.train_set = UnpairedTrainSet(
            sharp,
            real,
            crop_size=self.crop_size,
            synthetic_blur=self.synthetic_blur,
            pairs=pairs,
            channels=self.channels,
            flip=self.flip,
            rotate=self.rotate,
            resize=self.resize,
            small_images=self.small_images,
            cache=self.cache_images,
            real_pairs=(
                None
                if self.real_pairs_dir is None
                else self._pairs(self.real_pairs_dir, "folders", "real_pairs_dir")
            ),
            real_pairs_ratio=self.real_pairs_ratio,
            decoded=self.decoded_cache,
        )
        self.train_set.synthetic = self._synthetic_pairs
        if len(self.train_set) < self.batch_size:
            raise DataError(
                f"only {len(self.train_set)} training items, fewer than data.batch_size="
                f"{self.batch_size} (the last partial batch is dropped); add images or lower it"
            )
        log.info(
            "data: %d training %s, %d real blurry photos, %d validation pairs",
            len(self.train_set),
            "pairs" if pairs is not None else "sharp photos",
            len(real),
            len(self.val_set),
        )

    def _checked(
        self, sharp: list[Path] | None, pairs: list[PairFile] | None, real: list[Path]
    ) -> tuple[list[Path] | None, list[PairFile] | None, list[Path]]:
        """File pass (a full decode with ``validate_files``): all unreadable files in one error;
        small images dropped when skipped."""
        fix = (
            "delete or re-export them (`python -m data_tools.verify FOLDER` checks a folder), "
            "or set data.validate_files=false to skip them with a warning while training"
        )
        # Resizing makes every image at least the crop, so nothing is small then.
        min_side = self.crop_size if self.small_images == "skip" and self.resize is None else 1
        small: list[str] = []
        bad: dict[Path, str] = {}
        if pairs is not None:
            pairs, bad, sizes = check_pairs(pairs, verify=self.validate_files)
            too_small = {p for p in pairs if min(self._pair_size(p, sizes)) < min_side}
            small += [str(p.blur) for p in pairs if p in too_small]
            pairs = [p for p in pairs if p not in too_small]
        else:
            sharp, bad_sharp, small_sharp = self._check_paths(sharp, min_side)
            bad.update(bad_sharp)
            small += small_sharp
        real, bad_real, small_real = self._check_paths(real, min_side)
        bad.update(bad_real)
        small += small_real
        if self.validate_files:
            report_bad(bad, "training files", fix)
        else:
            for reason in bad.values():
                log.warning("%s [skipped]", reason)
        if small:
            log.info(
                "small_images=skip: %d images smaller than the %d px crop left out (e.g. %s)",
                len(small),
                self.crop_size,
                small[0],
            )
        if (pairs is not None and not pairs) or (pairs is None and not sharp) or not real:
            raise DataError(
                f"no usable training images left after the file check ({len(small)} too small, "
                f"{len(bad)} unreadable); lower data.crop_size or set data.small_images=pad"
            )
        return sharp, pairs, real

    @staticmethod
    def _pair_size(pair: PairFile, sizes: dict[Path, tuple[int, int]]) -> tuple[int, int]:
        h, w = sizes[pair.blur]
        return (h, w // 2) if pair.sharp is None else (h, w)

    def _check_paths(
        self, paths: list[Path], min_side: int
    ) -> tuple[list[Path], dict[Path, str], list[str]]:
        sizes, bad = check_files(paths, verify=self.validate_files)
        small = [str(p) for p in paths if p in sizes and min(sizes[p]) < min_side]
        good = [p for p in paths if p in sizes and min(sizes[p]) >= min_side]
        return good, bad, small

    def _eval_set(self, pairs: list[PairFile], what: str) -> PairedEvalSet:
        """Evaluation pairs, every header checked first: the metrics are only as good as they."""
        good, bad, _ = check_pairs(pairs, verify=self.validate_files)
        report_bad(bad, f"{what}s", "fix or delete them; the validation metrics need every pair")
        return PairedEvalSet(good, channels=self.channels, crop_size=self.val_crop_size)

    def _val_from_dir(self) -> PairedEvalSet:
        return self._eval_set(
            self._pairs(self.val_dir, self.val_format, "val_dir"), "validation pair"
        )

    def _hold_out(
        self, items: list, root: Path, accept: Callable[[object], object]
    ) -> tuple[list, list]:
        """A seeded held-out share of ``items``: ``(training items, accept(held-out item)...)``.

        Candidates come in a seeded random order; one that ``accept`` rejects (unreadable, or a
        pair of unequal sizes) is passed over with a warning and the next one takes its
        place, so one bad file neither shrinks the split nor fails the run. The rejected file
        stays in the training list, where it is skipped (or padded) like any other.
        """
        n_val = max(1, round(self.val_fraction * len(items)))
        if n_val >= len(items):
            raise DataError(
                f"{root}: {len(items)} training items are too few to hold out a validation "
                "split; add images or set data.val_dir"
            )
        order = torch.randperm(len(items), generator=torch.Generator().manual_seed(self.seed))
        taken: set[int] = set()
        held_out = []
        for index in order.tolist():
            if len(held_out) == n_val:
                break
            try:
                held_out.append(accept(items[index]))
            except (ImageReadError, BadItemError) as err:
                log.warning("%s [not used for the held-out validation split]", err)
                continue
            taken.add(index)
        if not held_out:
            raise DataError(f"{root}: no image could be held out for validation; see warnings")
        return [p for i, p in enumerate(items) if i not in taken], held_out

    def _checked_pair(self, pair: PairFile) -> PairFile:
        """``pair`` when its headers are good for validation, else :class:`BadItemError`."""
        good, bad, _ = check_pairs([pair], verify=self.validate_files)
        if not good:
            raise BadItemError(next(iter(bad.values())))
        return pair

    def _split_pairs(self, pairs: list[PairFile]) -> tuple[list[PairFile], PairedEvalSet]:
        train, held_out = self._hold_out(pairs, self.pairs_dir, self._checked_pair)
        return train, PairedEvalSet(held_out, self.channels, crop_size=self.val_crop_size)

    def _split_sharp(self, paths: list[Path]) -> tuple[list[Path], TensorPairSet]:
        """Hold out sharp photos and blur them once with ``val_blur`` (seeded), in memory."""
        if self.val_blur is None:
            raise DataError(
                "data.val_dir is null: set data.val_blur (e.g. realblur_gan.camera.RealisticBlur) "
                "to blur the held-out sharp photos, or give a paired data.val_dir"
            )
        gen = torch.Generator().manual_seed(self.seed + 1)

        def accept(path: Path) -> tuple[torch.Tensor, torch.Tensor, str]:
            image = load(path, self.channels)
            sharp = crop_pair(image, image, self.val_crop_size)["sharp"]
            blur = self.val_blur(sharp, generator=gen).clamp(0.0, 1.0)
            return blur, sharp, relative_name(path, self.sharp_dir)

        train, held_out = self._hold_out(paths, self.sharp_dir, accept)
        blur, sharp, names = (list(x) for x in zip(*held_out, strict=True))
        return train, TensorPairSet(blur, sharp, names)

    # ----------------------------------------------------------------------------------------------
    # Loaders
    # ----------------------------------------------------------------------------------------------

    def _loader(self, dataset: Dataset, batch_size: int, train: bool) -> DataLoader:
        workers = self.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=workers,
            persistent_workers=workers > 0,
            # A stuck read (network drive, dead worker) fails the run instead of hanging it.
            timeout=self.timeout if workers > 0 else 0.0,
            pin_memory=self.pin_memory,
            # Each new iterator draws a base seed from this generator. From the global stream
            # instead, a resumed run (whose persistent workers start anew) would draw once more
            # than an uninterrupted one and shift the model's noise from then on.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        # Keyed items + a seeded per-epoch order + a loader whose position is checkpointed:
        # a run resumed mid-epoch sees exactly the batches an uninterrupted run would.
        workers = self.num_workers
        sampler = EpochKeySampler(len(self.train_set), seed=self.seed, shuffle=True)
        # Lightning builds the loader's first iterator (workers prefetch at once) before it sets
        # the epoch on the sampler. A run resumed from an epoch-end checkpoint restores no
        # loader state, so without this its first epoch would replay epoch 0's order.
        sampler.set_epoch(self._start_epoch())
        return ResumableDataLoader(
            KeyedDataset(self.train_set, self.seed),
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=True,
            num_workers=workers,
            persistent_workers=workers > 0,
            timeout=self.timeout if workers > 0 else 0.0,
            pin_memory=self.pin_memory,
            progress=self._train_progress,
            # Its own generator: creating an iterator draws a worker base seed, which must not
            # come from the global stream that checkpoints restore (the model's noise).
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _start_epoch(self) -> int:
        """The epoch the Trainer trains next (0 when none is attached or none restored)."""
        trainer = self.trainer
        if trainer is None:
            return 0
        return int(trainer.fit_loop.epoch_progress.current.processed)

    def _train_progress(self) -> tuple[int, int]:
        """(epoch, training batches finished in it), read off the Trainer for checkpoints."""
        trainer = self.trainer
        if trainer is None:
            return 0, 0
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return trainer.current_epoch, done

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_batch_size, train=False)
