"""Time DBGAN inference (``realblur_gan.inference.deblur_image``) and measure its peak memory.

The generator is the default DBGAN config (``conf/model/default.yaml``: U-Net, width 24,
depth 3) with random weights: the time does not depend on the weights. Each case runs in its own
process so that its peak resident memory (RSS, which includes the ~0.5 GB of the imported
libraries) is its own. Prints a markdown table of milliseconds per megapixel (median after one
warm-up) and peak RSS; the last case adds the 8-pass self-ensemble (``--self-ensemble``).

Usage::

    python scripts/bench_predict.py [--repeats 3] [--threads N] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
# (label, height, width, tile or None, self-ensemble)
CASES = [
    ("1280×720", 720, 1280, None, False),
    ("1280×720", 720, 1280, 512, False),
    ("3840×2160", 2160, 3840, 512, False),
    ("1280×720", 720, 1280, 512, True),
]


def run_case(
    height: int, width: int, tile: int | None, ensemble: bool, repeats: int, device: str
) -> dict:
    """Time one case in this process; returns ms/MP and the peak RSS."""
    from hydra.utils import instantiate

    from realblur_gan.inference import deblur_image, pick_device
    from realblur_gan.net_configs import read_net_config

    config = read_net_config(ROOT / "conf" / "model" / "default.yaml", "dbgan_g")
    net = instantiate(config).eval().to(pick_device(device))
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, height, width, generator=gen)
    times = []
    for i in range(repeats + 1):
        start = time.perf_counter()
        deblur_image(net, image, tile=tile, overlap=32, self_ensemble=ensemble)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if i > 0:  # the first run pays for oneDNN/cuDNN kernel selection
            times.append(time.perf_counter() - start)
    megapixels = height * width / 1e6
    # ru_maxrss is in KiB on Linux.
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    return {"ms_per_mp": 1000 * statistics.median(times) / megapixels, "peak_rss_gb": peak_gb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--case", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.case is not None:
        _, h, w, tile, ensemble = CASES[args.case]
        print(json.dumps(run_case(h, w, tile, ensemble, args.repeats, args.device)))
        return
    print(f"default DBGAN (U-Net w24 d3), device {args.device}, {args.threads} threads\n")
    print("| image | tiling | ms / MP | peak RSS (GB) |")
    print("|---|---|---:|---:|")
    for index, (label, _, _, tile, ensemble) in enumerate(CASES):
        command = [sys.executable, __file__, "--case", str(index)]
        command += ["--repeats", str(args.repeats), "--threads", str(args.threads)]
        command += ["--device", args.device]
        result = json.loads(subprocess.run(command, check=True, capture_output=True).stdout)
        tiling = f"{tile} px tiles, overlap 32" if tile else "whole image"
        tiling += ", self-ensemble ×8" if ensemble else ""
        print(f"| {label} | {tiling} | {result['ms_per_mp']:.0f} | {result['peak_rss_gb']:.2f} |")


if __name__ == "__main__":
    main()
