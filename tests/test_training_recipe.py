"""The DBGAN training recipe: restoration losses, per-batch schedule, stage vs a plain loop."""

from __future__ import annotations

import itertools
import json
import math

import lightning as L
import pytest
import torch
from conftest import build_module, load_script, quiet_trainer
from hydra.utils import instantiate

from realblur_gan.evaluation.metrics import psnr
from realblur_gan.training.losses import FFTAmplitudeLoss, PSNRLoss
from realblur_gan.training.schedules import warmup_cosine


def test_psnr_loss_is_minus_the_psnr_metric():
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(3, 3, 16, 16, generator=gen)
    pred = (target + 0.05 * torch.randn(3, 3, 16, 16, generator=gen)).clamp(0, 1)
    loss = PSNRLoss()(pred, target)
    torch.testing.assert_close(loss, -psnr(pred, target).mean(), atol=1e-4, rtol=0)


def test_psnr_loss_gradient_does_not_fade_with_the_error():
    # MSE's gradient shrinks with the error; PSNR loss's grows as the error shrinks.
    target = torch.zeros(1, 1, 8, 8)
    grads = []
    for err in (0.1, 0.01):
        pred = torch.full_like(target, err, requires_grad=True)
        PSNRLoss()(pred, target).backward()
        grads.append(pred.grad.abs().mean().item())
    assert grads[1] == pytest.approx(grads[0] * 10, rel=1e-3)


def test_fft_amplitude_loss_sees_lost_detail_but_not_a_shift():
    gen = torch.Generator().manual_seed(1)
    sharp = torch.rand(1, 1, 32, 32, generator=gen)
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, stride=1, padding=1, count_include_pad=False)
    shifted = torch.roll(sharp, shifts=(3, 5), dims=(2, 3))  # circular: same amplitudes
    loss = FFTAmplitudeLoss()
    assert loss(shifted, sharp) < 1e-5
    assert loss(blurred, sharp) > 0.01
    pred = blurred.clone().requires_grad_(True)
    loss(pred, sharp).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_warmup_cosine_ramps_then_decays_to_the_floor():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = warmup_cosine(opt, total_steps=100, warmup_steps=10, start=0.0, floor=0.1)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 0.0
    assert lrs[5] == pytest.approx(0.5)
    assert lrs[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))
    assert lrs[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 89 / 90)))


def _fit_dbgan(
    cfg, epochs: int, callbacks: list[L.Callback] | None = None
) -> tuple[L.LightningModule, L.Trainer]:
    """The DBGAN stage of ``cfg`` trained for ``epochs`` x 2 batches, nothing written."""
    module = build_module(cfg, "dbgan")  # no earlier stage: BGAN is untrained here
    trainer = quiet_trainer(
        max_epochs=epochs, limit_train_batches=2, limit_val_batches=0, callbacks=callbacks
    )
    trainer.fit(module, datamodule=instantiate(cfg.data))
    return module, trainer


def test_per_batch_schedule_steps_every_batch(tiny_config):
    cfg = tiny_config("separate", "optim=adamw", "optim.scheduler.warmup_steps=0")
    module, _ = _fit_dbgan(cfg, epochs=2)
    assert module.lr_schedulers()[0].last_epoch == 4  # 2 epochs x 2 batches


def test_zero_adversarial_weight_skips_the_discriminator(tiny_config):
    cfg = tiny_config("separate", "loss.dbgan.adv_weight=0")
    calls = []
    before: list[torch.Tensor] = []

    class Spy(L.Callback):
        def on_fit_start(self, trainer, module):
            module.dbgan_d.register_forward_hook(lambda *_: calls.append(1))
            before.extend(p.clone() for p in module.dbgan_d.parameters())

    module, trainer = _fit_dbgan(cfg, epochs=1, callbacks=[Spy()])
    assert calls == []
    assert all(torch.equal(a, b) for a, b in zip(before, module.dbgan_d.parameters(), strict=True))
    assert "train/dbgan/g_adv" not in trainer.callback_metrics
    assert "train/dbgan/g_content" in trainer.callback_metrics


@pytest.fixture(scope="module")
def parity():
    return load_script("bench_supervised")


def test_dbgan_stage_without_adversary_equals_a_plain_loop(
    parity, tmp_path, demo_cache, monkeypatch
):
    """The GAN stage adds nothing hidden: at adv weight 0 it is the plain supervised loop."""
    from conftest import TINY

    monkeypatch.setenv("REALBLUR_GAN_DATA", str(demo_cache))
    out = tmp_path / "parity.json"
    overrides = [o for o in TINY if "limit_train_batches" not in o]
    parity.main(
        [
            "--steps",
            "4",
            "--adv-weights",
            "0",
            "--threads",
            "1",
            "--out",
            str(tmp_path / "run"),
            "--json",
            str(out),
            *overrides,
        ]
    )
    rows = json.loads(out.read_text())["rows"]
    stage, plain = (
        rows["DBGAN stage, adv weight 0"],
        rows["plain PyTorch loop (content terms only)"],
    )
    assert stage["batches"] == plain["batches"] >= 4  # whole epochs of 3 batches: 6
    assert stage["psnr"] == pytest.approx(plain["psnr"], abs=1e-3)
    assert stage["psnr_raw"] == pytest.approx(plain["psnr_raw"], abs=1e-3)
