"""The data side of a training step: is the model ever waiting for its batches?

For a data config (the demo, or ``data=folders`` over a folder of large photos generated here),
the DeblurGAN stage trains a few batches through its real ``Trainer`` on its real datamodule
(loader workers, synthetic blur, crops, caching as configured). Two numbers per config:

- ``wait``: the time between one training step's end and the next one's start (the loader
  handing over the next batch, and Lightning's loop), as a share of a step plus that wait;
- ``data CPU``: the CPU time of making one batch, timed alone in this process on one thread
  (``num_workers=0``), as a share of the step: in the first epoch (decoded-photo caches filling)
  and in the later ones. On a machine whose cores the training threads already use, loader
  workers take that time from the step even when nothing waits.

The Trainer runs after the loader's two epochs, with the caches as a long run has them.

The target: both at most 15 % of a step.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import open_dict

from realblur_gan.training.config import validate_config
from realblur_gan.training.runner import check_stage_trainers

from .floor import matmul_gflops
from .stages import build_module, compose_config, stage_trainer
from .steps import Budget, Notes, StepTimer, stats_ms

STAGE, SCHEME = "dbgan", "separate"


@dataclass(frozen=True)
class FeedCase:
    """A data config to feed the DeblurGAN stage from."""

    name: str
    overrides: tuple[str, ...]


def large_photos(root: Path, count: int = 24, size: tuple[int, int] = (3000, 4000)) -> Path:
    """``count`` sharp and ``count // 4`` blurry JPEG photos of ``size`` (H, W) under ``root``
    (made once; the demo's scene generator, upscaled), as a user's photo folders would be:
    enough for a few batches of the folders config's batch size in one epoch."""
    from PIL import Image, ImageFilter

    from realblur_gan.data.demo import make_scene

    done = root / f"photos_{count}_{size[0]}x{size[1]}" / "DONE"
    if not done.exists():
        for sub in ("sharp", "real"):
            (done.parent / sub).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            photo = make_scene(700 + i, 1000).resize(size[::-1], Image.BICUBIC)
            photo.save(done.parent / "sharp" / f"{i:03d}.jpg", quality=92)
        for i in range(count // 4):
            blurry = make_scene(800 + i, 1000).resize(size[::-1], Image.BICUBIC)
            blurry.filter(ImageFilter.GaussianBlur(4)).save(
                done.parent / "real" / f"{i:03d}.jpg", quality=92
            )
        done.touch()
    return done.parent


def feed_cases(cache: Path, quick: bool = False) -> list[FeedCase]:
    """The demo config as shipped, and ``data=folders`` over large photos at its defaults
    (``quick``: 480x640 photos)."""
    size = (480, 640) if quick else (3000, 4000)
    photos = large_photos(cache, size=size)
    return [
        FeedCase("demo", (f"paths.data_dir={cache}",)),
        FeedCase(
            f"folders, {size[1]}x{size[0]} JPEGs",
            (
                "data=folders",
                f"data.sharp_dir={photos / 'sharp'}",
                f"data.real_blur_dir={photos / 'real'}",
            ),
        ),
    ]


def _loader_cpu_s(datamodule: Any) -> tuple[float, float]:
    """CPU seconds to make one training batch in this process, on one thread, no workers: in
    the first epoch (caches filling) and in the second (caches full, as in every later one)."""
    workers, threads = datamodule.num_workers, torch.get_num_threads()
    datamodule.num_workers = 0
    torch.set_num_threads(1)
    per_epoch = []
    try:
        for _ in range(2):
            start, count = time.process_time(), 0
            for _ in datamodule.train_dataloader():
                count += 1
            per_epoch.append((time.process_time() - start) / max(count, 1))
    finally:
        datamodule.num_workers = workers
        torch.set_num_threads(threads)
    return per_epoch[0], per_epoch[1]


def time_feed(case: FeedCase, budget: Budget, notes: Notes, batches: int = 4) -> dict[str, Any]:
    """Train ``batches`` steps (after ``budget.warmup``) on ``case``'s data; the result row."""
    row: dict[str, Any] = {"part": "feed", "data": case.name, "stage": STAGE}
    with tempfile.TemporaryDirectory() as tmp, notes.quiet():
        root = Path(tmp)
        overrides = ["logger=none", *budget.overrides, *case.overrides]
        cfg = compose_config(SCHEME, overrides)
        with open_dict(cfg):
            cfg.paths.output_dir = str(root)
            if not any(o.startswith("paths.data_dir=") for o in overrides):
                cfg.paths.data_dir = str(root / "data")
            cfg.stages[STAGE].init_from = {}  # no earlier stage ran: initial weights cost the same
        validate_config(cfg)
        check_stage_trainers(cfg, [STAGE])
        row |= {"crop": int(cfg.data.crop_size), "batch": int(cfg.data.batch_size)}
        row["workers"] = int(cfg.data.get("num_workers", 0))
        try:
            datamodule = instantiate(cfg.data)
            datamodule.prepare_data()
            datamodule.setup("fit")
            module = build_module(cfg, STAGE)
            if hasattr(datamodule, "synthetic_pairs"):  # as a training run sets it
                datamodule.synthetic_pairs = getattr(module, "reads_synthetic_pairs", True)
            first_epoch, later = _loader_cpu_s(datamodule)
            row["data_cpu_first_epoch_ms"] = 1000 * first_epoch
            row["data_cpu_ms"] = 1000 * later
            timer = StepTimer(budget.device)
            trainer = stage_trainer(
                cfg,
                STAGE,
                budget.device,
                train_batches=budget.warmup + batches,
                val_batches=0,
                callbacks=[timer],
                root=root,
            )
            floor = matmul_gflops(budget.device)
            trainer.fit(module, train_dataloaders=datamodule.train_dataloader())
            row["matmul_gflops"] = (floor + matmul_gflops(budget.device)) / 2
            first = budget.warmup
            row.update(stats_ms(timer.step_s[first:]))
            row["wait_ms"] = stats_ms(timer.gap_s[max(first - 1, 0) :])["ms"]
            row["wait_share"] = row["wait_ms"] / (row["ms"] + row["wait_ms"])
            row["data_cpu_share"] = row["data_cpu_ms"] / row["ms"]
        except Exception as err:  # the case failed, not the benchmark
            row["error"] = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
    return row
