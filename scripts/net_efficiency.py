"""The cost of each shipped DBGAN generator: parameters and FLOPs per megapixel, as a table.

One row per ``conf/model/*.yaml`` (its ``dbgan_g``) and one for the packaged model (the config
stored in its weights), so that the packaged generator can be chosen on quality per second:
``--scores`` adds a column of generalisation scores from a JSON file (``{"default": 1.27,
...}``, keyed by the config's stem, ``packaged`` for the packaged model), and ``--time`` measures
milliseconds per megapixel on this machine (``realblur_gan.inference.tiling.deblur_image`` as
``realblur-deblur`` runs it) next to the float32 matmul rate timed around it.

FLOPs are counted by ``torch.utils.flop_counter`` on meta tensors (nothing is computed; a
multiply-add is 2 FLOPs) for one 1280x720 frame, padded to the net's stride, divided by its
megapixels: :func:`gflop_per_megapixel` does it for any net config.

Usage::

    python scripts/net_efficiency.py [--scores scores.json] [--time] [--model-configs conf/model]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
FRAME = (720, 1280)
# Published anchors the issue compares against (not measured here).
ANCHORS = [
    ("NAFNet width 16 (reference)", 4.35, 2 * 146 / (1920 * 1200 / 1e6)),
]


def _net(config: Mapping[str, Any] | nn.Module, device: str | torch.device) -> nn.Module:
    if isinstance(config, nn.Module):
        return config
    from realblur_gan.weights.net_configs import build_net

    with torch.device(device):
        return build_net(dict(config), "net config", "dbgan_g")


def gflop_per_megapixel(
    config: Mapping[str, Any] | nn.Module, height: int = FRAME[0], width: int = FRAME[1]
) -> float:
    """Forward FLOPs per megapixel of a generator, GFLOP/MP.

    Args:
        config: a net config (a resolved ``_target_`` mapping, e.g. from
            :func:`realblur_gan.weights.net_configs.read_net_config`) or a built net.
        height: rows of the image it is counted on (padded to the net's stride).
        width: columns likewise.

    Returns:
        FLOPs of one pass over the image divided by its (unpadded) megapixels.
    """
    from realblur_gan.nets.init import net_channels

    net = (
        copy.deepcopy(config).to("meta") if isinstance(config, nn.Module) else _net(config, "meta")
    )
    stride = int(getattr(net, "stride", 1))
    h, w = -(-height // stride) * stride, -(-width // stride) * stride
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.empty(1, net_channels(net), h, w, device="meta"))
    return counter.get_total_flops() / 1e9 / (height * width / 1e6)


def parameter_count(config: Mapping[str, Any] | nn.Module) -> int:
    """Number of parameters of a generator (built on the meta device: nothing allocated)."""
    return sum(p.numel() for p in _net(config, "meta").parameters())


def shipped_configs(model_configs: Path) -> dict[str, dict[str, Any]]:
    """``{name: dbgan_g config}``: every model config's generator, and the packaged model's."""
    from realblur_gan.weights.model_zoo import packaged_model
    from realblur_gan.weights.net_configs import read_net_config

    configs = {p.stem: read_net_config(p, "dbgan_g") for p in sorted(model_configs.glob("*.yaml"))}
    try:
        from safetensors import safe_open

        with safe_open(str(packaged_model()), "pt") as weights:
            configs["packaged"] = json.loads(weights.metadata()["net_config"])
    except Exception as err:  # no packaged model installed: the table has the configs only
        print(f"(no packaged model: {err})", file=sys.stderr)
    return configs


def measure_ms_per_megapixel(config: Mapping[str, Any], repeats: int = 3) -> tuple[float, float]:
    """Milliseconds per megapixel of ``deblur_image`` on a random 1280x720 frame (random
    weights, the default runtime and tiling), and the share of the matmul rate it reaches."""
    from bench.floor import matmul_gflops

    from realblur_gan.inference.tiling import deblur_image

    torch.manual_seed(0)
    net = _net(config, "cpu").eval()
    image = torch.rand(1, 3, *FRAME)
    deblur_image(net, image)  # warm-up: export, kernel choice
    times, ratios = [], []
    gflop = gflop_per_megapixel(config) * FRAME[0] * FRAME[1] / 1e6
    for _ in range(repeats):
        floor = matmul_gflops()
        start = time.perf_counter()
        deblur_image(net, image)
        seconds = time.perf_counter() - start
        floor = (floor + matmul_gflops()) / 2
        times.append(seconds)
        ratios.append(gflop / seconds / floor)
    return 1000 * statistics.median(times) / (FRAME[0] * FRAME[1] / 1e6), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-configs", type=Path, default=ROOT / "conf" / "model")
    parser.add_argument("--scores", type=Path, default=None, help="JSON {config: score}")
    parser.add_argument("--score-name", default="generalisation", help="the score's column")
    parser.add_argument("--time", action="store_true", help="also time each net on this CPU")
    parser.add_argument("--configs", default=None, help="comma list of rows (default: all)")
    args = parser.parse_args()
    from realblur_gan.threads import use_available_cpus

    use_available_cpus()
    scores = json.loads(args.scores.read_text()) if args.scores else None
    head = "| config | generator | params (M) | GFLOP / MP | GMAC @ 1920×1200 |"
    rule = "|---|---|---:|---:|---:|"
    if scores is not None:
        head, rule = head + f" {args.score_name} |", rule + "---:|"
    if args.time:
        head, rule = head + " ms / MP (this CPU) | ÷ matmul |", rule + "---:|---:|"
    print(f"DBGAN generators; FLOPs counted on a {FRAME[1]}×{FRAME[0]} frame\n")
    print(head)
    print(rule)
    chosen = args.configs.split(",") if args.configs else None
    for name, config in shipped_configs(args.model_configs).items():
        if chosen is not None and name not in chosen:
            continue
        per_mp = gflop_per_megapixel(config)
        row = (
            f"| {name} | {str(config['_target_']).rsplit('.', 1)[-1]} | "
            f"{parameter_count(config) / 1e6:.2f} | {per_mp:.0f} | {per_mp / 2 * 2.304:.0f} |"
        )
        if scores is not None:
            row += f" {scores.get(name, '–')} |"
        if args.time:
            ms, ratio = measure_ms_per_megapixel(config)
            row += f" {ms:.0f} | {100 * ratio:.0f} % |"
        print(row, flush=True)
    for label, params, per_mp in ANCHORS:
        extra = " |" * ((scores is not None) + 2 * args.time)
        print(
            f"| {label} | NAFNet | {params:.2f} | {per_mp:.0f} | {per_mp / 2 * 2.304:.0f} |{extra}"
        )


if __name__ == "__main__":
    main()
