"""Time NAFNet forward+backward on the CPU: LayerNorm implementation x memory format, vs the U-Net.

Prints a markdown table of median milliseconds per forward+backward (batch 4, float32, after
warm-up) at each ``--sizes`` side, for the default-config DBGAN NAFNet
(``conf/model/nafnet.yaml``) with each :class:`~realblur_gan.nets.nafnet.LayerNorm2d`
implementation and memory format, and the default DBGAN U-Net (``conf/model/default.yaml``) for
comparison. Memory formats: ``contiguous`` (NCHW), ``channels_last`` (weights and input), and
``channels_last input`` (input only, weights left NCHW, which is all a net could do inside its
own ``forward`` without touching its state dict). Variants are run round-robin, so load from
other processes on a shared machine spreads over all of them.

Usage::

    OMP_WAIT_POLICY=PASSIVE python scripts/bench_nafnet.py [--threads 2] [--repeats 5]
"""

from __future__ import annotations

import os

# Must be set before torch loads its OpenMP runtime: spinning idle threads steal the other core.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from realblur_gan.nets.nafnet import LAYER_NORM_IMPLS, LayerNorm2d

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
MEMORY_FORMATS = ("contiguous", "channels_last", "channels_last input")


def dbgan_g(config: str) -> nn.Module:
    """The ``dbgan_g`` net of ``conf/model/<config>.yaml``."""
    cfg = OmegaConf.create({"model": OmegaConf.load(CONF / f"{config}.yaml")})
    return instantiate(cfg.model.dbgan_g)


def step_fn(net: nn.Module, size: int, batch: int, memory: str) -> Callable[[], None]:
    """One forward+backward of ``net`` on a random batch in the given memory format."""
    x = torch.rand(batch, 3, size, size)
    if memory != "contiguous":
        x = x.contiguous(memory_format=torch.channels_last)
    if memory == "channels_last":
        net = net.to(memory_format=torch.channels_last)

    def step() -> None:
        net.zero_grad(set_to_none=True)
        net(x).square().mean().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows: list[tuple[str, str, str, Callable[[], nn.Module]]] = []
    for impl in LAYER_NORM_IMPLS:
        for memory in MEMORY_FORMATS:

            def build(impl: str = impl) -> nn.Module:
                net = dbgan_g("nafnet")
                for module in net.modules():
                    if isinstance(module, LayerNorm2d):
                        module.impl = impl
                return net

            rows.append(("NAFNet (conf/model/nafnet.yaml)", impl, memory, build))
    rows.append(("UNet (conf/model/default.yaml)", "-", "contiguous", lambda: dbgan_g("default")))

    nets = [build() for *_, build in rows]
    params = [sum(p.numel() for p in net.parameters()) for net in nets]
    times: dict[tuple[int, int], list[float]] = {}
    for size in args.sizes:
        steps = [
            step_fn(net, size, args.batch, memory)
            for net, (_, _, memory, _) in zip(nets, rows, strict=True)
        ]
        for step in steps:
            for _ in range(args.warmup):
                step()
        # Round-robin: a burst of load from elsewhere slows one repeat of every variant.
        for _ in range(args.repeats):
            for i, step in enumerate(steps):
                start = time.perf_counter()
                step()
                times.setdefault((i, size), []).append(time.perf_counter() - start)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
        f"float32 CPU, median of {args.repeats} after {args.warmup} warm-up, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}\n"
    )
    sizes = " | ".join(f"ms fwd+bwd {s}²" for s in args.sizes)
    print(f"| net | LayerNorm | memory format | params | {sizes} |")
    print("|---|---|---|---:|" + "---:|" * len(args.sizes))
    for i, (name, impl, memory, _) in enumerate(rows):
        ms = " | ".join(f"{1000 * statistics.median(times[i, s]):.0f}" for s in args.sizes)
        print(f"| {name} | {impl} | {memory} | {params[i]:,} | {ms} |")


if __name__ == "__main__":
    main()
