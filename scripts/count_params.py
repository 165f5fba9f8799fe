"""Print a markdown table of parameter counts and forward GFLOPs for every network.

Nets are built on the ``meta`` device, so nothing is allocated or computed: the table for the
paper-size nets takes about a second on any machine. FLOPs are counted by
``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matmuls; one multiply-add = 2
FLOPs) for one image of ``--size``² pixels.

Usage:
    python scripts/count_params.py [--size 256] [--model-configs conf/model]
"""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from realblur_gan.nets import (
    MultiScaleGenerator,
    MultiScalePatchGAN,
    NoiseInjection,
    PatchGAN,
    ResNetGenerator,
    UNet,
)

log = logging.getLogger("count_params")

# (label, builder, input channels); RGB images, the BGAN generators with one noise channel.
BUILTIN: list[tuple[str, Callable[[], nn.Module], int]] = [
    ("UNet default (DBGAN)", lambda: UNet(), 3),
    ("UNet default (BGAN, +1 noise ch)", lambda: UNet(in_channels=4), 4),
    ("ResNetGenerator default (9 blocks)", lambda: ResNetGenerator(), 3),
    (
        "ResNetGenerator paper BGAN (9 blocks, +1 noise ch)",
        lambda: ResNetGenerator(in_channels=4, n_blocks=9),
        4,
    ),
    ("ResNetGenerator paper DBGAN (16 blocks)", lambda: ResNetGenerator(n_blocks=16), 3),
    ("MultiScaleGenerator default (3 scales x ResNet 64w/6 blocks)", MultiScaleGenerator, 3),
    (
        "MultiScaleGenerator, 3 scales x UNet default",
        lambda: MultiScaleGenerator(scale_net=functools.partial(UNet)),
        3,
    ),
    ("PatchGAN default (70x70)", PatchGAN, 3),
    ("PatchGAN conditional (pix2pix pre-training)", lambda: PatchGAN(cond_channels=3), 3),
    ("MultiScalePatchGAN default (2 scales)", MultiScalePatchGAN, 3),
]


def measure(build: Callable[[], nn.Module], in_channels: int, size: int) -> tuple[int, float]:
    """Parameter count and forward GFLOPs of a net on one ``size``² image.

    Args:
        build: constructs the net (called under the ``meta`` device).
        in_channels: channels of the input image the net is called with.
        size: image side in pixels (rounded up to the net's stride).

    Returns:
        ``(parameters, gflops)``.
    """
    with torch.device("meta"):
        net = build()
        stride = getattr(net, "stride", 1)
        side = -(-size // stride) * stride
        x = torch.empty(1, in_channels, side, side)
        cond_channels = _cond_channels(net)
        cond = torch.empty(1, cond_channels, side, side) if cond_channels else None
        params = sum(p.numel() for p in net.parameters())
        with FlopCounterMode(display=False) as counter:
            net(x) if cond is None else net(x, cond)
    return params, counter.get_total_flops() / 1e9


def _cond_channels(net: nn.Module) -> int:
    if isinstance(net, MultiScalePatchGAN):
        return net.discriminators[0].cond_channels
    return getattr(net, "cond_channels", 0)


def _input_channels(net: nn.Module) -> int:
    # The channels the caller feeds: NoiseInjection adds its own noise channels.
    inner = net.net if isinstance(net, NoiseInjection) else net
    first = next(m for m in inner.modules() if isinstance(m, nn.Conv2d))
    extra = net.channels if isinstance(net, NoiseInjection) else 0
    return first.in_channels - extra - _cond_channels(inner)


def config_rows(config_dir: Path) -> list[tuple[str, Callable[[], nn.Module], int]]:
    """Rows for every net (``_target_`` node) of every ``conf/model/*.yaml``.

    Args:
        config_dir: folder with the model configs.

    Returns:
        ``(label, builder, input channels)`` per net.
    """
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    rows = []
    for path in sorted(config_dir.glob("*.yaml")):
        model = OmegaConf.create({"model": OmegaConf.load(path)}).model
        for key, node in model.items():
            if not (OmegaConf.is_dict(node) and "_target_" in node):
                continue
            try:
                with torch.device("meta"):
                    channels = _input_channels(instantiate(node))
            except Exception as err:  # a broken config should not hide the other rows
                log.warning("skipping %s:%s: %s", path.name, key, err)
                continue
            rows.append(
                (f"conf/model/{path.name}: {key}", functools.partial(instantiate, node), channels)
            )
    return rows


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument(
        "--model-configs",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "conf" / "model",
        help="folder of model configs to add rows for (skipped when missing)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = list(BUILTIN)
    if args.model_configs.is_dir():
        rows += config_rows(args.model_configs)
    print(f"| net | input | params (M) | GFLOPs @ {args.size}² |")
    print("|---|---|---:|---:|")
    for label, build, channels in rows:
        params, gflops = measure(build, channels, args.size)
        print(f"| {label} | {channels} ch | {params / 1e6:.2f} | {gflops:.1f} |")
    print()
    print(
        "For comparison, pix2pix's U-Net256 generator (`unet_256`, 64 filters) has 54.4 M params."
    )


if __name__ == "__main__":
    main()
