"""Which DBGAN generator learns to deblur fastest per CPU-second, on content it never trained on.

Issue 22 asks for "a generator whose receptive field covers that blur (deeper U-Net, NAFNet,
multi-scale, or a coarse-to-fine pass at inference: measure which)". On a CPU the question that
decides is what each net gains in the same wall time, not after the same number of steps. This
script trains every arm from scratch on exactly the same batches (made once, before any timing,
and cycled if an arm outruns them), with the packaged recipe's content terms (PSNR loss, FFT
amplitude at 0.05; multi-scale nets get the pyramid loss as in training), AdamW at the
recipe's rate, clipped gradient norms, a 50-step warm-up and a cosine decay over the *time*
budget, and then scores each on whole images of a tuning folder (``blur/`` + ``sharp/``):
mean PSNR gain over the blurry input, the worst image, for the raw weights and their EMA.

    python scripts/bench_arch.py --minutes 14 --val-dir tune/ \\
        +experiment=packaged data_root=$DATA 'data.sharp_dir=[...]'

Trailing arguments are Hydra overrides of ``conf/train.yaml``; the data section (sharp photos,
synthetic camera, real pairs) is what the arms train on. Keep the tuning folder's photos out of
``data.sharp_dir``. The arms (``--arms``):

- ``unet``: the packaged model's scale net alone (U-Net width 24, depth 4: 16x downsampling);
- ``unet_deep``: the same U-Net, depth 6 (64x downsampling: a 4x larger receptive field);
- ``srn``: the packaged model (that U-Net shared by three scales, 1/4, 1/2, 1);
- ``nafnet``: ``conf/model/nafnet.yaml``'s NAFNet.

Every arm keeps its input's channel means (``keep_mean``), as the packaged model does.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from torch import Tensor, nn

from realblur_gan.data.datamodule import match_pairs
from realblur_gan.data.datasets import read_pair
from realblur_gan.errors import UserError
from realblur_gan.evaluation.metrics import psnr
from realblur_gan.export import export_safetensors
from realblur_gan.nets.padding import forward_padded
from realblur_gan.training.config import CONFIG_DIR
from realblur_gan.training.objective import GANObjective


def _unet_config(depth: int) -> dict[str, Any]:
    return {
        "_target_": "realblur_gan.nets.UNet",
        "width": 24,
        "depth": depth,
        "global_residual": True,
        "keep_mean": True,
        "decoder_slope": 0.2,
    }


# Each arm as the ``_target_`` config a weight file records (``--save``). Every arm keeps its
# input's channel means (``keep_mean``), so that none wins or loses by tone.
ARM_CONFIGS: dict[str, dict[str, Any]] = {
    "unet": _unet_config(4),
    "unet_deep": _unet_config(6),
    "srn": {
        "_target_": "realblur_gan.nets.MultiScaleGenerator",
        "num_scales": 3,
        "share_weights": True,
        "scale_net": {**_unet_config(4), "_partial_": True},
    },
    # conf/model/nafnet.yaml's net.
    "nafnet": {
        "_target_": "realblur_gan.nets.NAFNet",
        "width": 16,
        "enc_blocks": [1, 1, 2],
        "middle_blocks": 2,
        "dec_blocks": [1, 1, 1],
        "global_residual": True,
        "keep_mean": True,
    },
}
ARMS: dict[str, Callable[[], nn.Module]] = {
    name: functools.partial(instantiate, config) for name, config in ARM_CONFIGS.items()
}


def compose_config(overrides: list[str]) -> DictConfig:
    """The training config the arms take their data, loss and optimiser from."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["logger=none", *overrides])
    with open_dict(cfg):
        cfg.paths.data_dir = os.environ.get("REALBLUR_GAN_DATA", str(Path.cwd() / "data"))
    return cfg


def make_batches(cfg: DictConfig, n: int) -> list[tuple[Tensor, Tensor]]:
    """``n`` training batches (blurry, sharp) in float16, made once so every arm sees them."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    batches: list[tuple[Tensor, Tensor]] = []
    epoch = 0
    while len(batches) < n:
        loader = datamodule.train_dataloader()
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            batches.append((batch["blur_syn"].half(), batch["sharp"].half()))
            if len(batches) == n:
                break
        epoch += 1
    return batches


def load_pairs(val_dir: Path) -> list[tuple[str, Tensor, Tensor, float]]:
    """Every pair of ``val_dir/blur`` and ``val_dir/sharp``: (name, blurry, sharp, input PSNR).

    Raises:
        UserError: No pairs, a file without its twin or an unreadable image (one line).

    Shape:
        - blurry, sharp: :math:`(1, 3, H, W)`
    """
    pairs = []
    for pair in match_pairs(val_dir):
        blur, sharp = (t.unsqueeze(0) for t in read_pair(pair, channels=3))
        name = Path(pair.name).with_suffix("").as_posix()
        pairs.append((name, blur, sharp, float(psnr(blur, sharp))))
    return pairs


@torch.no_grad()
def score(net: nn.Module, pairs: list[tuple[str, Tensor, Tensor, float]]) -> dict[str, Any]:
    """Mean PSNR gain over the blurry input on whole images, and the worst image's."""
    net.eval()
    gains = {}
    for name, blur, sharp, input_psnr in pairs:
        out = forward_padded(net, blur).clamp(0, 1)
        gains[name] = float(psnr(out, sharp)) - input_psnr
    worst = min(gains, key=gains.get)
    return {
        "gain": sum(gains.values()) / len(gains),
        "worst": gains[worst],
        "worst_image": worst,
        "per_image": gains,
    }


def lr_factor(step: int, elapsed: float, budget: float, warmup: int, floor: float) -> float:
    """Linear warm-up over steps, then a cosine decay over the *time* budget to ``floor``."""
    warm = min(1.0, (step + 1) / warmup)
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / budget)))
    return warm * (floor + (1 - floor) * cos)


def train_arm(
    net: nn.Module,
    batches: list[tuple[Tensor, Tensor]],
    objective: GANObjective,
    cfg: DictConfig,
    seconds: float,
    ema_decay: float,
) -> tuple[nn.Module, nn.Module, int]:
    """Train ``net`` for ``seconds`` of wall time; return it, its EMA and the steps taken."""
    optimizer = instantiate(cfg.optim.generator)(net.parameters())
    base_lr = [g["lr"] for g in optimizer.param_groups]
    clip = cfg.optim.get("gradient_clip_val") or 0.0
    ema = copy.deepcopy(net).requires_grad_(False)
    net.train()
    step, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        factor = lr_factor(step, elapsed, seconds, warmup=50, floor=0.01)
        for group, lr in zip(optimizer.param_groups, base_lr, strict=True):
            group["lr"] = lr * factor
        blur, sharp = (t.float() for t in batches[step % len(batches)])
        if hasattr(net, "forward_pyramid"):
            pyramid = net.forward_pyramid(blur)
            loss, _ = objective.g_loss(None, None, pyramid[-1], sharp, pyramid=pyramid)
        else:
            loss, _ = objective.g_loss(None, None, net(blur), sharp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        optimizer.step()
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), net.parameters(), strict=True):
                p_ema.lerp_(p, 1.0 - ema_decay)
        step += 1
    return net, ema, step


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default="unet,unet_deep,srn,nafnet", help="comma-separated")
    parser.add_argument("--minutes", type=float, default=14.0, help="training wall time per arm")
    parser.add_argument("--batches", type=int, default=900, help="batches made once and cycled")
    parser.add_argument("--val-dir", type=Path, required=True, help="tuning pairs: blur/, sharp/")
    parser.add_argument("--ema-decay", type=float, default=0.995)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--save",
        type=Path,
        default=None,
        help="write each arm's weights here as <arm>.safetensors and <arm>_ema.safetensors "
        "(realblur-deblur --checkpoint, bench_generalise.py --checkpoint)",
    )
    args, overrides = parser.parse_known_args(argv)
    torch.set_num_threads(args.threads)
    arms = args.arms.split(",")
    unknown = sorted(set(arms) - set(ARMS))
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {sorted(ARMS)}")

    cfg = compose_config(overrides)
    try:
        pairs = load_pairs(args.val_dir)
    except UserError as err:
        parser.error(str(err))
    t0 = time.perf_counter()
    batches = make_batches(cfg, args.batches)
    print(f"{len(batches)} batches made in {time.perf_counter() - t0:.0f} s", flush=True)
    objective: GANObjective = instantiate(cfg.loss.dbgan)
    objective.adv_weight = 0.0

    results: dict[str, dict[str, Any]] = {}
    for arm in arms:
        L.seed_everything(cfg.seed)
        net = ARMS[arm]()
        params = sum(p.numel() for p in net.parameters())
        net, ema, steps = train_arm(net, batches, objective, cfg, args.minutes * 60, args.ema_decay)
        raw, averaged = score(net, pairs), score(ema, pairs)
        results[arm] = {"params": params, "steps": steps, "raw": raw, "ema": averaged}
        if args.save:
            for name, weights in ((arm, net), (f"{arm}_ema", ema)):
                export_safetensors(weights, ARM_CONFIGS[arm], args.save, name)
        print(
            f"{arm}: {params / 1e6:.2f} M params, {steps} steps in {args.minutes:g} min; "
            f"gain raw {raw['gain']:+.3f} dB (worst {raw['worst']:+.2f}), "
            f"EMA {averaged['gain']:+.3f} (worst {averaged['worst']:+.2f})",
            flush=True,
        )
        if args.json:
            args.json.write_text(json.dumps({"overrides": overrides, "arms": results}, indent=1))

    print(f"\n{len(pairs)} tuning images, {args.minutes:g} min of training per arm\n")
    print("| arm | params (M) | steps | gain raw (worst) | gain EMA (worst) |")
    print("|---|---:|---:|---:|---:|")
    for arm, r in results.items():
        print(
            f"| {arm} | {r['params'] / 1e6:.2f} | {r['steps']} | "
            f"{r['raw']['gain']:+.3f} ({r['raw']['worst']:+.2f}) | "
            f"{r['ema']['gain']:+.3f} ({r['ema']['worst']:+.2f}) |"
        )


if __name__ == "__main__":
    sys.exit(main())
