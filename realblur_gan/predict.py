"""Deblur photos with a trained DBGAN generator: any size, any mode, bounded memory.

The generator is rebuilt from the checkpoint alone: training stores each net's resolved Hydra
config in ``checkpoint["net_configs"]``, and :func:`load_generator` instantiates it, allowing only
``nn.Module`` classes from ``realblur_gan.nets`` (a downloaded file must not name arbitrary
callables). Exported ``.safetensors`` weights (see :mod:`realblur_gan.export`) load the same way.

:func:`deblur_image` reflect-pads an image to the net's ``stride`` multiple and, for large
images, runs overlapping tiles one at a time, blending them with a raised-cosine window into an
output buffer, so memory is bounded by the tile size rather than the image size.

Example::

    python -m realblur_gan.predict outputs/joint/.../last.ckpt photos/ --out restored/
"""

from __future__ import annotations

import argparse
import glob
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from realblur_gan.checkpoints import CheckpointError, check_finite, load_checkpoint
from realblur_gan.data.io import (
    IMAGE_EXTENSIONS,
    ImageFolderError,
    ImageReadError,
    list_images,
    read_image,
    to_channels,
    write_image,
)
from realblur_gan.errors import UserError, debug_requested, error_text, writable_dir
from realblur_gan.nets.padding import pad_to_multiple

logger = logging.getLogger(__name__)

__all__ = [
    "ALLOWED_TARGET_PREFIX",
    "InputError",
    "NetConfigError",
    "check_net_config",
    "deblur_image",
    "load_generator",
    "net_channels",
    "pick_device",
    "predict_files",
    "read_net_config",
    "resolve_inputs",
]

ALLOWED_TARGET_PREFIX = "realblur_gan.nets."
EMA_SUFFIX = "_ema"
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32
_GLOB_CHARS = frozenset("*?[")


class NetConfigError(CheckpointError):
    """A net config is missing, unreadable, or names something other than a realblur_gan net."""


class InputError(UserError, ValueError):
    """An INPUT argument matches no image; the message names it and the fix."""


# --------------------------------------------------------------------------------------------------
# Loading a generator
# --------------------------------------------------------------------------------------------------


def _targets(node: Any) -> Iterator[Any]:
    """Every ``_target_`` value in a nested config, depth first."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "_target_":
                yield value
            else:
                yield from _targets(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _targets(value)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _strings(value)


def check_net_config(config: Mapping[str, Any], source: str | os.PathLike[str]) -> None:
    """Refuse a net config that could build anything other than a realblur_gan net.

    Every ``_target_`` (nested ones included) must name an ``nn.Module`` subclass defined in
    ``realblur_gan.nets``: checking the prefix alone is not enough, since
    ``realblur_gan.nets.init.torch.load`` starts with it. Interpolations (``${...}``) are refused
    too: a resolved config has none, and resolvers could read the environment.

    Args:
        config: the net's config, a plain dict with ``_target_``.
        source: the file it came from, for the message.

    Raises:
        NetConfigError: when anything is outside the allowed set.
    """
    if not isinstance(config, Mapping) or "_target_" not in config:
        raise NetConfigError(
            f"{source}: net config has no '_target_'; pass a realblur_gan net config"
        )
    from hydra.utils import get_object

    for target in _targets(config):
        refusal = (
            f"{source}: refusing _target_ {target!r}: only nn.Module classes under "
            f"{ALLOWED_TARGET_PREFIX} may be built from a file; fix or replace the net config"
        )
        if not isinstance(target, str) or not target.startswith(ALLOWED_TARGET_PREFIX):
            raise NetConfigError(refusal)
        if any(not part.isidentifier() or part.startswith("_") for part in target.split(".")):
            raise NetConfigError(refusal)
        try:
            obj = get_object(target)
        except Exception:
            raise NetConfigError(refusal) from None
        module = getattr(obj, "__module__", "") or ""
        if not (
            isinstance(obj, type)
            and issubclass(obj, nn.Module)
            and module.startswith(ALLOWED_TARGET_PREFIX)
        ):
            raise NetConfigError(refusal)
    for text in _strings(config):
        if "${" in text:
            raise NetConfigError(
                f"{source}: net config holds an interpolation {text!r}; pass a resolved config"
            )


def read_net_config(path: str | os.PathLike[str], net: str = "dbgan_g") -> dict[str, Any]:
    """Read a net config from ``.json`` or ``.yaml``.

    The file may be the net's own config (a mapping with ``_target_``, as :mod:`realblur_gan.export`
    writes) or a whole model config such as ``conf/model/default.yaml`` holding ``net`` as a key;
    its ``${model.*}`` interpolations are resolved within that file.

    Args:
        path: config file.
        net: key of the net in a model config.

    Returns:
        A plain, resolved config dict.

    Raises:
        NetConfigError: missing, unparsable, or without a config for ``net``.
    """
    path = Path(path)
    if not path.is_file():
        raise NetConfigError(f"{path}: net config not found; check --net-config")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
        else:
            from omegaconf import OmegaConf

            from realblur_gan.config import register_resolvers

            register_resolvers()
            # Model configs interpolate ``${model.x}``: resolve them as if mounted at ``model``.
            root = OmegaConf.create({"model": OmegaConf.load(path)})
            data = OmegaConf.to_container(root, resolve=True)["model"]
    except Exception as err:
        text = " ".join(str(err).split())[:160]
        raise NetConfigError(
            f"{path}: cannot parse the net config ({text}); fix the file"
        ) from None
    if isinstance(data, Mapping) and "_target_" not in data:
        # An EMA copy is built like its net: dbgan_g_ema from the dbgan_g entry.
        for key in (net, net.removesuffix(EMA_SUFFIX)):
            if isinstance(data.get(key), Mapping):
                data = data[key]
                break
    if not isinstance(data, Mapping) or "_target_" not in data:
        raise NetConfigError(
            f"{path}: holds no '_target_' config for '{net}'; pass the model config the "
            "checkpoint was trained with (e.g. conf/model/default.yaml)"
        )
    return dict(data)


def _load_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import safe_open

    if not path.is_file():
        raise CheckpointError(f"{path}: weights not found; run python -m realblur_gan.export first")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
            metadata = handle.metadata() or {}
    except Exception as err:
        text = " ".join(str(err).split())[:160]
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({text}); re-export it"
        ) from None
    return state, metadata


def _image_channels(config: Mapping[str, Any]) -> int | None:
    """The image channels a config's net maps (its ``out_channels``, or its wrapped net's)."""
    if isinstance(config.get("out_channels"), int):
        return config["out_channels"]
    inner = config.get("net")
    return _image_channels(inner) if isinstance(inner, Mapping) else None


def load_generator(
    path: str | os.PathLike[str],
    net: str = "dbgan_g",
    net_config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
    ema: bool = True,
) -> nn.Module:
    """Rebuild a trained generator from a Lightning checkpoint or an exported ``.safetensors``.

    Args:
        path: a ``.ckpt`` written by training, an exported ``<net>.safetensors`` (its config is
            read from ``<net>.json`` beside it or from the file's metadata), or the export folder.
        net: which net to load (``dbgan_g`` deblurs; ``bgan_g`` blurs).
        net_config: the net's config (dict or ``.yaml``/``.json`` path) for files that carry none,
            e.g. checkpoints written before training stored ``net_configs``.
        ema: when a checkpoint also holds the net's moving average (``dbgan_g_ema``, what
            validation scores), load that; False loads the raw weights.

    Returns:
        The net on the CPU, in eval mode, with gradients off, and two attributes:
        ``image_channels`` (the channels it maps) and ``net_config`` (the config it was built
        from).

    Raises:
        CheckpointError: unreadable file, missing weights, or weights that do not fit.
        NetConfigError: no config, or one that names anything outside ``realblur_gan.nets``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / f"{net}.safetensors"
    config: Any = net_config
    source: str | os.PathLike[str] = path
    if isinstance(net_config, str | os.PathLike):
        source = net_config
        config = read_net_config(net_config, net)
    if path.suffix == ".safetensors":
        state, metadata = _load_safetensors(path)
        if config is None:
            sidecar = path.with_suffix(".json")
            if sidecar.is_file():
                source, config = sidecar, read_net_config(sidecar, net)
            elif "net_config" in metadata:
                config = json.loads(metadata["net_config"])
    else:
        # Finiteness is checked below, on the one net loaded.
        blob = load_checkpoint(path, finite=False)
        full = blob.get("state_dict", blob)
        found = sorted({str(k).split(".", 1)[0] for k in full})
        if ema and not net.endswith(EMA_SUFFIX) and f"{net}{EMA_SUFFIX}" in found:
            net = f"{net}{EMA_SUFFIX}"
            logger.info("%s: using the EMA weights %s", path, net)
        if net not in found:
            raise CheckpointError(f"{path}: has no '{net}' weights (it holds {found}); pick --net")
        prefix = f"{net}."
        state = {k.removeprefix(prefix): v for k, v in full.items() if k.startswith(prefix)}
        if config is None:
            configs = blob.get("net_configs") or {}
            config = configs.get(net) or configs.get(net.removesuffix(EMA_SUFFIX))
    # NaN/Inf weights would restore every image as black without any error.
    check_finite(state, path, None)
    if config is None:
        raise NetConfigError(
            f"{path}: holds no config for '{net}'; pass --net-config with the model config it "
            "was trained with (e.g. conf/model/default.yaml)"
        )
    config = dict(config)
    check_net_config(config, source)
    from hydra.utils import instantiate

    try:
        model = instantiate(config)
    except Exception as err:
        text = " ".join(str(err).split())[:200]
        raise NetConfigError(f"{source}: cannot build '{net}' from its config ({text})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0][:200]
        raise CheckpointError(
            f"{path}: '{net}' weights do not fit its config ({first}); pass the model config "
            "the checkpoint was trained with"
        ) from None
    model.image_channels = _image_channels(config) or net_channels(model)
    model.net_config = config  # what it was built from, for re-export
    model.eval().requires_grad_(False)
    logger.info("loaded %s (%s) from %s", net, config["_target_"], path)
    return model


# --------------------------------------------------------------------------------------------------
# Inference on one image
# --------------------------------------------------------------------------------------------------


def net_channels(net: nn.Module) -> int:
    """The image channels ``net`` maps: its ``image_channels`` attribute, else its first conv's.

    Args:
        net: a generator.
    """
    channels = getattr(net, "image_channels", None)
    if isinstance(channels, int):
        return channels
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ValueError(f"cannot tell the input channels of {type(net).__name__}; set image_channels")


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` is CUDA when available, else the CPU; otherwise ``torch.device(name)``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available; use --device cpu")
    return device


def _run(net: nn.Module, x: Tensor, device: torch.device, bf16: bool) -> Tensor:
    """One forward pass on ``device``; the result comes back as float32 where ``x`` lives."""
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        out = net(x.to(device, non_blocking=True))
    return out.float().to(x.device)


def _grid(length: int, tile: int, overlap: int, stride: int) -> tuple[list[int], int]:
    """Tile origins and tile size covering ``length`` with at least ``overlap`` shared pixels.

    Uses the fewest tiles of at most ``tile`` pixels, then shrinks them to spread the overlap
    evenly: a 720-pixel side takes two 376-pixel tiles rather than 512 + a 512 that is almost
    all overlap. Origins are multiples of ``stride``. Neighbours are kept more than
    ``overlap // 4`` apart so that every pixel gets a positive blend weight (see :func:`_ramp`);
    on small images that can make a tile slightly larger than ``tile``.
    """
    count = math.ceil((length - overlap) / (tile - overlap)) if length > tile else 1
    while count > 1:
        size = math.ceil((length + (count - 1) * overlap) / count / stride) * stride
        while True:
            starts = [i * (length - size) // (count - 1) // stride * stride for i in range(count)]
            if all(a + size - b >= overlap for a, b in pairwise(starts)):
                break
            size += stride
        if all(b - a > overlap // 4 for a, b in pairwise(starts)):
            return starts, size
        count -= 1
    return [0], length


def _ramp(overlap: int) -> Tensor:
    """Blend weights across an overlap, rising from 0 to 1.

    Zero over the first quarter (the pixels next to a tile's inner edge, which saw the net's zero
    padding instead of the neighbouring content), a raised-cosine ramp over the middle half, one
    over the last quarter. Two neighbours' ramps sum to one where tiles are a regular step apart.
    """
    margin = overlap // 4
    length = overlap - 2 * margin
    t = (torch.arange(length, dtype=torch.float32) + 0.5) / length
    rise = 0.5 - 0.5 * torch.cos(math.pi * t)
    return torch.cat([torch.zeros(margin), rise, torch.ones(margin)])


def _window(start: int, size: int, total: int, overlap: int) -> Tensor:
    """1-D weights of one tile: ramps at the edges shared with a neighbour, flat at the image's."""
    weights = torch.ones(size)
    if overlap == 0:
        return weights
    ramp = _ramp(overlap)
    if start > 0:
        weights[:overlap] = torch.minimum(weights[:overlap], ramp)
    if start + size < total:
        weights[-overlap:] = torch.minimum(weights[-overlap:], ramp.flip(0))
    return weights


@torch.inference_mode()
def deblur_image(
    net: nn.Module,
    image: Tensor,
    tile: int | None = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    *,
    bf16: bool = False,
) -> Tensor:
    """Run a generator on an image of any size, in overlapping tiles when it is large.

    The image is reflect-padded to the net's ``stride`` multiple (and cropped back). Larger than
    ``tile``, it is cut into tiles of at most ``tile`` pixels sharing at least ``overlap`` pixels
    (:func:`_grid`), run one at a time and blended (:func:`_ramp`) into a float32 buffer beside
    the input, so memory grows with the tile, not the image. Tile origins are multiples of the
    stride, so a U-Net sees the same down-sampling grid as on the whole image. The result equals
    the untiled one wherever the net's receptive-field radius is at most ``overlap // 4``; beyond
    that the blend hides the seams (measured: max 1e-3 for a random U-Net of depth 2, tile 64,
    overlap 32).

    Gray images through a colour net are replicated to RGB and converted back (BT.601 luma), and
    vice versa. The computation runs on the net's device; the result returns to the image's.

    Args:
        net: generator in eval mode with a ``stride`` attribute (1 when absent).
        image: images in [0, 1], 1 or 3 channels.
        tile: tile side in pixels (rounded up to the stride); None runs the whole image at once.
        overlap: pixels shared by neighbouring tiles (rounded up to the stride), at most
            ``tile // 2``.
        bf16: bfloat16 autocast (CUDA only; ignored with a warning on the CPU).

    Returns:
        The restored images in [0, 1], float32.

    Shape:
        - image: :math:`(B, C, H, W)`, usually B = 1
        - output: :math:`(B, C, H, W)`

    Example:
        >>> from realblur_gan.nets import UNet
        >>> net = UNet(width=4, depth=2).eval()
        >>> deblur_image(net, torch.rand(1, 3, 37, 50), tile=32, overlap=8).shape
        torch.Size([1, 3, 37, 50])
    """
    if image.ndim != 4:
        raise ValueError(f"image must be (B, C, H, W), got shape {tuple(image.shape)}")
    stride = int(getattr(net, "stride", 1))
    try:
        device = next(net.parameters()).device
    except StopIteration:
        device = image.device
    if bf16 and device.type != "cuda":
        logger.warning("bf16 autocast is for CUDA; running float32 on %s", device)
        bf16 = False
    channels_in = image.shape[1]
    channels_net = net_channels(net)
    x = image.float()
    if channels_in != channels_net:
        x = to_channels(x, channels_net)
    h, w = x.shape[-2:]
    x = pad_to_multiple(x, stride)
    hp, wp = x.shape[-2:]

    if tile is None or (hp <= tile and wp <= tile):
        out = _run(net, x, device, bf16)
    else:
        tile = math.ceil(tile / stride) * stride
        overlap = math.ceil(overlap / stride) * stride
        if not 0 <= overlap <= tile // 2:
            raise ValueError(f"overlap must be in [0, tile / 2] = [0, {tile // 2}], got {overlap}")
        tops, th = _grid(hp, tile, overlap, stride)
        lefts, tw = _grid(wp, tile, overlap, stride)
        out = torch.zeros(x.shape[0], channels_net, hp, wp, device=x.device)
        weight = torch.zeros(hp, wp, device=x.device)
        for top in tops:
            wy = _window(top, th, hp, overlap).to(x.device)
            for left in lefts:
                win = wy[:, None] * _window(left, tw, wp, overlap).to(x.device)[None, :]
                pred = _run(net, x[..., top : top + th, left : left + tw], device, bf16)
                out[..., top : top + th, left : left + tw].addcmul_(pred, win)
                weight[top : top + th, left : left + tw].add_(win)
        out = out.div_(weight.clamp_min_(1e-8))
    out = out[..., :h, :w]
    if channels_in != channels_net:
        out = to_channels(out, channels_in)
    return out.clamp_(0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def _glob_root(pattern: str) -> Path:
    """The folder before the first wildcard of a glob, to keep sub-folders in the output."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path()


def resolve_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[tuple[Path, Path]]:
    """Expand INPUT arguments (files, folders searched recursively, globs) to images.

    Args:
        inputs: the command line's INPUT arguments.

    Returns:
        ``(source, relative output path)`` pairs: a folder's images keep their sub-folders, a
        glob's keep their path below its fixed prefix, a file keeps its name.

    Raises:
        InputError: an argument matches no image.
    """
    found: dict[Path, Path] = {}
    for item in inputs:
        text = str(item)
        path = Path(text)
        pairs: list[tuple[Path, Path]]
        if path.is_dir():
            try:
                pairs = [(p, p.relative_to(path)) for p in list_images(path)]
            except ImageFolderError as err:
                raise InputError(str(err)) from None
        elif path.is_file():
            pairs = [(path, Path(path.name))]
        elif path.exists():
            raise InputError(f"{text}: not a regular file (a FIFO, device or socket); pass images")
        elif _GLOB_CHARS & set(text):
            root = _glob_root(text)
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            images = [p for p in matches if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
            if not images:
                raise InputError(f"{text}: the pattern matches no image; check it (quote it)")
            pairs = [(p, p.relative_to(root)) for p in images]
        else:
            raise InputError(f"{text}: no such file or folder; check the path")
        for source, rel in pairs:
            if rel in found and found[rel] != source:
                logger.warning("%s: same output name as %s, skipped", source, found[rel])
                continue
            found[rel] = source
    return [(source, rel) for rel, source in found.items()]


@dataclass
class PredictReport:
    """Tally of a prediction run."""

    written: int = 0
    existing: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, out: Path | str) -> str:
        return (
            f"realblur-deblur: {self.written} written, {self.existing} already done, "
            f"{len(self.failed)} failed in {self.seconds:.1f} s -> {out}"
        )


def predict_files(
    net: nn.Module,
    jobs: Sequence[tuple[Path, Path]],
    out_dir: str | os.PathLike[str],
    tile: int | None = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    *,
    bf16: bool = False,
    overwrite: bool = False,
    suffix: str | None = None,
    progress: bool = True,
) -> PredictReport:
    """Deblur image files into ``out_dir``, in each input's mode, bit depth and alpha.

    Outputs that exist are skipped unless ``overwrite``; an unreadable input is logged and
    skipped, so one bad file does not stop a long run.

    Args:
        net: the generator (see :func:`load_generator`), on the device to use.
        jobs: ``(source, relative output path)`` pairs from :func:`resolve_inputs`.
        out_dir: output folder.
        tile: see :func:`deblur_image`.
        overlap: see :func:`deblur_image`.
        bf16: see :func:`deblur_image`.
        overwrite: redo outputs that exist.
        suffix: output extension (e.g. ``".png"``); None keeps the input's.
        progress: show a progress bar.

    Returns:
        The counts, failures and time.
    """
    out_dir = Path(out_dir)
    report = PredictReport()
    start = time.perf_counter()
    bar = tqdm(jobs, desc="deblur", unit="img", disable=not progress or None, file=sys.stderr)
    for source, rel in bar:
        target = out_dir / rel
        if suffix is not None:
            target = target.with_suffix(suffix)
        if target.exists() and not overwrite:
            report.existing += 1
            continue
        try:
            image, info = read_image(source)
            restored = deblur_image(net, image[None], tile, overlap, bf16=bf16)
        except ImageReadError as err:
            logger.warning("skipped: %s", err)
            report.failed.append(str(err))
            continue
        except Exception as err:  # one failing image must not end a long run
            logger.debug("%s failed", source, exc_info=True)
            message = f"{source}: {type(err).__name__}: {' '.join(str(err).split())[:200]}"
            logger.warning("skipped: %s", message)
            report.failed.append(message)
            continue
        try:
            write_image(target, restored[0], info)
        except OSError as err:
            # The output side is broken (full, read-only, gone): every further image would fail
            # the same way, so stop and say it once.
            report.failed.append(
                f"{target}: cannot write ({err.strerror or err}); check {out_dir} (free space, "
                f"permissions); stopped after {report.written} written"
            )
            break
        report.written += 1
    report.seconds = time.perf_counter() - start
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="realblur-deblur",
        description="Deblur images with a trained DBGAN generator.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("checkpoint", type=Path, help=".ckpt from training, or an export")
    parser.add_argument("inputs", nargs="+", help="image files, folders (recursive) or globs")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE, help="tile side; 0 = no tiles")
    parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP, help="tile overlap (px)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast on CUDA")
    parser.add_argument("--net", default="dbgan_g", help="net inside the checkpoint")
    parser.add_argument(
        "--no-ema", action="store_true", help="use the raw weights even if an EMA copy exists"
    )
    parser.add_argument(
        "--net-config",
        type=Path,
        default=None,
        help="net/model config (.yaml/.json) if the checkpoint holds none",
    )
    parser.add_argument(
        "--ext", default=None, help="output extension, e.g. .png (default: input's)"
    )
    parser.add_argument("--overwrite", action="store_true", help="redo outputs that exist")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--debug", action="store_true", help="full tracebacks for errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``realblur-deblur``); returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    suffix = None
    if args.ext:
        suffix = args.ext if args.ext.startswith(".") else f".{args.ext}"
        if suffix.lower() not in IMAGE_EXTENSIONS:
            print(
                f"error: --ext {args.ext}: use one of {sorted(IMAGE_EXTENSIONS)}", file=sys.stderr
            )
            return 2
    if args.tile < 0 or args.overlap < 0 or (args.tile and args.overlap > args.tile // 2):
        print(
            f"error: --tile {args.tile} --overlap {args.overlap}: need 0 <= overlap <= tile / 2",
            file=sys.stderr,
        )
        return 2
    try:
        device = pick_device(args.device)
        jobs = resolve_inputs(args.inputs)
        writable_dir(args.out)  # before any model is loaded or image deblurred
        net = load_generator(args.checkpoint, args.net, args.net_config, not args.no_ema)
        net = net.to(device)
    except (UserError, ValueError) as err:
        if debug_requested(args.debug):
            raise
        print(error_text(err), file=sys.stderr)
        return 2
    report = predict_files(
        net,
        jobs,
        args.out,
        tile=args.tile or None,
        overlap=args.overlap,
        bf16=args.bf16,
        overwrite=args.overwrite,
        suffix=suffix,
    )
    for line in report.failed:
        print(f"error: {line}", file=sys.stderr)
    print(report.summary(args.out))
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
