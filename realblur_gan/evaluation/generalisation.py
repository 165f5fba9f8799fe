"""The generalisation benchmark: does a deblurrer help on blur and content it never trained on?

Three parts, none of which a model of this project trains on:

- ``gopro``: real blur with ground truth from other scenes: a folder of ``blur/`` + ``sharp/``
  pairs (GoPro frame averages of scenes the training frames do not show), whole frames at their
  native size;
- ``synthetic``: held-out photos (by name, e.g. CBSD68) at their native size, blurred once,
  seeded, through the realistic camera (:func:`held_out_camera`: shake kernels of 5 to 65 px in
  linear light, white balance, Bayer mosaic, sensor noise, JPEG);
- ``real``: real blurry photos with no ground truth: a no-reference blur score
  (:func:`blur_score`) of input and output, and a side-by-side grid (input | model | blind MAP)
  of a few crops.

Every image with ground truth is also checked for colour: blur barely moves an image's channel
means, so a deblurrer must not either (:func:`colour_kept`). :func:`run_benchmark` scores one
restoration function on every part; ``scripts/bench_generalise.py`` is its command line.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from realblur_gan.data.io import list_images, read_image, to_channels, write_image
from realblur_gan.evaluation.metrics import psnr, ssim

logger = logging.getLogger(__name__)

__all__ = [
    "PARTS",
    "BenchmarkResult",
    "blur_score",
    "colour_kept",
    "held_out_camera",
    "held_out_pairs",
    "run_benchmark",
]

PARTS = ("gopro", "synthetic", "real")
# How far a restored image's channel mean may sit beyond the blurry input's distance from the
# sharp image's (on [0, 1]), and how far it may move from the input's mean without ground truth.
COLOUR_TOLERANCE = 0.002
COLOUR_TOLERANCE_NO_GT = 0.01
# The synthetic part's camera, by version: a new version re-renders the cached pairs.
_CAMERA_VERSION = 1

Restore = Callable[[Tensor], Tensor]


def held_out_camera() -> Callable[..., Tensor]:
    """The realistic camera the synthetic part blurs its photos with.

    Camera shake of 5 to 65 px (trajectory kernels of every intensity) in linear light, inverse
    white balance, an RGGB mosaic, Poisson-Gaussian noise on the RAW signal, demosaicing, the
    tone curve and JPEG at quality 80-95. No highlight boost: the held-out photos are daylight
    scenes, where it brightens the blur more than a real camera does.
    """
    from realblur_gan.camera import CameraPipelineBlur

    return CameraPipelineBlur(kernel_size=(5, 65), saturation_factor=None, jpeg_quality=(80, 95))


def held_out_pairs(
    photos: str | os.PathLike[str], cache: str | os.PathLike[str], seed: int = 0
) -> Path:
    """Blur every photo under ``photos`` once through :func:`held_out_camera`, cached.

    Each photo is blurred with its own generator (``seed`` and its index), so the pairs do not
    depend on the order of work. The folder is reused while its stamp (photos, seed, camera
    version) matches.

    Args:
        photos: folder of sharp photos (searched recursively).
        cache: where ``blur/`` and ``sharp/`` are written (PNG, same relative names).
        seed: base seed.

    Returns:
        ``cache``, holding the pairs.
    """
    root, cache = Path(photos), Path(cache)
    paths = list_images(root)
    names = [p.relative_to(root).with_suffix("").as_posix() for p in paths]
    stamp = {"photos": names, "seed": seed, "camera": _CAMERA_VERSION}
    stamp_file = cache / "pairs.json"
    if stamp_file.is_file() and json.loads(stamp_file.read_text()) == stamp:
        return cache
    camera = held_out_camera()
    for index, (path, name) in enumerate(
        tqdm(list(zip(paths, names, strict=True)), desc="blurring held-out photos", unit="img")
    ):
        sharp = to_channels(read_image(path)[0], 3)
        generator = torch.Generator().manual_seed(seed * 100_003 + index)
        blurred = camera(sharp[None], generator=generator)[0]
        write_image(cache / "sharp" / f"{name}.png", sharp)
        write_image(cache / "blur" / f"{name}.png", blurred)
    stamp_file.write_text(json.dumps(stamp))
    return cache


def _luma(x: Tensor) -> Tensor:
    return x if x.shape[1] == 1 else (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])


def blur_score(image: Tensor) -> float:
    """No-reference blur of an image in [0, 1]: 0 sharp, towards 1 blurrier.

    The perceptual blur metric of Crété-Roffet et al. (2007): re-blur the luma with a 9-pixel
    box along each axis and measure how much of the variation between neighbouring pixels the
    re-blur removes. A sharp image loses much of it, an already blurry one little; the score is
    the larger of the two axes' retained share.

    Args:
        image: one image, gray or RGB.

    Returns:
        The blur score in [0, 1].

    Shape:
        - image: :math:`(1, C, H, W)` or :math:`(C, H, W)`
    """
    y = _luma(image if image.ndim == 4 else image[None]).double()
    scores = []
    for dim, kernel in ((2, (9, 1)), (3, (1, 9))):
        box = torch.ones(1, 1, *kernel, dtype=y.dtype) / 9.0
        pad = (0, 0, 4, 4) if dim == 2 else (4, 4, 0, 0)
        reblurred = F.conv2d(F.pad(y, pad, mode="replicate"), box)
        d_image = y.diff(dim=dim).abs()
        d_reblur = reblurred.diff(dim=dim).abs()
        total = float(d_image.sum())
        if total <= 0.0:
            scores.append(1.0)
            continue
        lost = float((d_image - d_reblur).clamp_min(0.0).sum())
        scores.append((total - lost) / total)
    return max(scores)


def colour_kept(restored: Tensor, blurry: Tensor, sharp: Tensor | None) -> tuple[bool, float]:
    """Whether a restoration kept the image's colour and brightness.

    With a sharp reference: no channel mean of ``restored`` is farther from the sharp image's
    than the blurry input's is, plus :data:`COLOUR_TOLERANCE`. Without one: no channel mean moved
    more than :data:`COLOUR_TOLERANCE_NO_GT` from the input's.

    Args:
        restored, blurry: the output and the input, in [0, 1].
        sharp: the reference, or None.

    Returns:
        ``(kept, excess)``: ``excess`` is the largest violation (negative: the margin left).

    Shape:
        - restored, blurry, sharp: :math:`(1, C, H, W)`
    """
    out = restored.double().mean((0, 2, 3))
    inp = blurry.double().mean((0, 2, 3))
    if sharp is None:
        excess = float(((out - inp).abs() - COLOUR_TOLERANCE_NO_GT).max())
    else:
        ref = sharp.double().mean((0, 2, 3))
        excess = float(((out - ref).abs() - (inp - ref).abs() - COLOUR_TOLERANCE).max())
    return excess <= 0.0, excess


@dataclass
class PartSummary:
    """One row of the benchmark table."""

    part: str
    images: int
    input_psnr: float = math.nan
    input_ssim: float = math.nan
    psnr: float = math.nan
    ssim: float = math.nan
    gain: float = math.nan
    worst_image: str = ""
    worst_gain: float = math.nan
    colour_kept: int = 0
    input_blur: float = math.nan
    blur: float = math.nan
    seconds: float = 0.0


@dataclass
class BenchmarkResult:
    """Per-image rows, one summary per part, and the grid written (if any)."""

    rows: list[dict[str, str | float]] = field(default_factory=list)
    parts: list[PartSummary] = field(default_factory=list)
    grid: Path | None = None


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def _paired(part: str, pairs: Path, restore: Restore, limit: int | None) -> list[dict]:
    rows = []
    sharp_root, blur_root = pairs / "sharp", pairs / "blur"
    blur_index = {
        p.relative_to(blur_root).with_suffix("").as_posix(): p for p in list_images(blur_root)
    }
    sharp_paths = list_images(sharp_root)[:limit]
    for path in tqdm(sharp_paths, desc=part, unit="img"):
        name = path.relative_to(sharp_root).with_suffix("").as_posix()
        if name not in blur_index:
            logger.warning("%s: no blurry image for %s, skipped", blur_root, name)
            continue
        sharp = to_channels(read_image(path)[0], 3)[None]
        blurry = to_channels(read_image(blur_index[name])[0], 3)[None]
        restored = restore(blurry)
        kept, excess = colour_kept(restored, blurry, sharp)
        row = {
            "part": part,
            "image": name,
            "input_psnr": float(psnr(blurry, sharp)[0]),
            "input_ssim": float(ssim(blurry, sharp)[0]),
            "psnr": float(psnr(restored, sharp)[0]),
            "ssim": float(ssim(restored, sharp)[0]),
            "colour_kept": kept,
            "colour_excess": excess,
        }
        row["gain"] = row["psnr"] - row["input_psnr"]
        rows.append(row)
    return rows


def _unpaired(photos: Path, restore: Restore, limit: int | None) -> tuple[list[dict], dict]:
    rows, outputs = [], {}
    for path in tqdm(list_images(photos)[:limit], desc="real", unit="img"):
        name = path.relative_to(photos).with_suffix("").as_posix()
        blurry = to_channels(read_image(path)[0], 3)[None]
        restored = restore(blurry)
        kept, excess = colour_kept(restored, blurry, None)
        rows.append(
            {
                "part": "real",
                "image": name,
                "input_blur": blur_score(blurry),
                "blur": blur_score(restored),
                "colour_kept": kept,
                "colour_excess": excess,
            }
        )
        outputs[name] = (blurry, restored)
    return rows, outputs


def _summary(part: str, rows: list[dict], seconds: float) -> PartSummary:
    summary = PartSummary(part, len(rows), seconds=seconds)
    summary.colour_kept = sum(bool(r["colour_kept"]) for r in rows)
    if rows and "gain" in rows[0]:
        for key in ("input_psnr", "input_ssim", "psnr", "ssim", "gain"):
            setattr(summary, key, _mean([float(r[key]) for r in rows]))
        worst = min(rows, key=lambda r: float(r["gain"]))
        summary.worst_image, summary.worst_gain = str(worst["image"]), float(worst["gain"])
    elif rows:
        summary.input_blur = _mean([float(r["input_blur"]) for r in rows])
        summary.blur = _mean([float(r["blur"]) for r in rows])
        worst = max(rows, key=lambda r: float(r["blur"]) - float(r["input_blur"]))
        summary.worst_image = str(worst["image"])
        summary.worst_gain = float(worst["input_blur"]) - float(worst["blur"])
    return summary


def _crop_box(image: Tensor, size: int) -> tuple[int, int, int]:
    """The ``size`` square (top, left, side) with the most gradient energy, on a coarse grid."""
    _, _, h, w = image.shape
    side = min(size, h, w)
    y = _luma(image)
    energy = y.diff(dim=2).abs()[..., :, :-1] + y.diff(dim=3).abs()[..., :-1, :]
    step = max(side // 4, 1)
    best = (-1.0, 0, 0)
    for top in range(0, h - side + 1, step):
        for left in range(0, w - side + 1, step):
            value = float(energy[..., top : top + side - 1, left : left + side - 1].mean())
            best = max(best, (value, top, left))
    return best[1], best[2], side


def _blind_map(crop: Tensor, cache: Path, key: str, iterations: int, kernel_size: int) -> Tensor:
    """Blind MAP on one crop, cached by its key and settings (it takes a minute per crop)."""
    from realblur_gan.blind.registry import blind_deblur

    digest = hashlib.sha256(crop.numpy().tobytes()).hexdigest()[:12]
    path = cache / f"{key.replace('/', '_')}-{digest}-{iterations}-{kernel_size}.png"
    if path.is_file():
        return to_channels(read_image(path)[0], 3)[None]
    result = blind_deblur("map", crop, kernel_size, iterations, names=[key], progress=True)
    write_image(path, result.restored[0])
    return result.restored


def write_grid(
    outputs: dict[str, tuple[Tensor, Tensor]],
    names: Sequence[str],
    path: Path,
    map_cache: Path | None,
    crop: int = 256,
    map_iterations: int = 2000,
    map_kernel_size: int = 35,
) -> Path | None:
    """A PNG of crops, one row per photo: input | model | blind MAP, each shown at 2x.

    Args:
        outputs: ``{name: (blurry, restored)}`` of the ``real`` part.
        names: the photos to show (those absent from ``outputs`` are skipped).
        path: the PNG to write.
        map_cache: folder caching the MAP crops; None leaves the MAP column out.
        crop: side of each crop in the photo's own pixels (the busiest square of the photo).
        map_iterations: MAP's budget per crop.
        map_kernel_size: MAP's kernel side.

    Returns:
        ``path``, or None when none of ``names`` is in ``outputs``.
    """
    rows = []
    for name in names:
        if name not in outputs:
            logger.warning("grid: %s is not among the real photos, skipped", name)
            continue
        blurry, restored = outputs[name]
        top, left, side = _crop_box(blurry, crop)
        cells = [t[..., top : top + side, left : left + side] for t in (blurry, restored)]
        if map_cache is not None:
            cells.append(_blind_map(cells[0], map_cache, name, map_iterations, map_kernel_size))
        cells = [F.interpolate(c, scale_factor=2, mode="nearest") for c in cells]
        gap = torch.ones(1, 3, cells[0].shape[2], 8)
        row = [cells[0]]
        for cell in cells[1:]:
            row += [gap, cell]
        rows.append(torch.cat(row, dim=3))
    if not rows:
        logger.warning("grid: none of the named photos is among the real photos; no grid")
        return None
    width = max(r.shape[3] for r in rows)
    rows = [F.pad(r, (0, width - r.shape[3]), value=1.0) for r in rows]
    spaced = []
    for r in rows:
        spaced += [r, torch.ones(1, 3, 8, width)]
    write_image(path, torch.cat(spaced[:-1], dim=2)[0])
    return path


@dataclass(frozen=True)
class BenchmarkData:
    """Where each part's images are; a part whose folder is None is left out.

    Attributes:
        gopro: pairs folder (``blur/`` + ``sharp/``) of real blur from unseen scenes.
        held_out_photos: sharp photos never trained on (blurred by :func:`held_out_pairs`).
        real: real blurry photos without ground truth.
    """

    gopro: Path | None = None
    held_out_photos: Path | None = None
    real: Path | None = None

    @classmethod
    def from_root(cls, root: str | os.PathLike[str]) -> BenchmarkData:
        """The layout of the project's shared data folder (``gopro_pairs_other_scenes``,
        ``natural/CBSD68``, ``real_blur``); parts whose folder is missing are None."""
        root = Path(root)

        def found(path: Path) -> Path | None:
            return path if path.is_dir() else None

        return cls(
            gopro=found(root / "gopro_pairs_other_scenes"),
            held_out_photos=found(root / "natural" / "CBSD68"),
            real=found(root / "real_blur"),
        )


def run_benchmark(
    restore: Restore,
    data: BenchmarkData,
    out: str | os.PathLike[str],
    parts: Sequence[str] = PARTS,
    limit: int | None = None,
    grid_names: Sequence[str] = (),
    map_iterations: int | None = 2000,
    seed: int = 0,
    cache: str | os.PathLike[str] | None = None,
) -> BenchmarkResult:
    """Score ``restore`` on every part and write ``metrics.csv``, ``summary.json`` and the grid.

    Args:
        restore: ``blurry (1, 3, H, W) -> restored (1, 3, H, W)``, both in [0, 1].
        data: the parts' folders.
        out: output folder.
        parts: which of :data:`PARTS` to run.
        limit: score only the first N images of each part (quick checks).
        grid_names: real photos (names relative to ``data.real``, no extension) for the grid.
        map_iterations: blind MAP's budget per grid crop; None leaves the MAP column out.
        seed: seed of the synthetic part's blur.
        cache: where the synthetic pairs and MAP crops are kept between runs (default:
            ``out/cache``; several models scored one after another can share one).

    Returns:
        Rows, part summaries and the grid path.
    """
    import time

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "cache" if cache is None else Path(cache)
    result = BenchmarkResult()
    for part in parts:
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}; choose from {', '.join(PARTS)}")
        start = time.perf_counter()
        if part == "gopro" and data.gopro is not None:
            rows = _paired(part, data.gopro, restore, limit)
        elif part == "synthetic" and data.held_out_photos is not None:
            pairs = held_out_pairs(data.held_out_photos, cache / "synthetic", seed)
            rows = _paired(part, pairs, restore, limit)
        elif part == "real" and data.real is not None:
            rows, outputs = _unpaired(data.real, restore, limit)
            if grid_names:
                map_cache = None if map_iterations is None else cache / "map"
                result.grid = write_grid(
                    outputs,
                    grid_names,
                    out / "grid.png",
                    map_cache,
                    map_iterations=map_iterations or 0,
                )
        else:
            logger.warning("part %s: its data folder is missing, skipped", part)
            continue
        result.rows += rows
        result.parts.append(_summary(part, rows, time.perf_counter() - start))
    _write(result, out)
    return result


def _write(result: BenchmarkResult, out: Path) -> None:
    columns = ["part", "image", "input_psnr", "input_ssim", "psnr", "ssim", "gain"]
    columns += ["input_blur", "blur", "colour_kept", "colour_excess"]
    with (out / "metrics.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in result.rows:
            writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})
    (out / "summary.json").write_text(json.dumps([asdict(p) for p in result.parts], indent=1))


_LABELS = {
    "gopro": "real blur, unseen scenes",
    "synthetic": "camera blur, held-out photos",
    "real": "real photos, no ground truth",
}


def format_table(parts: Sequence[PartSummary], label: str = "model") -> str:
    """The benchmark's markdown table: input, model, gain and worst image per part."""
    lines = [
        f"| part | images | input PSNR / SSIM | {label} PSNR / SSIM | gain (dB) "
        "| worst image (gain) | colour kept |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for p in parts:
        name = _LABELS.get(p.part, p.part)
        if p.part == "real":
            lines.append(
                f"| {name} | {p.images} | blur {p.input_blur:.3f} | blur {p.blur:.3f} | "
                f"{p.input_blur - p.blur:+.3f} (blur) | {p.worst_image} ({p.worst_gain:+.3f}) | "
                f"{p.colour_kept}/{p.images} |"
            )
        else:
            lines.append(
                f"| {name} | {p.images} | {p.input_psnr:.2f} / {p.input_ssim:.4f} | "
                f"{p.psnr:.2f} / {p.ssim:.4f} | {p.gain:+.2f} | {p.worst_image} "
                f"({p.worst_gain:+.2f}) | {p.colour_kept}/{p.images} |"
            )
    return "\n".join(lines)
