"""Score restored images against sharp references: PSNR, SSIM and LPIPS, per image and mean.

Methods compared side by side in one table:

- ``--restored DIR``: images restored elsewhere (matched to ``--sharp`` by relative path, any
  extension);
- ``--blur DIR``: the DBGAN generator run here on the blurry images, the packaged model unless
  ``--checkpoint CKPT`` names another (``--no-model`` leaves it out; see
  :mod:`realblur_gan.inference.tiling`);
- ``--baselines identity,wiener,rl,selfdeblur,map`` with ``--blur DIR`` (and ``--kernels DIR``
  for the non-blind wiener and rl): the classical methods of
  :mod:`realblur_gan.evaluation.baselines`;
  the blind ones (see :mod:`realblur_gan.blind`) take ``--iterations`` and ``--kernel-size``.

Writes ``OUT/metrics.csv`` (one row per image and method) and ``OUT/summary.md`` (the mean
table, also printed). PSNR and SSIM are computed on RGB or, with ``--y-channel``, on BT.601 luma;
LPIPS always on RGB. With ``--shift K`` PSNR and SSIM are each the best over integer shifts
within ±K px (on the overlapping region) and LPIPS is taken at the PSNR-best shift.

Example::

    realblur-evaluate --blur pairs/blur --sharp pairs/sharp \\
        --checkpoint last.ckpt --baselines identity,wiener,rl --kernels pairs/kernels
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import functools
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from realblur_gan.cli.generator_options import add_generator_options, generator_from_options
from realblur_gan.cli.help_format import HelpFormatter
from realblur_gan.defaults import (
    BLIND_METHODS,
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    RUNTIMES,
    Tile,
    parse_tile,
)
from realblur_gan.errors import (
    UserError,
    cli_logging,
    debug_requested,
    error_text,
)
from realblur_gan.ownership import claim_folder
from realblur_gan.threads import use_available_cpus
from realblur_gan.weights.model_zoo import DEFAULT_MODEL

# Torch, the metrics and the baselines are imported where they are used: `realblur-evaluate
# --help` then answers at once instead of after seconds of imports.
if TYPE_CHECKING:
    import torch
    from torch import Tensor, nn

logger = logging.getLogger(__name__)

__all__ = [
    "BASELINE_NAMES",
    "BlindSettings",
    "EvaluationError",
    "Method",
    "ScoreOptions",
    "evaluate",
    "markdown_table",
    "score_pair",
    "write_csv",
]

BASELINE_NAMES = ("identity", "wiener", "rl", *BLIND_METHODS)
METRICS = ("psnr", "ssim", "lpips")


class EvaluationError(UserError, ValueError):
    """The folders or options cannot be evaluated; the message says what to fix."""


@dataclass(frozen=True)
class ScoreOptions:
    """How images are scored.

    Attributes:
        shift: largest integer shift (px) tried in each direction; 0 scores as is.
        crop_border: pixels dropped on each side before scoring.
        y_channel: PSNR/SSIM on BT.601 luma (studio swing, MATLAB's ``rgb2ycbcr``).
    """

    shift: int = 0
    crop_border: int = 0
    y_channel: bool = False

    def describe(self) -> str:
        parts = ["Y (BT.601)" if self.y_channel else "RGB"]
        if self.crop_border:
            parts.append(f"border {self.crop_border} px cropped")
        if self.shift:
            parts.append(f"best shift within ±{self.shift} px")
        return ", ".join(parts)


def score_pair(
    pred: Tensor,
    target: Tensor,
    options: ScoreOptions | None = None,
    lpips: nn.Module | None = None,
) -> dict[str, float]:
    """PSNR, SSIM and (when ``lpips`` is given) LPIPS of one restored image.

    Args:
        pred: restored image in [0, 1].
        target: sharp reference in [0, 1], same size.
        options: see :class:`ScoreOptions`; None for the defaults.
        lpips: an LPIPS module ``(pred, target) -> scalar``, e.g.
            :class:`~realblur_gan.training.losses.LPIPSLoss`; None leaves the entry out.

    Returns:
        ``{"psnr", "ssim"[, "lpips"], "dy", "dx"}``: ``dy, dx`` is the PSNR-best shift.

    Shape:
        - pred, target: :math:`(1, C, H, W)`, C in {1, 3}
    """
    import torch

    from realblur_gan.data.io import to_channels
    from realblur_gan.evaluation.metrics import (
        best_shift,
        crop_border,
        psnr,
        rgb_to_y,
        shift_overlap,
        shift_tolerant,
        ssim,
    )

    options = options or ScoreOptions()
    if pred.shape[-2:] != target.shape[-2:]:
        raise EvaluationError(
            f"restored size {tuple(pred.shape[-2:])} != sharp size {tuple(target.shape[-2:])}"
        )
    channels = max(pred.shape[1], target.shape[1])
    pred, target = to_channels(pred, channels), to_channels(target, channels)
    pred = crop_border(pred.float(), options.crop_border)
    target = crop_border(target.float(), options.crop_border)
    pred_m, target_m = (rgb_to_y(pred), rgb_to_y(target)) if options.y_channel else (pred, target)
    if options.shift:
        dy, dx = (int(v) for v in best_shift(psnr, pred_m, target_m, options.shift)[0])
        # SSIM is maximised over shifts on its own, as benchmarks do for each metric (all
        # shifts at once: metrics.ssim_at_shifts).
        ssim_value = float(shift_tolerant(ssim, pred_m, target_m, options.shift)[0])
    else:
        dy = dx = 0
        ssim_value = float(ssim(pred_m, target_m)[0])
    p, t = shift_overlap(pred_m, target_m, dy, dx)
    scores = {"psnr": float(psnr(p, t)[0]), "ssim": ssim_value}
    if lpips is not None:
        p, t = shift_overlap(pred, target, dy, dx)
        device = next(lpips.parameters()).device
        with torch.inference_mode():
            scores["lpips"] = float(lpips(p.to(device), t.to(device)))
    scores["dy"], scores["dx"] = dy, dx
    return scores


# --------------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------------


@dataclass
class Method:
    """One row of the table: how to get the restored image of a pair.

    Attributes:
        label: the row's name.
        restore: ``(key, blur, kernel) -> restored`` (1, C, H, W); ``blur``/``kernel`` are None
            when not loaded.
        needs_blur: whether ``restore`` reads ``blur``.
        needs_kernel: whether ``restore`` reads ``kernel``.
        save_dir: write each restored image there (keyed like the sharp folder).
    """

    label: str
    restore: Callable[[str, Tensor | None, Tensor | None], Tensor]
    needs_blur: bool = True
    needs_kernel: bool = False
    save_dir: Path | None = None


def _index(folder: Path) -> dict[str, Path]:
    """Images under ``folder`` keyed by relative path without extension."""
    from realblur_gan.data.io import list_images

    found: dict[str, Path] = {}
    for path in list_images(folder):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in found:
            logger.warning("%s: same name as %s, ignored", path, found[key])
            continue
        found[key] = path
    return found


def restored_folder_method(folder: Path) -> Method:
    """Read restored images from ``folder``, matched by relative path without extension."""
    index = _index(folder)

    def restore(key: str, blur: Tensor | None, kernel: Tensor | None) -> Tensor:
        from realblur_gan.data.io import read_image

        if key not in index:
            raise EvaluationError(f"{folder}: no restored image for '{key}'")
        return read_image(index[key])[0][None]

    return Method(f"restored ({folder.name})", restore, needs_blur=False)


def model_method(
    net: nn.Module,
    label: str,
    tile: Tile,
    overlap: int,
    bf16: bool = False,
    self_ensemble: bool = False,
    runtime: str = "auto",
) -> Method:
    """Run a generator on each blurry image (see
    :func:`~realblur_gan.inference.tiling.deblur_image`)."""
    from realblur_gan.inference.tiling import deblur_image

    def restore(key: str, blur: Tensor | None, kernel: Tensor | None) -> Tensor:
        assert blur is not None
        return deblur_image(
            net, blur, tile, overlap, bf16=bf16, self_ensemble=self_ensemble, runtime=runtime
        )

    return Method(label, restore)


@dataclass(frozen=True)
class BlindSettings:
    """How the blind baselines (``selfdeblur``, ``map``) run in an evaluation.

    Attributes:
        iterations: optimisation budget per image; None for each method's default.
        kernel_size: side of the estimated kernel (odd, smaller than the images).
        seed: random seed.
        device: where to optimise.
    """

    iterations: int | None = None
    kernel_size: int = 31
    seed: int = 0
    device: torch.device | str = "cpu"

    def __post_init__(self) -> None:
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise EvaluationError(f"--kernel-size {self.kernel_size}: pass an odd size >= 3")
        if self.iterations is not None and self.iterations < 1:
            raise EvaluationError(f"--iterations {self.iterations}: pass a budget >= 1")


def blind_method(name: str, settings: BlindSettings) -> Method:
    """A row for the blind baseline ``name``: it needs no kernel file."""
    from realblur_gan.blind.registry import BLIND_BASELINES, blind_deblur

    spec = BLIND_BASELINES[name]
    budget = spec.default_iterations if settings.iterations is None else settings.iterations

    def restore(key: str, blur: Tensor | None, kernel: Tensor | None) -> Tensor:
        assert blur is not None
        result = blind_deblur(
            name,
            blur,
            settings.kernel_size,
            budget,
            seed=settings.seed,
            device=settings.device,
            names=[key],
            progress=True,
        )
        return result.restored

    return Method(f"{spec.label} ({budget} it.)", restore)


def baseline_methods(
    names: Sequence[str], nsr: float, iterations: int, blind: BlindSettings | None = None
) -> list[Method]:
    """Rows for the baselines named in ``--baselines``; ``blind`` configures the blind ones."""
    from realblur_gan.evaluation.baselines import identity, richardson_lucy, wiener

    functions: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
        "wiener": functools.partial(wiener, nsr=nsr),
        "rl": functools.partial(richardson_lucy, iterations=iterations),
    }
    labels = {"wiener": f"Wiener (nsr {nsr:g})", "rl": f"Richardson–Lucy ({iterations} it.)"}
    methods = []
    for name in names:
        if name == "identity":
            methods.append(Method("identity (blurry input)", lambda k, b, _: identity(b)))
        elif name in functions:
            fn = functions[name]
            methods.append(
                Method(labels[name], lambda k, b, kern, fn=fn: fn(b, kern), needs_kernel=True)
            )
        elif name in BLIND_METHODS:
            methods.append(blind_method(name, blind or BlindSettings()))
        else:
            raise EvaluationError(
                f"unknown baseline {name!r}; choose from {', '.join(BASELINE_NAMES)}"
            )
    return methods


# --------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------


@dataclass
class EvaluationResult:
    """Per-image rows, the images that could not be scored, and why LPIPS is absent if it is."""

    rows: list[dict[str, str | float]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    lpips_note: str | None = None
    seconds: float = 0.0


def _find_kernel(kernels_dir: Path, key: str) -> Path:
    from realblur_gan.evaluation.baselines import KERNEL_EXTENSIONS, KernelError

    for ext in KERNEL_EXTENSIONS:
        path = kernels_dir / f"{key}{ext}"
        if path.is_file():
            return path
    raise KernelError(f"{kernels_dir}: no kernel for '{key}' ({'/'.join(KERNEL_EXTENSIONS)})")


def evaluate(
    sharp_dir: str | os.PathLike[str],
    methods: Sequence[Method],
    blur_dir: str | os.PathLike[str] | None = None,
    kernels_dir: str | os.PathLike[str] | None = None,
    options: ScoreOptions | None = None,
    lpips: nn.Module | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Score every method on every sharp image that has its counterparts.

    Args:
        sharp_dir: the references (searched recursively); their relative paths without
            extension are the keys that blurry, restored and kernel files are matched by.
        methods: the table's rows.
        blur_dir: blurry inputs, for methods that restore here.
        kernels_dir: blur kernels (``.npy`` or ``.png``), for non-blind baselines.
        options: see :class:`ScoreOptions`.
        lpips: LPIPS module, or None to leave the column out.
        progress: show a progress bar.

    Returns:
        Per-image rows (``image``, ``method``, ``psnr``, ``ssim``[, ``lpips``], ``dy``, ``dx``)
        and the one-line reason for every image/method pair that was skipped.
    """
    from tqdm import tqdm

    from realblur_gan.data.io import ImageReadError, read_image
    from realblur_gan.evaluation.baselines import KernelError, load_kernel

    start = time.perf_counter()
    options = options or ScoreOptions()
    sharp_dir = Path(sharp_dir)
    kernels = Path(kernels_dir) if kernels_dir is not None else None
    sharp_index = _index(sharp_dir)
    blur_index = _index(Path(blur_dir)) if blur_dir is not None else {}
    unmatched = sorted(blur_index.keys() - sharp_index.keys())
    if any(m.needs_blur for m in methods) and blur_dir is None:
        raise EvaluationError("a method restores blurry images here: pass --blur DIR")
    if any(m.needs_kernel for m in methods) and kernels is None:
        raise EvaluationError("non-blind baselines (wiener, rl) need the kernels: pass --kernels")
    result = EvaluationResult()
    if unmatched:
        # Scoring needs a reference: say which inputs were left out instead of dropping them.
        shown = ", ".join(unmatched[:10]) + (
            f" and {len(unmatched) - 10} more" if len(unmatched) > 10 else ""
        )
        result.skipped.append(
            f"{blur_dir}: {len(unmatched)} blurry images have no sharp reference in {sharp_dir} "
            f"and are not scored: {shown}"
        )
    bar = tqdm(sharp_index.items(), desc="evaluate", unit="img", disable=not progress or None)
    for key, sharp_path in bar:
        try:
            sharp = read_image(sharp_path)[0][None]
            blur = kernel = None
            if any(m.needs_blur for m in methods):
                if key not in blur_index:
                    raise EvaluationError(f"{blur_dir}: no blurry image for '{key}'")
                blur = read_image(blur_index[key])[0][None]
        except (ImageReadError, EvaluationError) as err:
            result.skipped.append(str(err))
            continue
        for method in methods:
            try:
                if method.needs_kernel and kernel is None and kernels is not None:
                    kernel = load_kernel(_find_kernel(kernels, key))
                restored = method.restore(key, blur, kernel)
                if method.save_dir is not None:
                    _save_restored(method, key, restored, result)
                scores = score_pair(restored, sharp, options, lpips)
            except (ImageReadError, KernelError, EvaluationError, ValueError) as err:
                result.skipped.append(f"{method.label}: {key}: {' '.join(str(err).split())}")
                continue
            result.rows.append({"image": key, "method": method.label, **scores})
    result.seconds = time.perf_counter() - start
    return result


def _save_restored(method: Method, key: str, restored: Tensor, result: EvaluationResult) -> None:
    """Write one restored image; on a write error say so once and stop saving, keep scoring.

    The output side failing (full, read-only, gone) would fail every further image the same
    way, and the scores are what the user came for.
    """
    from realblur_gan.data.io import write_image

    assert method.save_dir is not None
    target = method.save_dir / f"{key}.png"
    try:
        write_image(target, restored[0])
    except OSError as err:
        result.skipped.append(
            f"{method.label}: cannot write {target} ({err.strerror or err}); restored images "
            f"are no longer saved for this method (scoring goes on); check {method.save_dir}"
        )
        method.save_dir = None


def write_csv(path: str | os.PathLike[str], rows: Sequence[dict[str, str | float]]) -> Path:
    """Write per-image rows as CSV (metrics to 4 decimals)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ["image", "method", *[m for m in METRICS if any(m in r for r in rows)], "dy", "dx"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})
    return path


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def markdown_table(
    rows: Sequence[dict[str, str | float]],
    methods: Sequence[str],
    options: ScoreOptions,
    lpips_note: str | None = None,
) -> str:
    """The mean PSNR/SSIM/LPIPS per method as a markdown table, with notes below it.

    Args:
        rows: per-image rows from :func:`evaluate`.
        methods: row labels, in table order.
        options: how the scores were computed (stated under the table).
        lpips_note: why LPIPS is absent (shown as ``n/a`` with this footnote).
    """
    lines = [
        "| method | images | PSNR (dB) ↑ | SSIM ↑ | LPIPS ↓ |",
        "|---|---:|---:|---:|---:|",
    ]
    for label in methods:
        mine = [r for r in rows if r["method"] == label]
        psnr_mean = _mean([float(r["psnr"]) for r in mine])
        ssim_mean = _mean([float(r["ssim"]) for r in mine])
        if lpips_note is not None:
            lpips_text = "n/a¹"
        else:
            lpips_text = f"{_mean([float(r['lpips']) for r in mine if 'lpips' in r]):.4f}"
        lines.append(
            f"| {label} | {len(mine)} | {psnr_mean:.2f} | {ssim_mean:.4f} | {lpips_text} |"
        )
    lines.append("")
    lines.append(f"PSNR/SSIM on {options.describe()}; LPIPS on RGB.")
    if lpips_note is not None:
        lines.append(f"¹ LPIPS not computed: {lpips_note}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realblur-evaluate",
        description="Score deblurring methods against sharp references: PSNR, SSIM and LPIPS per\n"
        "image (OUT/metrics.csv) and their means (printed, and OUT/summary.md). With --blur,\n"
        "the packaged DBGAN (or --checkpoint) restores the blurry images and is scored;\n"
        "--baselines adds classical methods, --restored images restored elsewhere.",
        formatter_class=HelpFormatter,
        epilog="examples:\n"
        "  realblur-evaluate --blur pairs/blur --sharp pairs/sharp\n"
        "  realblur-evaluate --blur pairs/blur --sharp pairs/sharp --checkpoint last.ckpt \\\n"
        "      --baselines identity,wiener,rl --kernels pairs/kernels --shift 2\n"
        "  realblur-evaluate --restored other_method/ --sharp pairs/sharp",
    )
    parser.add_argument(
        "--sharp", type=Path, required=True, metavar="DIR", help="sharp reference folder"
    )
    parser.add_argument(
        "--restored",
        type=Path,
        metavar="DIR",
        help="folder of images restored elsewhere, matched to --sharp by relative path",
    )
    parser.add_argument(
        "--blur",
        type=Path,
        metavar="DIR",
        help="blurry inputs, matched to --sharp by relative path: the model and --baselines "
        "run on them",
    )
    parser.add_argument(
        "--no-model",
        action="store_true",
        help="do not run a model on --blur (score only --baselines / --restored)",
    )
    parser.add_argument(
        "--baselines",
        default="",
        metavar="NAMES",
        help=f"comma list of {','.join(BASELINE_NAMES)} (on --blur)",
    )
    parser.add_argument(
        "--kernels", type=Path, metavar="DIR", help="kernel folder (.npy/.png) for wiener, rl"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("evaluation"), metavar="DIR", help="output folder"
    )
    parser.add_argument(
        "--shift", type=int, default=0, help="score the best integer shift within ±K px"
    )
    parser.add_argument("--crop-border", type=int, default=0, help="ignore N px at each side")
    parser.add_argument("--y-channel", action="store_true", help="PSNR/SSIM on BT.601 luma")
    parser.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    parser.add_argument("--lpips-net", default="alex", help="LPIPS backbone: alex, vgg, squeeze")
    parser.add_argument(
        "--lpips-weights",
        default=None,
        metavar="FILE",
        help="backbone weight file (default: the torch hub cache; nothing is downloaded)",
    )
    parser.add_argument(
        "--tile",
        type=parse_tile,
        default=DEFAULT_TILE,
        help="tile side (px) for large images; 0 = none; auto = by image size and runtime",
    )
    parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, help="tile overlap (px)")
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when there is one), cpu, cuda or cuda:N"
    )
    parser.add_argument(
        "--bf16", action="store_true", help="--checkpoint: bfloat16 autocast (CUDA, native CPUs)"
    )
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto", help="forward pass runtime")
    parser.add_argument(
        "--self-ensemble",
        action="store_true",
        help="the model: average over the 8 flips/transposes (8x the time)",
    )
    parser.add_argument("--wiener-nsr", type=float, default=1e-2, help="Wiener noise/signal")
    parser.add_argument("--rl-iterations", type=int, default=30, help="Richardson–Lucy steps")
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="blind baselines: budget per image (default: each method's own, "
        + ", ".join(f"{name} {budget}" for name, budget in BLIND_METHODS.items())
        + ")",
    )
    parser.add_argument(
        "--kernel-size", type=int, default=31, help="blind baselines: estimated kernel side (odd)"
    )
    parser.add_argument("--seed", type=int, default=0, help="blind baselines: random seed")
    parser.add_argument(
        "--save-restored", action="store_true", help="write restored images to OUT/<method>/"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    parser.add_argument("--debug", action="store_true", help="full tracebacks for errors")
    add_generator_options(
        parser,
        "the model run on --blur: a .ckpt from training or an exported .safetensors "
        f"(default: the packaged {DEFAULT_MODEL})",
    )
    return parser


def _build_lpips(
    args: argparse.Namespace, device: torch.device
) -> tuple[nn.Module | None, str | None]:
    """The LPIPS module, or None and the reason it is unavailable."""
    if args.no_lpips:
        return None, "disabled with --no-lpips"
    from realblur_gan.training.losses import LPIPSLoss
    from realblur_gan.weights.backbones import MissingPretrainedWeights

    try:
        return LPIPSLoss(net=args.lpips_net, weights_path=args.lpips_weights).to(device), None
    except MissingPretrainedWeights as err:
        return None, " ".join(str(err).split())


def _slug(label: str) -> str:
    """A folder name for a method's label: ``Wiener (nsr 0.01)`` -> ``Wiener_nsr_0.01``."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", label).strip("_.")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``realblur-evaluate``); returns the exit status."""
    args = build_parser().parse_args(argv)
    cli_logging(args.verbose)
    with contextlib.ExitStack() as owned:  # holds the --out lock until every return
        return _main(args, owned)


def _main(args: argparse.Namespace, owned: contextlib.ExitStack) -> int:
    from realblur_gan.inference.runtime import forward_runner
    from realblur_gan.inference.tiling import pick_device

    use_available_cpus()
    options = ScoreOptions(args.shift, args.crop_border, args.y_channel)
    try:
        if args.shift < 0 or args.crop_border < 0:
            raise EvaluationError("--shift and --crop-border must be >= 0")
        if args.blur is None and args.checkpoint is not None:
            raise EvaluationError("--checkpoint: pass --blur DIR, the images it should restore")
        # Before scoring: the scores must have somewhere to go, and one writer per --out.
        owned.enter_context(claim_folder(args.out, "--out", "pass another --out"))
        device = pick_device(args.device)
        methods: list[Method] = []
        if args.restored is not None:
            methods.append(restored_folder_method(args.restored))
        if args.blur is not None and not args.no_model:
            net = generator_from_options(args).to(device)
            source = args.checkpoint.name if args.checkpoint is not None else DEFAULT_MODEL
            label = f"{args.net} ({source})"
            if args.self_ensemble:
                label += ", self-ensemble x8"
            if args.bf16:
                label += ", bf16"
            forward_runner(net, device, args.runtime, args.bf16)  # one that cannot run: now
            methods.append(
                model_method(
                    net,
                    label,
                    args.tile or None,
                    args.overlap,
                    bf16=args.bf16,
                    self_ensemble=args.self_ensemble,
                    runtime=args.runtime,
                )
            )
        names = [n.strip() for n in args.baselines.split(",") if n.strip()]
        blind = BlindSettings(args.iterations, args.kernel_size, args.seed, device)
        methods.extend(baseline_methods(names, args.wiener_nsr, args.rl_iterations, blind))
        if not methods:
            raise EvaluationError(
                "nothing to score: pass --blur (the model and --baselines run on it) or --restored"
            )
        if args.save_restored:
            for method in methods:
                if method.needs_blur:
                    method.save_dir = args.out / _slug(method.label)
        lpips, lpips_note = _build_lpips(args, device)
        result = evaluate(
            args.sharp, methods, args.blur, args.kernels, options, lpips, progress=True
        )
    except (UserError, ValueError) as err:
        if debug_requested(args.debug):
            raise
        print(error_text(err), file=sys.stderr)
        return 2
    result.lpips_note = lpips_note
    for line in result.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    table = markdown_table(result.rows, [m.label for m in methods], options, lpips_note)
    print(table)  # first: a failing write below must not lose the scores
    csv_path = args.out / "metrics.csv"
    try:
        write_csv(csv_path, result.rows)
        (args.out / "summary.md").write_text(table + "\n")
    except OSError as err:
        if debug_requested(args.debug):
            raise
        print(
            f"error: {csv_path}: cannot write the results ({err.strerror or err}); the table "
            "above has the means: check --out",
            file=sys.stderr,
        )
        return 1
    print(
        f"realblur-evaluate: {len(result.rows)} scores, {len(result.skipped)} skipped in "
        f"{result.seconds:.1f} s -> {csv_path}"
    )
    return 0 if result.rows else 1


if __name__ == "__main__":
    sys.exit(main())
