"""Export a trained generator: safetensors weights + JSON config, and optionally ONNX.

``DIR/<net>.safetensors`` holds the weights (with the config also in the file's metadata) and
``DIR/<net>.json`` the resolved Hydra config;
:func:`realblur_gan.weights.checkpoints.load_generator`
loads either the folder or the ``.safetensors`` file, with no pickle involved (the packaged
model in ``realblur_gan/weights/`` is such a file). ``--onnx`` adds
``DIR/<net>.onnx`` with a dynamic batch, height and width (H and W must be multiples of the net's
``stride``, written into the model's metadata); it is checked against PyTorch with onnxruntime at
two sizes. ``--start``/``--alpha`` export a point between a fine-tuned net and the weights it
started from; ``--average-with`` one net whose output is the weighted mean of two deblurrers'
(:class:`realblur_gan.nets.ensemble.OutputAverage`).

Example::

    python -m realblur_gan.export outputs/joint/.../last.ckpt --out exported/ --onnx
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from realblur_gan.cli.extras import require_extra
from realblur_gan.cli.generator_options import add_generator_options, generator_from_options
from realblur_gan.cli.help_format import HelpFormatter
from realblur_gan.errors import (
    UserError,
    cli_logging,
    debug_requested,
    error_text,
)
from realblur_gan.inference.onnx import ONNX_OPSET, ONNX_TOLERANCE, onnx_model_bytes
from realblur_gan.ownership import claim_folder, unique_temp

# Torch is imported where it is used, so `--help` answers at once.
if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "ONNX_TOLERANCE",
    "ExportError",
    "check_onnx",
    "export_onnx",
    "export_safetensors",
]


class ExportError(RuntimeError):
    """The export could not be written or does not reproduce PyTorch's output."""


class ExportWriteError(UserError, OSError):
    """An export file could not be written (full disk, read-only); none was left behind."""


def _write_failed(out_dir: Path, names: str, err: Exception) -> ExportWriteError:
    reason = getattr(err, "strerror", None) or " ".join(str(err).split())
    return ExportWriteError(
        f"{out_dir}: cannot write {names} ({reason}); nothing was left there: free disk space "
        "or pass another --out"
    )


def export_safetensors(
    net: nn.Module, config: Mapping[str, Any], out_dir: str | os.PathLike[str], name: str
) -> tuple[Path, Path]:
    """Write ``<name>.safetensors`` (weights, config in metadata) and ``<name>.json`` (config).

    Args:
        net: the generator.
        config: its resolved ``_target_`` config (plain dict).
        out_dir: output folder (created).
        name: file stem, the net's name (e.g. ``dbgan_g``).

    Returns:
        The weights and config paths.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(dict(config), indent=2, sort_keys=True)
    # safetensors refuses views into shared storage; contiguous copies are independent tensors.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    weights = out_dir / f"{name}.safetensors"
    sidecar = out_dir / f"{name}.json"
    # Both written under temporary names first: a full disk leaves neither file half-written.
    temps = (unique_temp(weights), unique_temp(sidecar))
    try:
        metadata = {"net_config": text, "net": name, "format": "pt"}
        if getattr(net, "interpolation", None):  # set by --start/--alpha: how it was made
            metadata["interpolation"] = json.dumps(net.interpolation, sort_keys=True)
        if getattr(net, "init_source", None):  # what training fine-tuned it from
            metadata["init_source"] = json.dumps(net.init_source, sort_keys=True)
        # Serialised in memory and written as any file is (mode 0666 less the umask): save_file
        # creates its file with mode 0600, unreadable to the other users of a shared folder.
        temps[0].write_bytes(save(state, metadata=metadata))
        temps[1].write_text(text + "\n")
        os.replace(temps[0], weights)
        os.replace(temps[1], sidecar)
    except (OSError, SafetensorError) as err:
        raise _write_failed(out_dir, f"{weights.name} and {sidecar.name}", err) from None
    finally:
        for temp in temps:
            temp.unlink(missing_ok=True)
    return weights, sidecar


def export_onnx(
    net: nn.Module, path: str | os.PathLike[str], size: int | None = None, opset: int = ONNX_OPSET
) -> Path:
    """Export to ONNX (:func:`onnx_model_bytes`) with the stride and range in its metadata.

    Args:
        net: the generator in eval mode.
        path: ``.onnx`` file to write.
        size: side of the example input (a multiple of the stride); default ``8 * stride``.
        opset: ONNX opset (>= 17).

    Returns:
        The written path.

    Raises:
        ExportWriteError: The file cannot be written; nothing is left at ``path``.

    Shape:
        - image: :math:`(B, C, H, W)` in [0, 1], H and W multiples of the net's stride
        - restored: :math:`(B, C, H, W)`
    """
    require_extra("onnx", ("onnx",), "ONNX export")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = unique_temp(path)
    try:
        _write_onnx(net, temp, size, opset)
        os.replace(temp, path)
    except OSError as err:
        raise _write_failed(path.parent, path.name, err) from None
    finally:
        temp.unlink(missing_ok=True)
    return path


def _write_onnx(net: nn.Module, path: Path, size: int | None, opset: int) -> None:
    import onnx

    model = onnx.load_model_from_string(onnx_model_bytes(net.eval(), size, opset))
    stride = int(getattr(net, "stride", 1))
    for key, value in {"stride": str(stride), "range": "[0, 1]"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def check_onnx(
    net: nn.Module, path: str | os.PathLike[str], sizes: Sequence[tuple[int, int]]
) -> float:
    """Largest absolute difference between onnxruntime and PyTorch over inputs of ``sizes``.

    Args:
        net: the PyTorch generator the file was exported from.
        path: the ``.onnx`` file.
        sizes: ``(H, W)`` pairs to try, multiples of the stride.

    Returns:
        The maximum absolute difference over all sizes.
    """
    require_extra("onnx", ("onnxruntime",), "checking an ONNX export")
    import onnxruntime as ort
    import torch

    from realblur_gan.nets.init import net_channels

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for h, w in sizes:
        x = torch.rand(1, net_channels(net), h, w, generator=generator)
        with torch.inference_mode():
            expected = net(x).numpy()
        (got,) = session.run(["restored"], {"image": x.numpy()})
        if got.shape != expected.shape:
            raise ExportError(f"{path}: ONNX output {got.shape} != PyTorch {expected.shape}")
        worst = max(worst, float(abs(got - expected).max()))
    return worst


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m realblur_gan.export",
        description="Export a trained generator to <net>.safetensors + <net>.json (and ONNX).\n"
        "The safetensors file loads anywhere with --checkpoint, without pickle.",
        formatter_class=HelpFormatter,
        epilog="examples:\n"
        "  python -m realblur_gan.export outputs/joint/<run>/checkpoints/joint/last.ckpt "
        "--out exported/\n"
        "  python -m realblur_gan.export --out exported/ --onnx   # the packaged model\n"
        "  python -m realblur_gan.export run/checkpoints/joint/last.ckpt --start "
        "realblur-dbgan-srn --alpha 0.7 0.8 0.9 1 --val-dir data/val --out mine/\n"
        "  python -m realblur_gan.export run/checkpoints/joint/last.ckpt --average-with "
        "realblur-dbgan --out pair/\n"
        "--onnx needs the onnx extra: pip install 'realblur-gan[onnx]'",
    )
    parser.add_argument(
        "source",
        type=Path,
        nargs="?",
        metavar="CHECKPOINT",
        help="the same as --checkpoint (without either: the packaged model)",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="also write <net>.onnx (dynamic batch, height, width) and check it against PyTorch",
    )
    parser.add_argument("--opset", type=int, default=ONNX_OPSET, help="ONNX opset (>= 17)")
    blend = parser.add_argument_group(
        "interpolation (after fine-tuning: keep the gain, drop the losses on unlike images)"
    )
    blend.add_argument(
        "--start",
        metavar="MODEL",
        help="the weights the checkpoint was fine-tuned from: a pretrained name "
        "(realblur-dbgan-srn) or a .ckpt/.safetensors; exports start + alpha * "
        "(checkpoint - start)",
    )
    blend.add_argument(
        "--alpha",
        type=float,
        nargs="+",
        metavar="A",
        help="share of the way from --start to the checkpoint, in [0, 1]; several values with "
        "--val-dir export the best on it",
    )
    blend.add_argument(
        "--val-dir",
        type=Path,
        metavar="DIR",
        help="paired validation folder (blur/ + sharp/): score every --alpha on its whole images "
        "(mean PSNR), write OUT/interpolation.csv and export the best",
    )
    blend.add_argument(
        "--max-loss",
        type=float,
        metavar="DB",
        help="with --val-dir: only alphas whose worst image loses at most DB dB against its "
        "blurry input may be exported (the best mean of those); if none, the one whose worst "
        "image loses least",
    )
    blend.add_argument(
        "--tile", type=int, default=512, metavar="PX", help="inference tile side for --val-dir"
    )
    mean = parser.add_argument_group(
        "ensemble (two deblurrers of any architectures, their outputs averaged)"
    )
    mean.add_argument(
        "--average-with",
        metavar="MODEL",
        help="another deblurrer: a pretrained name (realblur-dbgan) or a .ckpt/.safetensors; "
        "exports one net whose output is the weighted mean of the checkpoint's and MODEL's",
    )
    mean.add_argument(
        "--weight",
        type=float,
        metavar="W",
        help="with --average-with: the checkpoint's share of the mean, in (0, 1) (default 0.5)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    parser.add_argument("--debug", action="store_true", help="full tracebacks for errors")
    add_generator_options(
        parser, ".ckpt from training, or an exported .safetensors; without it, the packaged model"
    )
    return parser


def _blend_options_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with --start/--alpha/--val-dir/--average-with together, or None."""
    if args.average_with is None and args.weight is not None:
        return "--weight is the checkpoint's share of an ensemble: pass --average-with MODEL"
    if args.average_with is not None:
        if args.start is not None:
            return (
                "--start and --average-with together: export the interpolated net first, then "
                "pass that file as the checkpoint of --average-with"
            )
        if args.weight is not None and not 0.0 < args.weight < 1.0:  # also refuses nan
            return f"--weight {args.weight}: use a share strictly between 0 and 1 (e.g. 0.5)"
    if args.start is None:
        if args.alpha is not None or args.val_dir is not None:
            return "--alpha and --val-dir interpolate towards --start: pass --start MODEL"
        return None
    if args.alpha is None:
        return "--start: pass --alpha A (1 exports the checkpoint as it is, 0 the start)"
    bad = [a for a in args.alpha if not 0.0 <= a <= 1.0]
    if bad:
        return f"--alpha {bad[0]}: use values in [0, 1]"
    if len(args.alpha) > 1 and args.val_dir is None:
        return "several --alpha values: pass --val-dir DIR to pick the best on it"
    if args.max_loss is not None:
        if args.val_dir is None:
            return "--max-loss is checked on --val-dir: pass --val-dir DIR"
        if not args.max_loss >= 0.0:  # also refuses nan
            return f"--max-loss {args.max_loss}: use a loss in dB >= 0 (e.g. 0.3)"
    if args.val_dir is not None:
        for sub in ("blur", "sharp"):
            if not (args.val_dir / sub).is_dir():
                return f"--val-dir {args.val_dir}: no {sub}/ folder in it; pass a paired folder"
    return None


def _check_start(start: nn.Module, net: nn.Module, args: argparse.Namespace) -> None:
    """Refuse a ``--start`` other than the weights training recorded it fine-tuned from.

    Interpolating from other weights of the same shape (an older packaged model, another run)
    would silently export a net on no line through the fine-tuning. Files from before training
    recorded its start carry no record and are not checked.
    """
    from realblur_gan.weights.interpolation import MismatchedNets, weights_fingerprint

    record = getattr(net, "init_source", None) or {}
    expected = record.get("fingerprint")
    if not expected or weights_fingerprint(start.state_dict()) == expected:
        return
    raise MismatchedNets(
        f"--start {args.start}: not the weights the checkpoint was fine-tuned from (its "
        f"training started from {record.get('source', '?')!r}, weights {expected[:12]}..., "
        "which have changed since or are another file); pass those weights as --start"
    )


def _interpolated(net: nn.Module, args: argparse.Namespace) -> nn.Module:
    """``net`` moved towards ``--start`` by the given (or the validation-picked) ``--alpha``."""
    from realblur_gan.weights.interpolation import MismatchedNets, interpolate_nets
    from realblur_gan.weights.model_zoo import load_model

    try:
        start = load_model(args.start, args.net)
    except UserError as err:  # name the option: the checkpoint is loaded from another one
        raise UserError(f"--start {err}") from None
    _check_start(start, net, args)
    try:
        candidates = {a: interpolate_nets(start, net, a) for a in dict.fromkeys(args.alpha)}
    except MismatchedNets as err:
        raise MismatchedNets(
            f"--start {args.start}: {err}; pass the weights it started from"
        ) from None
    if args.val_dir is None:
        (alpha,) = candidates
    else:
        scores = _score_alphas(candidates, args.val_dir, args.tile)
        alpha, note = pick_alpha(scores, args.max_loss)
        _write_sweep(args.out / "interpolation.csv", scores, alpha)
        for a, (n, mean, gain, worst) in scores.items():
            mark = "  <- exported" if a == alpha else ""
            print(
                f"alpha {a:g}: {n} images, PSNR {mean:.2f} dB ({gain:+.2f} vs blurry input, "
                f"worst image {worst:+.2f}){mark}"
            )
        if note:
            print(note)
    print(f"interpolated {alpha:g} of the way from {args.start} to the checkpoint")
    chosen = candidates[alpha]
    chosen.interpolation = {"start": str(args.start), "alpha": alpha}
    if args.max_loss is not None:
        chosen.interpolation["max_loss"] = args.max_loss
    return chosen


def _averaged(net: nn.Module, args: argparse.Namespace) -> nn.Module:
    """One net whose output is ``w * net(x) + (1 - w) * other(x)``, ``other`` --average-with's."""
    from realblur_gan.nets.ensemble import OutputAverage
    from realblur_gan.nets.init import net_channels
    from realblur_gan.weights.model_zoo import load_model

    try:
        other = load_model(args.average_with, args.net)
    except UserError as err:  # name the option: the checkpoint is loaded from another one
        raise UserError(f"--average-with {err}") from None
    ours, theirs = net_channels(net), net_channels(other)
    if ours != theirs:
        raise UserError(
            f"--average-with {args.average_with}: maps {theirs}-channel images where the "
            f"checkpoint maps {ours}; pass a deblurrer for the same images"
        )
    weight = 0.5 if args.weight is None else args.weight
    weights = [weight, 1.0 - weight]
    ensemble = OutputAverage([net, other], weights)
    ensemble.net_config = {
        "_target_": f"{OutputAverage.__module__}.{OutputAverage.__name__}",
        "nets": [dict(net.net_config), dict(other.net_config)],
        "weights": weights,
    }
    ensemble.image_channels = ours
    ensemble.eval().requires_grad_(False)
    print(f"averaged: {weight:g} x the checkpoint + {1.0 - weight:g} x {args.average_with}")
    return ensemble


def pick_alpha(
    scores: Mapping[float, tuple[int, float, float, float]], max_loss: float | None = None
) -> tuple[float, str | None]:
    """The alpha to export from a sweep, and a note when no alpha met ``max_loss``.

    Args:
        scores: Per alpha ``(images, mean PSNR, mean gain, worst gain)``, as
            :func:`_score_alphas` returns them.
        max_loss: The most (dB, >= 0) any one image may lose against its blurry input; None
            puts no bound.

    Returns:
        The best mean PSNR (ties: the larger alpha) among the alphas within ``max_loss``; when
        none is, the alpha whose worst image loses least, with a note that says so.
    """
    within = [a for a in scores if max_loss is None or scores[a][3] >= -max_loss]
    if within:
        return max(within, key=lambda a: (scores[a][1], a)), None
    # A bound no alpha meets still deserves an export: the safest one, said out loud.
    safest = max(scores, key=lambda a: (scores[a][3], -a))
    return safest, (
        f"no alpha keeps every image within {max_loss:g} dB of its blurry input: exported "
        f"{safest:g}, whose worst image loses least ({scores[safest][3]:+.2f}); "
        "add a smaller --alpha (0 is the start) to get one that does"
    )


def _score_alphas(
    candidates: Mapping[float, nn.Module], val_dir: Path, tile: int
) -> dict[float, tuple[int, float, float, float]]:
    """Per alpha: images scored, mean PSNR, mean gain over the blurry input, worst gain."""
    from realblur_gan.defaults import DEFAULT_OVERLAP
    from realblur_gan.evaluate import EvaluationError, baseline_methods, evaluate, model_method

    methods = baseline_methods(["identity"], nsr=0.0, iterations=0)  # the blurry input's row
    base_label = methods[0].label
    methods += [model_method(net, f"{a:g}", tile, DEFAULT_OVERLAP) for a, net in candidates.items()]
    result = evaluate(val_dir / "sharp", methods, val_dir / "blur", progress=False)
    by_method: dict[str, dict[str, float]] = {}
    for row in result.rows:
        by_method.setdefault(str(row["method"]), {})[str(row["image"])] = float(row["psnr"])
    base = by_method.get(base_label, {})
    if not base:
        raise EvaluationError(f"--val-dir {val_dir}: no blur/sharp pair could be scored")
    scores = {}
    for a in candidates:
        got = by_method.get(f"{a:g}", {})
        gains = [got[k] - base[k] for k in got if k in base]
        if not gains:
            raise EvaluationError(f"--val-dir {val_dir}: alpha {a:g} scored no image")
        mean = sum(got.values()) / len(got)
        scores[a] = (len(gains), mean, sum(gains) / len(gains), min(gains))
    return scores


def _write_sweep(
    path: Path, scores: Mapping[float, tuple[int, float, float, float]], chosen: float
) -> None:
    lines = ["alpha,images,psnr,gain_vs_input,worst_gain,exported"]
    for a, (n, mean, gain, worst) in scores.items():
        lines.append(f"{a:g},{n},{mean:.4f},{gain:.4f},{worst:.4f},{int(a == chosen)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    cli_logging(args.verbose)
    with contextlib.ExitStack() as owned:  # holds the --out lock until every return
        return _main(args, owned)


def _main(args: argparse.Namespace, owned: contextlib.ExitStack) -> int:
    if args.opset < 17:
        print(f"error: --opset {args.opset}: use 17 or newer", file=sys.stderr)
        return 2
    if args.source is not None and args.checkpoint is not None:
        print("error: pass the checkpoint once: CHECKPOINT or --checkpoint", file=sys.stderr)
        return 2
    problem = _blend_options_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        if args.onnx:  # before anything is written: half an export is no use
            require_extra("onnx", ("onnx", "onnxruntime", "onnxscript"), "--onnx")
        # Before loading anything; one writer per --out.
        owned.enter_context(claim_folder(args.out, "--out", "pass another --out"))
        net = generator_from_options(args, args.source)
        if args.start is not None:
            net = _interpolated(net, args)
        if args.average_with is not None:
            net = _averaged(net, args)
        if args.onnx and not getattr(net, "traceable", True):
            print(
                "error: --onnx: this net (or a member of it) computes differently at each image "
                "size (a local sca_window), which an ONNX trace cannot keep; export without "
                "--onnx (the .safetensors runs in torch)",
                file=sys.stderr,
            )
            return 2
        weights, sidecar = export_safetensors(net, net.net_config, args.out, args.net)
    except (UserError, OSError) as err:
        if debug_requested(args.debug):
            raise
        print(error_text(err), file=sys.stderr)
        return 2
    print(f"wrote {weights} and {sidecar}")
    if args.onnx:
        stride = int(getattr(net, "stride", 1))
        try:
            onnx_path = export_onnx(net, args.out / f"{args.net}.onnx", opset=args.opset)
        except ExportWriteError as err:
            print(error_text(err), file=sys.stderr)
            return 1
        sizes = [(16 * stride, 24 * stride), (13 * stride, 7 * stride)]
        diff = check_onnx(net, onnx_path, sizes)
        sizes_text = ", ".join(f"{h}x{w}" for h, w in sizes)
        if diff > ONNX_TOLERANCE:
            print(
                f"error: {onnx_path}: differs from PyTorch by {diff:.2e} (> {ONNX_TOLERANCE:.0e}) "
                f"at {sizes_text}; try another --opset",
                file=sys.stderr,
            )
            return 1
        print(f"wrote {onnx_path} (max |ONNX - PyTorch| = {diff:.1e} at {sizes_text})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
