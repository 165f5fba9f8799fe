"""Throughput of the training dataloader (images/s), as configured by ``conf/data/folders.yaml``.

Reads sharp photos and real blurry photos (default: ``../shared/data/natural`` and
``../shared/data/real_blur``; generated demo images when those are absent), makes the synthetic
pairs on the fly with the config's ``synthetic_blur``, and times whole loader epochs (or their
first ``--batches`` batches) for each worker count. The first ``--warmup`` epochs (worker start,
file cache) are dropped; the table shows the median and range over the rest.

Example::

    python scripts/bench_data.py --workers 0 2 --crop 256 --batch 4 --epochs 4
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from realblur_gan.data.demo import ensure_demo
from realblur_gan.training.config import CONFIG_DIR

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_folders(args: argparse.Namespace) -> tuple[Path, Path, str]:
    """``(sharp_dir, real_blur_dir, label)``: the given or shared photos, else demo images."""
    if args.sharp is not None and args.real is not None:
        return args.sharp, args.real, f"{args.sharp.name} + {args.real.name}"
    if (SHARED / "natural").is_dir() and (SHARED / "real_blur").is_dir():
        return SHARED / "natural", SHARED / "real_blur", "shared natural + real_blur"
    # Demo scenes large enough for the crop, so padding does not flatter the numbers.
    size = max(args.crop + 64, 320)
    root = ensure_demo(
        Path(tempfile.gettempdir()) / "realblur_bench", n_sharp=96, n_real=24, n_val=2,
        image_size=size,
    )  # fmt: skip
    return root / "sharp", root / "real_blur", f"generated demo {size}px"


def build_datamodule(
    sharp: Path, real: Path, crop: int, batch: int, resize: int | None
) -> L.LightningDataModule:
    """The ``conf/data/folders.yaml`` datamodule over ``sharp`` and ``real``, set up."""
    overrides = [
        "data=folders",
        f"data.sharp_dir={sharp}",
        f"data.real_blur_dir={real}",
        f"data.crop_size={crop}",
        f"data.batch_size={batch}",
        f"data.resize={'null' if resize is None else resize}",
        "data.val_fraction=0.01",
    ]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    dm = instantiate(cfg.data)
    dm.setup()
    return dm


def bench(dm, workers: int, epochs: int, warmup: int, max_batches: int | None) -> list[float]:
    """Images/s of each measured epoch of ``dm``'s training loader with ``workers`` workers."""
    dm.num_workers = workers
    loader = dm.train_dataloader()
    rates = []
    for epoch in range(warmup + epochs):
        images = 0
        start = time.perf_counter()
        for i, batch in enumerate(loader):
            images += batch["sharp"].shape[0]
            if max_batches is not None and i + 1 >= max_batches:
                break
        elapsed = time.perf_counter() - start
        if epoch >= warmup:
            rates.append(images / elapsed)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--resize", type=int, default=None, help="shorter side before the crop")
    parser.add_argument("--epochs", type=int, default=3, help="measured epochs")
    parser.add_argument("--warmup", type=int, default=1, help="epochs dropped first")
    parser.add_argument("--batches", type=int, default=None, help="batches per epoch (all)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads of the main process (default)"
    )
    parser.add_argument("--sharp", type=Path, default=None)
    parser.add_argument("--real", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.threads is not None:
        # With workers=0 the items are made in the main process, with its intra-op threads; on
        # a small shared CPU those threads can cost more than they bring (workers use one).
        torch.set_num_threads(args.threads)
    sharp, real, label = data_folders(args)
    dm = build_datamodule(sharp, real, args.crop, args.batch, args.resize)
    n = len(dm.train_set)
    per_epoch = n // args.batch if args.batches is None else min(args.batches, n // args.batch)

    rows = []
    for workers in args.workers:
        torch.manual_seed(0)
        rates = bench(dm, workers, args.epochs, args.warmup, args.batches)
        rows.append((workers, statistics.median(rates), min(rates), max(rates)))

    resize = "" if args.resize is None else f", resize {args.resize}"
    print(
        f"\nTraining loader: {label} ({n} sharp, {len(dm.train_set.real_blur)} real), "
        f"crop {args.crop}{resize}, batch {args.batch}, {per_epoch} batches/epoch, "
        f"synthetic_blur {dm.synthetic_blur!r}, {os.cpu_count()} CPUs, main-process torch "
        f"threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}, "
        f"median of {args.epochs} epochs after {args.warmup} warm-up\n"
    )
    print("| workers | images/s (median) | min | max |")
    print("|---:|---:|---:|---:|")
    for workers, median, low, high in rows:
        print(f"| {workers} | {median:.1f} | {low:.1f} | {high:.1f} |")


if __name__ == "__main__":
    main()
