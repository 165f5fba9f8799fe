"""The DBGAN stage against a plain PyTorch supervised loop: same net, loss, optimiser, data.

Both start from the same initial weights, see the same batches in the same order, use the same
content terms, optimiser, LR schedule and EMA, and are scored on the same validation pairs. The
stage is built by ``train.build_stage`` (what a training run builds); the plain loop is written
out here with nothing from Lightning. With the adversarial weight at 0 the two must agree; at the
default weight the gap is the price of the GAN term.

    python scripts/bench_supervised.py --steps 300                     # demo data
    python scripts/bench_supervised.py --steps 600 --adv-weights 0,default,0.01 \\
        data=gopro_frames data.frames_dir=../shared/data/gopro_frames
    python scripts/bench_supervised.py --json parity.json model=nafnet

Trailing arguments are Hydra overrides of ``conf/train.yaml`` (+ ``scheme=separate``). DBGAN
trains on synthetic pairs here (no BGAN), which isolates the GAN stage's own training.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from realblur_gan.nets.padding import forward_padded
from realblur_gan.training.config import CONFIG_DIR
from realblur_gan.training.objective import GANObjective
from realblur_gan.training.runner import build_stage, stage_optim_config, stage_trainer_config
from realblur_gan.training.validation import RestorationMetrics


def compose_config(overrides: list[str], out_dir: Path) -> DictConfig:
    """The training config of DBGAN alone on synthetic pairs (``+scheme=dbgan``)."""
    args = ["+scheme=dbgan", "logger=none", "trainer.enable_progress_bar=false", *overrides]
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=args)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
        # Outside @hydra.main there is no hydra:runtime; the CLI's default is ./data.
        cfg.paths.data_dir = os.environ.get("REALBLUR_GAN_DATA", str(Path.cwd() / "data"))
    return cfg


def plan(n_batches: int, steps: int) -> tuple[int, int]:
    """(batches per epoch, epochs) giving about ``steps`` batches in whole epochs."""
    per_epoch = min(steps, n_batches)
    return per_epoch, math.ceil(steps / per_epoch)


@torch.no_grad()
def validate(net: torch.nn.Module, loader: Any) -> dict[str, float]:
    """Mean PSNR/SSIM of ``net`` (clamped to [0, 1]) and of the blurry input."""
    # The metric object validation logs, on images padded to the net's stride as there.
    net.eval()
    metrics = RestorationMetrics()
    for batch in loader:
        metrics.update(forward_padded(net, batch["blur"]), batch["blur"], batch["sharp"])
    return {k: float(v) for k, v in metrics.compute().items()}


def run_stage(cfg: DictConfig, datamodule: Any, steps: int) -> tuple[dict[str, float], Any]:
    """Train the DBGAN stage as ``python -m realblur_gan`` would, for ``steps`` batches."""
    L.seed_everything(cfg.seed, workers=True)
    module = build_stage(cfg, "dbgan")
    init = copy.deepcopy(module.dbgan_g.state_dict())
    datamodule.setup("fit")
    per_epoch, epochs = plan(len(datamodule.train_dataloader()), steps)
    # The stage's trainer settings by the run's own precedence rule.
    trainer_cfg = stage_trainer_config(cfg, "dbgan")
    with open_dict(trainer_cfg):
        trainer_cfg.max_epochs = epochs
        trainer_cfg.limit_train_batches = per_epoch
        trainer_cfg.check_val_every_n_epoch = 10**6  # scored below, once, like the plain loop
    trainer = instantiate(
        trainer_cfg, logger=False, enable_checkpointing=False, default_root_dir=cfg.paths.output_dir
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule)
    seconds = time.perf_counter() - start
    scores = validate(module.deblurrer, datamodule.val_dataloader())
    scores["psnr_raw"] = validate(module.dbgan_g, datamodule.val_dataloader())["psnr"]
    scores["seconds"] = seconds
    scores["batches"] = per_epoch * epochs
    return scores, init


def run_plain(
    cfg: DictConfig,
    datamodule: Any,
    steps: int,
    init: dict[str, torch.Tensor],
) -> dict[str, float]:
    """The same training in a bare PyTorch loop: content terms only, no discriminator."""
    L.seed_everything(cfg.seed, workers=True)
    net = instantiate(cfg.model.dbgan_g)
    net.load_state_dict(init)
    objective: GANObjective = instantiate(cfg.loss.dbgan)
    optim_cfg = stage_optim_config(cfg, "dbgan")
    optimizer = instantiate(optim_cfg.generator)(net.parameters())
    loader = datamodule.train_dataloader()
    per_epoch, epochs = plan(len(loader), steps)
    scheduler = None
    if optim_cfg.get("scheduler") is not None:
        scheduler = instantiate(optim_cfg.scheduler)(optimizer, total_steps=per_epoch * epochs)
    decay = optim_cfg.get("ema_decay")
    ema = copy.deepcopy(net).requires_grad_(False) if decay else None
    start = time.perf_counter()
    for epoch in range(epochs):
        loader.sampler.set_epoch(epoch)
        net.train()
        for i, batch in enumerate(loader):
            if i == per_epoch:
                break
            restored = net(batch["blur_syn"])
            loss = sum(
                w * objective.terms[k](restored, batch["sharp"])
                for k, w in objective.weights.items()
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip = optim_cfg.get("gradient_clip_val")
            if clip:
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if ema is not None:
                with torch.no_grad():
                    for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
                        p_ema.lerp_(p, 1.0 - decay)
    seconds = time.perf_counter() - start
    scores = validate(ema if ema is not None else net, datamodule.val_dataloader())
    scores["psnr_raw"] = validate(net, datamodule.val_dataloader())["psnr"]
    scores["seconds"] = seconds
    scores["batches"] = per_epoch * epochs
    return scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training batches (whole epochs)")
    parser.add_argument(
        "--adv-weights",
        default="0,default",
        help="DBGAN adversarial weights to run, comma-separated; 'default' is the config's; "
        "empty: the plain loop alone",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="outputs/bench_supervised", help="scratch run dir")
    parser.add_argument("--json", default=None, help="also write the results here")
    args, overrides = parser.parse_known_args(argv)
    torch.set_num_threads(args.threads)

    base = compose_config(overrides, Path(args.out))
    datamodule = instantiate(base.data)
    datamodule.prepare_data()
    rows: list[tuple[str, dict[str, float]]] = []
    init = None
    if not args.adv_weights:  # plain loop only (tuning): the stage just supplies the init
        L.seed_everything(base.seed, workers=True)
        init = copy.deepcopy(build_stage(base, "dbgan").dbgan_g.state_dict())
        datamodule.setup("fit")
    for weight in filter(None, args.adv_weights.split(",")):
        cfg = copy.deepcopy(base)
        if weight != "default":
            with open_dict(cfg):
                cfg.loss.dbgan.adv_weight = float(weight)
        label = f"DBGAN stage, adv weight {cfg.loss.dbgan.adv_weight:g}"
        scores, init = run_stage(cfg, datamodule, args.steps)
        rows.append((label, scores))
        print(f"{label}: {scores['psnr']:.3f} dB ({scores['seconds']:.0f} s)", flush=True)
    plain = run_plain(base, datamodule, args.steps, init)
    rows.append(("plain PyTorch loop (content terms only)", plain))

    ref = plain["psnr"]
    print(
        f"\n{int(plain['batches'])} batches; net {base.model.dbgan_g._target_}; "
        f"loss terms {sorted(base.loss.dbgan.terms)}; overrides {overrides}\n"
    )
    print("| run | PSNR (EMA) | vs plain | PSNR (raw G) | SSIM | input PSNR / SSIM | s |")
    print("|---|---|---|---|---|---|---|")
    for label, s in rows:
        print(
            f"| {label} | {s['psnr']:.3f} | {s['psnr'] - ref:+.3f} | {s['psnr_raw']:.3f} | "
            f"{s['ssim']:.4f} | {s['psnr_input']:.3f} / {s['ssim_input']:.4f} | "
            f"{s['seconds']:.0f} |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps({"overrides": overrides, "rows": dict(rows)}, indent=1)
        )


if __name__ == "__main__":
    sys.exit(main())
