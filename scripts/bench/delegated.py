"""The parts measured by the sibling scripts, run with this command's sizes and repeats:
inference (``bench_predict.py``), blur synthesis (``bench_blur.py``) and the training
dataloader (``bench_data.py``)."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from .machine import reset_peak_memory

SCRIPTS = Path(__file__).resolve().parents[1]
if str(SCRIPTS) not in sys.path:  # the sibling scripts are modules of that folder
    sys.path.insert(0, str(SCRIPTS))

import bench_blur  # noqa: E402
import bench_data  # noqa: E402
import bench_predict  # noqa: E402

# --quick: a small image whole and a 720p one tiled; else the path before and the default now.
QUICK_INFER = [
    bench_predict.Case("640×360 whole", height=360, width=640, tile=None),
    bench_predict.Case("1280×720 256 px tiles", tile=256),
]
FULL_INFER = ["before", "default"]


def run_infer(quick: bool, repeats: int, device: torch.device) -> list[dict[str, Any]]:
    """``deblur_image`` against the matmul floor (``bench_predict.run_case``), in this process."""
    cases = {c.name: c for c in bench_predict.CASES}
    rows = []
    for case in QUICK_INFER if quick else [cases[n] for n in FULL_INFER]:
        reset_peak_memory(torch.device("cpu"))
        result = bench_predict.run_case(case, repeats, device.type, None)
        rows.append(
            {
                "part": "infer",
                "case": case.name,
                "image": f"{case.width}×{case.height}",
                "path": bench_predict.describe(case),
                "ms_per_mp": result["ms"] / (case.height * case.width / 1e6),
                "repeats": repeats,
                **result,
            }
        )
    return rows


def run_blur(quick: bool, repeats: int, warmup: int) -> list[dict[str, Any]]:
    """``RealisticBlur``'s full pipeline on one 1280x720 RGB image, on the CPU."""
    kernel_size = 33 if quick else 65
    image = bench_blur.photo_like(720, 1280)
    gen = torch.Generator().manual_seed(0)
    pipeline = bench_blur.realistic_blur(kernel_size)
    ms = bench_blur.median_ms(lambda: pipeline(image, gen), repeats, warmup=warmup)
    operation = f"RealisticBlur full pipeline, {kernel_size}-px kernel, 1280×720"
    return [{"part": "blur", "operation": operation, "ms": ms, "repeats": repeats}]


def run_data(quick: bool, crop: int, batch: int) -> list[dict[str, Any]]:
    """Images/s of the ``conf/data/folders.yaml`` datamodule with 0 and 2 workers."""
    sharp, real, source = bench_data.data_folders(SimpleNamespace(sharp=None, real=None, crop=crop))
    dm = bench_data.build_datamodule(sharp, real, crop, batch, None)
    batches, epochs, warmup = (3, 1, 0) if quick else (8, 2, 1)
    rows = []
    for workers in [0] if quick else [0, 2]:
        torch.manual_seed(0)
        rates = bench_data.bench(dm, workers, epochs, warmup, batches)
        rows.append(
            {
                "part": "data",
                "source": source,
                "workers": workers,
                "crop": crop,
                "batch": batch,
                "batches_per_epoch": batches,
                "images_per_s": statistics.median(rates),
                "min": min(rates),
                "max": max(rates),
            }
        )
    return rows
