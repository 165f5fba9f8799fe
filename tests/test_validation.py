"""Validation: the metric object's means, and whole images of any size through the nets."""

from __future__ import annotations

import logging
import math

import lightning as L
import pytest
import torch
from conftest import build_module
from torch.utils.data import DataLoader, Dataset

from realblur_gan.evaluation.metrics import PSNR_CAP_DB, psnr, ssim
from realblur_gan.nets.padding import forward_padded
from realblur_gan.training.validation import RestorationMetrics, validation_lpips


def batches(sizes: tuple[int, ...], seed: int = 0) -> list[tuple[torch.Tensor, ...]]:
    """(restored, blur, sharp) batches of the given sizes, 3 x 20 x 24 images."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for n in sizes:
        sharp = torch.rand(n, 3, 20, 24, generator=gen)
        blur = (sharp + 0.2 * torch.randn(sharp.shape, generator=gen)).clamp(0, 1)
        restored = sharp + 0.05 * torch.randn(sharp.shape, generator=gen)  # a little out of range
        out.append((restored, blur, sharp))
    return out


def test_means_equal_the_per_image_metrics_over_all_images():
    data = batches((3, 1, 2))
    scores = RestorationMetrics()
    for restored, blur, sharp in data:
        scores.update(restored, blur, sharp)
    restored, blur, sharp = (torch.cat(x) for x in zip(*data, strict=True))
    got = scores.compute()
    assert set(got) == {"psnr", "ssim", "psnr_input", "ssim_input", "images"}
    assert float(got["images"]) == 6  # what the means are over: the summary reports it
    expected = {
        "psnr": psnr(restored.clamp(0, 1), sharp).mean(),
        "ssim": ssim(restored.clamp(0, 1), sharp).mean(),
        "psnr_input": psnr(blur, sharp).mean(),
        "ssim_input": ssim(blur, sharp).mean(),
    }
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, msg=name)


def test_perfect_restoration_keeps_the_mean_finite():
    (_, blur, sharp), (r2, b2, s2) = batches((2, 2))
    scores = RestorationMetrics()
    scores.update(sharp, blur, sharp)  # identical images: PSNR capped, not inf
    scores.update(r2, b2, s2)
    value = float(scores.compute()["psnr"])
    assert math.isfinite(value)
    assert value == pytest.approx((2 * PSNR_CAP_DB + float(psnr(r2.clamp(0, 1), s2).sum())) / 4)


def test_lpips_is_a_per_image_mean_and_reset_starts_over():
    class MeanAbs(torch.nn.Module):
        def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return (pred - target).abs().mean()

    data = batches((3, 1))
    scores = RestorationMetrics(lpips=MeanAbs())
    assert scores.state_dict() == {}  # nothing of it goes into checkpoints
    for restored, blur, sharp in data:
        scores.update(restored, blur, sharp)
    per_batch = [float((r.clamp(0, 1) - s).abs().mean()) for r, _, s in data]
    assert float(scores.compute()["lpips"]) == pytest.approx((3 * per_batch[0] + per_batch[1]) / 4)
    scores.reset()
    scores.update(*data[1])
    assert float(scores.compute()["lpips"]) == pytest.approx(per_batch[1])


def test_validation_lpips_off_or_without_weights_is_none(tmp_path, monkeypatch, caplog):
    assert validation_lpips(False) is None
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty_hub"))
    with caplog.at_level(logging.INFO, logger="realblur_gan.training.validation"):
        assert validation_lpips(True) is None
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["val/lpips not logged"]


class OddPairs(Dataset):
    """Validation pairs of a size no stride divides (37 x 53)."""

    def __init__(self, n: int = 3) -> None:
        gen = torch.Generator().manual_seed(0)
        self.sharp = [torch.rand(3, 37, 53, generator=gen) for _ in range(n)]
        self.blur = [s.roll(1, -1) for s in self.sharp]

    def __len__(self) -> int:
        return len(self.sharp)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | str]:
        return {"blur": self.blur[i], "sharp": self.sharp[i], "name": f"{i}.png"}


def validate(module: L.LightningModule) -> dict[str, float]:
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (metrics,) = trainer.validate(module, DataLoader(OddPairs(), batch_size=2), verbose=False)
    return metrics


def test_deblurring_validation_on_sizes_off_the_stride(tiny_config):
    # Strides 4 (DBGAN) and 1 (the shake BGAN, in the panel): 4 divides neither 37 nor 53.
    cfg = tiny_config("joint", "model.dbgan_g.depth=2", "optim.ema_decay=null")
    module = build_module(cfg, "joint")
    module.val_lpips = False
    assert (module.dbgan_g.stride, module.bgan_g.stride) == (4, 1)
    metrics = validate(module)
    assert set(metrics) == {
        "val/psnr",
        "val/ssim",
        "val/psnr_input",
        "val/ssim_input",
        "val/images",
    }
    assert all(math.isfinite(v) for v in metrics.values())
    assert metrics["val/images"] == 3  # two batches, 2 + 1 images
    # Every image counted once, at its full size.
    data = OddPairs()
    blur, sharp = torch.stack(data.blur), torch.stack(data.sharp)
    with torch.no_grad():
        restored = forward_padded(module.dbgan_g.eval(), blur).clamp(0, 1)
    assert metrics["val/psnr"] == pytest.approx(float(psnr(restored, sharp).mean()), abs=1e-4)
    assert metrics["val/psnr_input"] == pytest.approx(float(psnr(blur, sharp).mean()), abs=1e-4)


def test_blur_validation_on_sizes_off_the_stride(tiny_config):
    module = build_module(tiny_config("separate"), "pretrain_bgan")
    metrics = validate(module)
    assert list(metrics) == ["val/bgan_psnr_vs_real_blur"]
    assert math.isfinite(metrics["val/bgan_psnr_vs_real_blur"])


def test_forward_padded_crops_back_and_changes_nothing_on_multiples():
    from realblur_gan.nets import UNet

    net = UNet(width=4, depth=2).eval()
    x = torch.rand(1, 3, 37, 53)
    assert forward_padded(net, x).shape == x.shape
    y = torch.rand(1, 3, 32, 48)
    torch.testing.assert_close(forward_padded(net, y), net(y), rtol=0, atol=0)
