"""Real blur with ground truth from high-fps video frames (GoPro's recipe), split without leaks.

Averaging ``n`` consecutive 240-fps frames in linear light gives real motion blur; the middle
frame is its sharp ground truth (Nah et al. 2017, :func:`realblur_gan.camera.gopro_blur`). From
one set of frame folders this module makes every data condition the method is studied under,
each from its own window of frames so no frame serves two roles:

- ``sharp``: single frames, the sharp domain (blurred on the fly by ``synthetic_blur``, or, with
  ``train_pairs="real"``, paired with averages made inside the same window: the oracle setting);
- ``real_blur``: averages from a DISJOINT window, the unpaired real-blur domain;
- ``val``: (average, middle frame) pairs from a third window that is never trained on.

Windows are separated by ``gap`` unused frames. :func:`split_frames` is the pure planning step
(frame counts in, windows and averages out); :class:`FramesDataModule` renders the plan once into
a cache folder of plain images and hands those to :class:`BlurDataModule`, so batches keep the
project's vocabulary (``{"sharp", "blur_syn", "blur_real"}`` and ``{"blur", "sharp", "name"}``).

Layouts of ``frames_dir``: every folder that directly holds frames is one sequence (frames in
name order), so both one folder of frames and a folder of ``<seq>/`` folders (GoPro_Large_all,
your own videos exported with ``ffmpeg -i video.mp4 <seq>/%06d.png``) work. GoPro_Large's
*paired* release (``<seq>/blur`` + ``<seq>/sharp``) is refused: its frames are already averaged
or subsampled, not consecutive (use ``data=gopro`` for it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import zlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from realblur_gan.camera import gopro_blur
from realblur_gan.data.datamodule import BlurDataModule
from realblur_gan.data.io import ImageFolderError, list_images, read_image, write_image
from realblur_gan.errors import DataError
from realblur_gan.ownership import claim_cache
from realblur_gan.progress import progress_bar

log = logging.getLogger(__name__)

ROLES = ("sharp", "real_blur", "val")
SPLIT_MODES = ("frames", "sequences")
TRAIN_PAIRS = ("synthetic", "real")
# The later windows get more: the averages need whole n-frame runs, single sharp frames do not.
DEFAULT_FRACTIONS = {"sharp": 0.3, "real_blur": 0.35, "val": 0.35}
SplitBy = Literal["frames", "sequences"]
TrainPairs = Literal["synthetic", "real"]
# Bump when the cache's content or layout changes: old caches are then left alone, not reused.
CACHE_VERSION = 1
# GoPro_Large's paired release keeps these next to each other in every sequence.
_PAIRED_RELEASE = frozenset({"blur", "blur_gamma", "sharp"})


# --------------------------------------------------------------------------------------------------
# Planning (pure)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Frames ``start .. stop - 1`` of one sequence.

    Attributes:
        sequence: The sequence key (its folder relative to ``frames_dir``; "" for the root).
        start: First frame index (position in the sequence's sorted frame list).
        stop: One past the last frame index.
    """

    sequence: str
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Average:
    """One blurry image: the linear-light mean of frames ``start .. start + n - 1``.

    Its sharp ground truth is the middle frame, ``start + n // 2`` (the later of the two middle
    frames for even ``n``, as :func:`~realblur_gan.camera.gopro_blur` takes it).
    """

    sequence: str
    start: int
    n: int

    @property
    def stop(self) -> int:
        return self.start + self.n

    @property
    def middle(self) -> int:
        return self.start + self.n // 2


@dataclass
class FrameSplit:
    """Which frames go where.

    Attributes:
        windows: Role (``sharp``, ``real_blur``, ``val``) -> its windows, one per sequence.
        sharp: Training sharp frames as ``(sequence, index)``: every frame of the sharp windows.
        real_blur: Unpaired real-blur averages, inside the ``real_blur`` windows.
        paired: Averages inside the sharp windows, paired with their middle frames (the oracle
            training pairs); empty unless asked for.
        val: Validation averages, inside the ``val`` windows, paired with their middle frames.
    """

    windows: dict[str, list[Window]] = field(default_factory=dict)
    sharp: list[tuple[str, int]] = field(default_factory=list)
    real_blur: list[Average] = field(default_factory=list)
    paired: list[Average] = field(default_factory=list)
    val: list[Average] = field(default_factory=list)

    def frames_of(self, role: str) -> set[tuple[str, int]]:
        """Every ``(sequence, index)`` a role reads (windows' frames for ``sharp``)."""
        if role == "sharp":
            return set(self.sharp) | {(a.sequence, i) for a in self.paired for i in _span(a)}
        items = self.real_blur if role == "real_blur" else self.val
        return {(a.sequence, i) for a in items for i in _span(a)}

    def to_json(self) -> dict:
        return {
            "windows": {
                role: [[w.sequence, w.start, w.stop] for w in ws]
                for role, ws in self.windows.items()
            },
            "sharp": [list(s) for s in self.sharp],
            **{
                role: [[a.sequence, a.start, a.n] for a in getattr(self, role)]
                for role in ("real_blur", "paired", "val")
            },
        }


def _span(average: Average) -> range:
    return range(average.start, average.stop)


def _seeded(seed: int, *names: str) -> torch.Generator:
    """A generator for one (role, sequence): adding a sequence leaves the others' draws alone."""
    salt = zlib.crc32("/".join(names).encode())
    return torch.Generator().manual_seed(seed * 1_000_003 + salt)


def _averages(
    window: Window, n_frames: tuple[int, int], stride: int | None, generator: torch.Generator
) -> list[Average]:
    """Averages inside ``window``: one starting every ``stride`` frames, ``n`` drawn per average.

    ``stride=None`` packs them end to end, so no two share a frame. Near the window's end ``n``
    is capped at the frames left; an average shorter than ``n_frames[0]`` is not made.
    """
    low, high = n_frames
    out = []
    start = window.start
    while True:
        n = int(torch.randint(low, high + 1, (), generator=generator))
        n = min(n, window.stop - start)
        if n < low:
            return out
        out.append(Average(window.sequence, start, n))
        start += n if stride is None else stride


def _cut(length: int, fractions: Sequence[float], gap: int) -> list[tuple[int, int]] | None:
    """``len(fractions)`` consecutive ``(start, stop)`` windows with ``gap`` frames between them.

    Boundaries are rounded cumulative fractions of the frames left after the gaps, so the sizes
    add up exactly. None when the gaps alone use up the sequence.
    """
    usable = length - gap * (len(fractions) - 1)
    if usable < len(fractions):
        return None
    total = sum(fractions)
    bounds, acc = [0], 0.0
    for f in fractions:
        acc += f
        bounds.append(round(usable * acc / total))
    return [(bounds[k] + k * gap, bounds[k + 1] + k * gap) for k in range(len(fractions))]


def _check_options(
    fractions: Mapping[str, float],
    order: Sequence[str],
    n_frames: tuple[int, int],
    gap: int,
    train_stride: int,
    val_stride: int | None,
    split_by: str,
) -> None:
    if sorted(fractions) != sorted(ROLES) or any(float(v) <= 0 for v in fractions.values()):
        raise DataError(
            f"data.fractions must give a positive share to each of {list(ROLES)}, "
            f"got {dict(fractions)}"
        )
    if sorted(order) != sorted(ROLES):
        raise DataError(f"data.order must list {list(ROLES)} once each, got {list(order)}")
    low, high = n_frames
    if not 1 <= low <= high:
        raise DataError(f"data.n_frames must be [low, high] with 1 <= low <= high, got {n_frames}")
    if gap < 0:
        raise DataError(f"data.gap must be >= 0, got {gap}")
    if train_stride < 1 or (val_stride is not None and val_stride < 1):
        raise DataError("data.train_stride and data.val_stride must be >= 1 (val_stride: or null)")
    if split_by not in SPLIT_MODES:
        raise DataError(f"data.split_by must be one of {SPLIT_MODES}, got {split_by!r}")


def _window_needs(n_frames: tuple[int, int], paired: bool) -> dict[str, int]:
    """Smallest window per role: room for one average of the largest ``n`` (sharp: 1 frame)."""
    return {"sharp": n_frames[1] if paired else 1, "real_blur": n_frames[1], "val": n_frames[1]}


def min_sequence_length(
    fractions: Mapping[str, float],
    order: Sequence[str],
    n_frames: tuple[int, int],
    gap: int,
    paired: bool = False,
) -> int:
    """The fewest frames a sequence needs for these windows (``split_by="frames"``)."""
    needs = _window_needs(n_frames, paired)
    shares = [float(fractions[r]) for r in order]
    length = sum(needs.values()) + 2 * gap
    while True:
        cut = _cut(length, shares, gap)
        if cut and all(b - a >= needs[r] for r, (a, b) in zip(order, cut, strict=True)):
            return length
        length += 1


def split_frames(
    lengths: Mapping[str, int],
    n_frames: Sequence[int] = (7, 13),
    fractions: Mapping[str, float] | None = None,
    gap: int = 10,
    order: Sequence[str] = ROLES,
    train_stride: int = 1,
    val_stride: int | None = None,
    split_by: SplitBy = "frames",
    paired: bool = False,
    seed: int = 0,
) -> FrameSplit:
    """Plan disjoint sharp / real-blur / validation windows over frame sequences.

    ``split_by="frames"`` cuts every sequence into three windows in ``order`` (shares from
    ``fractions`` of the frames left after two gaps of ``gap`` frames), so each sequence feeds
    every role; ``split_by="sequences"`` gives each role whole sequences (a seeded draw, shares
    of the number of sequences), so validation scenes are never seen in training. Either way no
    frame index is in two roles. Sequences too short for the windows are left out with a
    warning; none long enough is an error.

    Args:
        lengths: Sequence key -> number of frames (keys in any order; sorted here).
        n_frames: ``[low, high]``: each average takes ``n`` consecutive frames, drawn uniformly.
        fractions: Share of each role, ``{"sharp": .., "real_blur": .., "val": ..}``
            (normalised); None: 0.3 / 0.35 / 0.35.
        gap: Unused frames between two windows of a sequence.
        order: Order of the windows in time (``split_by="frames"``).
        train_stride: Frames between the starts of two training averages (overlap is fine there:
            more real-blur samples).
        val_stride: Frames between validation starts; None: end to end, each frame in at most
            one validation pair (GoPro's protocol).
        split_by: "frames" or "sequences".
        paired: Also plan averages inside the sharp windows (oracle paired training).
        seed: Seed of the ``n`` draws (and of the sequence draw).

    Returns:
        The :class:`FrameSplit`.

    Raises:
        ValueError: Bad options, or no sequence long enough (one line: sizes and the fix).
    """
    fractions = dict(fractions or DEFAULT_FRACTIONS)
    low_high = (int(n_frames[0]), int(n_frames[1]))
    _check_options(fractions, order, low_high, gap, train_stride, val_stride, split_by)
    needs = _window_needs(low_high, paired)
    windows: dict[str, list[Window]] = {role: [] for role in ROLES}
    names = sorted(lengths)

    if split_by == "sequences":
        if len(names) < len(ROLES):
            raise DataError(
                f"split_by=sequences needs at least {len(ROLES)} sequences (one per role), got "
                f"{len(names)}; add sequences or set data.split_by=frames"
            )
        perm = torch.randperm(len(names), generator=_seeded(seed, "sequences")).tolist()
        shares = [float(fractions[r]) for r in order]
        # Every role gets at least one sequence: cut the shuffled list like frames, without gaps.
        cut = _cut(len(names), shares, 0)
        for role, (a, b) in zip(order, cut, strict=True):
            for i in sorted(perm[a:b]):
                name = names[i]
                if lengths[name] < needs[role]:
                    log.warning(
                        "%s: %d frames, fewer than the %d a %s sequence needs; left out",
                        name or ".",
                        lengths[name],
                        needs[role],
                        role,
                    )
                    continue
                windows[role].append(Window(name, 0, lengths[name]))
    else:
        shares = [float(fractions[r]) for r in order]
        need = min_sequence_length(fractions, order, low_high, gap, paired)
        for name in names:
            cut = _cut(lengths[name], shares, gap)
            # Each window checked, not just the length: rounding can shrink one window by a
            # frame when the sequence grows by one.
            if cut is None or any(
                b - a < needs[role] for role, (a, b) in zip(order, cut, strict=True)
            ):
                log.warning(
                    "%s: %d frames, fewer than the %d the windows need; left out",
                    name or ".",
                    lengths[name],
                    need,
                )
                continue
            for role, (a, b) in zip(order, cut, strict=True):
                windows[role].append(Window(name, a, b))
    if not all(windows.values()):
        if split_by == "frames":
            longest = max(lengths.values(), default=0)
            raise DataError(
                f"too few frames: the longest sequence has {longest}, the 3 windows (averages of "
                f"up to {low_high[1]} frames, gaps of {gap}) need {need}; add frames, or lower "
                "data.gap or data.n_frames, or change data.fractions"
            )
        missing = [role for role in ROLES if not windows[role]]
        raise DataError(
            f"no sequence is long enough for the {'/'.join(missing)} role(s) (see the warnings); "
            "add sequences, or lower data.n_frames, or set data.split_by=frames"
        )

    split = FrameSplit(windows=windows)
    for w in windows["sharp"]:
        split.sharp.extend((w.sequence, i) for i in range(w.start, w.stop))
        if paired:
            gen = _seeded(seed, "paired", w.sequence)
            split.paired.extend(_averages(w, low_high, train_stride, gen))
    for w in windows["real_blur"]:
        gen = _seeded(seed, "real_blur", w.sequence)
        split.real_blur.extend(_averages(w, low_high, train_stride, gen))
    for w in windows["val"]:
        split.val.extend(_averages(w, low_high, val_stride, _seeded(seed, "val", w.sequence)))
    return split


# --------------------------------------------------------------------------------------------------
# Frames on disk
# --------------------------------------------------------------------------------------------------


def find_sequences(root: str | Path) -> dict[str, list[Path]]:
    """Every folder under ``root`` that directly holds frames, as ``{key: sorted frames}``.

    The key is the folder relative to ``root`` ("" when ``root`` itself holds the frames).

    Raises:
        ImageFolderError: ``root`` is missing or holds no images, or it is GoPro_Large's paired
            release (one line naming it and the fix).
    """
    root = Path(root)
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in list_images(root):
        rel = path.parent.relative_to(root).as_posix()
        groups["" if rel == "." else rel].append(path)
    for key in groups:
        parent = Path(key).parent
        siblings = {Path(k).name.lower() for k in groups if k and Path(k).parent == parent}
        if key and {"blur", "sharp"} <= siblings and Path(key).name.lower() in _PAIRED_RELEASE:
            raise ImageFolderError(
                f"{root / parent}: has blur/ and sharp/ folders, GoPro_Large's paired release, "
                "whose frames are averaged or subsampled, not consecutive; use data=gopro for "
                "it, or point data.frames_dir at consecutive frames (GoPro_Large_all: <seq>/*.png)"
            )
    return {key: sorted(frames) for key, frames in sorted(groups.items())}


def downscale_image(image: torch.Tensor, factor: int) -> torch.Tensor:
    """Shrink by an integer factor with a box filter (each output pixel: a factor² block mean).

    A box filter is exact area averaging: no ringing, no aliasing, values stay in [0, 1]. Rows
    and columns past the last whole block are dropped.

    Shape:
        - image: :math:`(C, H, W)`
        - output: :math:`(C, \\lfloor H / f \\rfloor, \\lfloor W / f \\rfloor)`
    """
    if factor == 1:
        return image
    _, h, w = image.shape
    h, w = h - h % factor, w - w % factor
    return F.avg_pool2d(image[None, :, :h, :w], factor)[0]


def average_name(frames: Sequence[Path], average: Average) -> str:
    """File name of an average: its middle frame's name and ``n`` (``000262_n11.png``)."""
    return f"{frames[average.middle].stem}_n{average.n}.png"


@dataclass(frozen=True)
class _Job:
    """One output: frames ``start .. stop - 1`` of a sequence averaged into ``blur`` (when set),
    the middle frame written to ``sharp`` (when set)."""

    start: int
    stop: int
    blur: Path | None
    sharp: Path | None


def _jobs(
    split: FrameSplit, sequences: Mapping[str, Sequence[Path]], folder: Path
) -> dict[str, list[_Job]]:
    """The files the cache holds, grouped by sequence and sorted by first frame."""
    jobs: dict[str, list[_Job]] = defaultdict(list)
    # With paired averages the sharp images are their middle frames (paired/sharp/): the single
    # frames would go unread.
    for seq, i in [] if split.paired else split.sharp:
        frame = sequences[seq][i]
        jobs[seq].append(_Job(i, i + 1, None, folder / "sharp" / seq / f"{frame.stem}.png"))
    for part, items, with_sharp in (
        ("real_blur", split.real_blur, False),
        ("paired", split.paired, True),
        ("val", split.val, True),
    ):
        # real_blur/ holds images; paired/ and val/ hold blur/ + sharp/ twins (match_pairs).
        for a in items:
            name = average_name(sequences[a.sequence], a)
            if with_sharp:
                blur = folder / part / "blur" / a.sequence / name
                sharp = folder / part / "sharp" / a.sequence / name
            else:
                blur, sharp = folder / part / a.sequence / name, None
            jobs[a.sequence].append(_Job(a.start, a.stop, blur, sharp))
    for seq_jobs in jobs.values():
        seq_jobs.sort(key=lambda j: (j.start, j.stop))
    return jobs


def render_split(
    split: FrameSplit,
    sequences: Mapping[str, Sequence[Path]],
    folder: Path,
    downscale: int = 1,
    gamma: float = 2.2,
) -> int:
    """Write the split's images under ``folder``; files already there are kept (resume).

    Each frame is read once: jobs run in frame order and a frame is dropped from memory once no
    later job can need it.

    Returns:
        The number of images written.

    Raises:
        ImageReadError: A frame cannot be read.
        ValueError: Frames of one sequence differ in size.
    """
    written = 0
    by_sequence = _jobs(split, sequences, folder)
    # 20 s for 108 frames on a 2-core CPU; a full GoPro release takes far longer.
    bar = progress_bar(total=sum(map(len, by_sequence.values())), desc="frames cache", unit="img")
    for seq, jobs in by_sequence.items():
        frames = sequences[seq]
        loaded: dict[int, torch.Tensor] = {}
        size: tuple[int, ...] | None = None
        bits = 8
        for job in jobs:
            bar.update(1)
            targets = [p for p in (job.blur, job.sharp) if p is not None]
            if all(p.exists() for p in targets):
                continue
            for i in [i for i in loaded if i < job.start]:
                del loaded[i]
            for i in range(job.start, job.stop):
                if i in loaded:
                    continue
                image, info = read_image(frames[i], channels=3)
                if size is None:
                    size = tuple(image.shape)
                elif tuple(image.shape) != size:
                    raise DataError(
                        f"{frames[i]}: size {tuple(image.shape[1:])} differs from the "
                        f"sequence's other frames {size[1:]}; all frames of a sequence must match"
                    )
                # Averages hold finer steps than one frame: 16-bit sources stay 16-bit.
                bits = max(bits, 16 if info.bit_depth > 8 else 8)
                loaded[i] = downscale_image(image, downscale)
            stack = torch.stack([loaded[i] for i in range(job.start, job.stop)])
            blur, sharp = gopro_blur(stack, gamma=gamma)
            if job.blur is not None:
                write_image(job.blur, blur, bit_depth=bits)
                written += 1
            if job.sharp is not None:
                write_image(job.sharp, sharp, bit_depth=bits)
                written += 1
    bar.close()
    return written


def _fingerprint(sequences: Mapping[str, Sequence[Path]]) -> list:
    """Names, sizes and modification times of the frames: changed frames give a new cache."""
    out = []
    for seq, frames in sorted(sequences.items()):
        for path in frames:
            stat = path.stat()
            out.append([seq, path.name, stat.st_size, stat.st_mtime_ns])
    return out


def _role_count(split: FrameSplit, role: str, seq: str) -> str:
    if role == "sharp":
        paired = sum(a.sequence == seq for a in split.paired)
        frames = sum(s == seq for s, _ in split.sharp)
        return f"{frames} frames" + (f", {paired} paired averages" if split.paired else "")
    if role == "real_blur":
        return f"{sum(a.sequence == seq for a in split.real_blur)} averages"
    return f"{sum(a.sequence == seq for a in split.val)} pairs"


def describe_split(split: FrameSplit, sequences: Mapping[str, Sequence[Path]]) -> list[str]:
    """One line per sequence: which frames each role uses, by file name, in time order."""
    lines = []
    for seq in sorted({w.sequence for ws in split.windows.values() for w in ws}):
        frames = sequences[seq]
        used = sorted(
            (w.start, w.stop, role)
            for role, ws in split.windows.items()
            for w in ws
            if w.sequence == seq
        )
        parts = [
            f"{role} {frames[a].stem}-{frames[b - 1].stem} ({_role_count(split, role, seq)})"
            for a, b, role in used
        ]
        lines.append(f"{seq or '.'} [{len(frames)} frames]: " + "; ".join(parts))
    return lines


# --------------------------------------------------------------------------------------------------
# DataModule
# --------------------------------------------------------------------------------------------------


class FramesDataModule(BlurDataModule):
    """:class:`BlurDataModule` over real blur made from consecutive high-fps frames.

    The split (:func:`split_frames`) is rendered once into ``cache_dir/<name>-<hash>/``
    (``sharp/``, ``real_blur/``, ``paired/{blur,sharp}/``, ``val/{blur,sharp}/``, ``split.json``),
    keyed on the frames (names, sizes, times) and every option that changes an image, so a rerun
    or another stage reuses it and a changed option gets its own folder.

    Args:
        frames_dir: One folder of frames, or a folder of sequence folders of frames.
        cache_dir: Where rendered splits are kept.
        split_by: "frames" (every sequence cut into windows) or "sequences" (whole sequences
            per role).
        fractions: Share of each role: ``{"sharp", "real_blur", "val"}``.
        order: Order of the windows in time, e.g. ``[sharp, real_blur, val]``.
        gap: Unused frames between two windows.
        n_frames: ``[low, high]`` range of frames per average.
        train_stride: Frames between the starts of two training averages.
        val_stride: Frames between validation starts; None: end to end (no shared frames).
        gamma: Camera gamma of the linear-light average.
        downscale: Integer factor frames are shrunk by before averaging (2: 1280x720 -> 640x360).
        train_pairs: What ``blur_syn`` is: "synthetic" (``synthetic_blur`` on the fly) or "real"
            (averages of the sharp window paired with their middle frames: the oracle).
        synthetic_blur: Callable ``(image, generator) -> blurred`` (``train_pairs="synthetic"``).
        seed: Seed of the ``n`` draws, of the sequence draw and of the training stream.
        **kwargs: Passed to :class:`BlurDataModule` (``crop_size``, ``val_crop_size``,
            ``batch_size``, ``flip``, ``channels``, ...).

    Shape:
        - training batch: ``sharp``, ``blur_syn``, ``blur_real`` :math:`(B, C, S, S)`
        - validation batch: ``blur``, ``sharp`` :math:`(B, C, H, W)`; ``name``: list of str
          (``<sequence>/<middle frame>_n<n>.png``)
    """

    def __init__(
        self,
        frames_dir: str | Path,
        cache_dir: str | Path,
        split_by: SplitBy = "frames",
        fractions: Mapping[str, float] | None = None,
        order: Sequence[str] = ROLES,
        gap: int = 10,
        n_frames: Sequence[int] = (7, 13),
        train_stride: int = 1,
        val_stride: int | None = None,
        gamma: float = 2.2,
        downscale: int = 1,
        train_pairs: TrainPairs = "synthetic",
        synthetic_blur: Callable[..., torch.Tensor] | None = None,
        seed: int = 0,
        **kwargs,
    ) -> None:
        if train_pairs not in TRAIN_PAIRS:
            raise DataError(f"data.train_pairs must be one of {TRAIN_PAIRS}, got {train_pairs!r}")
        if int(downscale) != downscale or downscale < 1:
            raise DataError(f"data.downscale must be an integer >= 1, got {downscale}")
        if len(n_frames) != 2:
            raise DataError(f"data.n_frames must be [low, high], got {list(n_frames)}")
        self.frames_dir = Path(frames_dir)
        self.cache_dir = Path(cache_dir)
        self.plan = {
            "n_frames": (int(n_frames[0]), int(n_frames[1])),
            "fractions": {k: float(v) for k, v in (fractions or {}).items()} or None,
            "gap": int(gap),
            "order": tuple(order),
            "train_stride": int(train_stride),
            "val_stride": None if val_stride is None else int(val_stride),
            "split_by": split_by,
            "paired": train_pairs == "real",
            "seed": int(seed),
        }
        # Bad window options fail at instantiation, not after the frames are listed.
        _check_options(
            self.plan["fractions"] or DEFAULT_FRACTIONS,
            order,
            self.plan["n_frames"],
            self.plan["gap"],
            self.plan["train_stride"],
            self.plan["val_stride"],
            split_by,
        )
        self.gamma = float(gamma)
        self.downscale = int(downscale)
        self.train_pairs = train_pairs
        self.split: FrameSplit | None = None
        self.cache_folder: Path | None = None
        # The cache folder is only known once the frames are listed (setup): these placeholders
        # satisfy BlurDataModule's option checks and are replaced before its setup runs.
        source = {"pairs_dir": frames_dir} if self.plan["paired"] else {"sharp_dir": frames_dir}
        super().__init__(
            real_blur_dir=frames_dir,
            val_dir=frames_dir,
            synthetic_blur=None if self.plan["paired"] else synthetic_blur,
            seed=seed,
            pairs_format="folders",
            val_format="folders",
            pair_folders=("blur", "sharp"),
            **source,
            **kwargs,
        )

    def _sequences(self) -> dict[str, list[Path]]:
        try:
            return find_sequences(self.frames_dir)
        except ImageFolderError as err:
            raise ImageFolderError(
                f"data.frames_dir: {err} (set data.frames_dir=... or REALBLUR_GAN_FRAMES)"
            ) from None

    def _plan(self, sequences: Mapping[str, Sequence[Path]]) -> FrameSplit:
        lengths = {seq: len(frames) for seq, frames in sequences.items()}
        try:
            return split_frames(lengths, **self.plan)
        except ValueError as err:
            raise DataError(f"data.frames_dir={self.frames_dir}: {err}") from None

    def prepare_frames(self) -> Path:
        """Plan the split and render it into the cache (once); returns the cache folder."""
        sequences = self._sequences()
        split = self._plan(sequences)
        spec = {
            "version": CACHE_VERSION,
            "frames": _fingerprint(sequences),
            "split": split.to_json(),
            "downscale": self.downscale,
            "gamma": self.gamma,
        }
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
        final = self.cache_dir / f"{self.frames_dir.name or 'frames'}-{digest}"
        self.split, self.cache_folder = split, final
        for line in describe_split(split, sequences):
            log.info("frames split: %s", line)
        if (final / "DONE").exists():
            return final
        # One process renders; another that needs the same cache meanwhile waits and reuses it.
        with claim_cache(final, "paths.data_dir (or REALBLUR_GAN_DATA)"):
            if not (final / "DONE").exists():
                try:
                    self._render(final, split, sequences)
                except OSError as err:
                    raise DataError(
                        f"{final}: cannot write the frames cache ({err.strerror or err}); free "
                        "disk space or set paths.data_dir (or REALBLUR_GAN_DATA) to another folder"
                    ) from None
        return final

    def _render(
        self, final: Path, split: FrameSplit, sequences: Mapping[str, Sequence[Path]]
    ) -> None:
        # Rendered under a temporary name and renamed: a cache folder is complete or absent. An
        # interrupted render keeps its finished files (same hash, same content) and resumes.
        tmp = final.with_name(final.name + ".partial")
        log.info("rendering real blur from %s into %s (first use only)", self.frames_dir, final)
        written = render_split(split, sequences, tmp, self.downscale, self.gamma)
        named = {
            "frames_dir": str(self.frames_dir),
            "downscale": self.downscale,
            "gamma": self.gamma,
            "summary": describe_split(split, sequences),
            "files": {seq: [p.name for p in frames] for seq, frames in sorted(sequences.items())},
            **split.to_json(),
        }
        (tmp / "split.json").write_text(json.dumps(named, indent=1) + "\n")
        (tmp / "DONE").write_text(f"realblur-gan frames cache v{CACHE_VERSION}\n")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        log.info("wrote %d images to %s", written, final)

    def prepare_data(self) -> None:
        self.prepare_frames()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        # Cheap when cached; covers callers that skip prepare_data (and other DDP ranks).
        folder = self.prepare_frames()
        self.real_blur_dir = folder / "real_blur"
        self.val_dir = folder / "val"
        if self.plan["paired"]:
            self.pairs_dir = folder / "paired"
        else:
            self.sharp_dir = folder / "sharp"
        super().setup(stage)
