"""Metrics: known PSNR/SSIM values, BT.601 luma, border crop, shift-tolerant scoring."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from realblur_gan.evaluation.metrics import (
    PSNR_CAP_DB,
    best_shift,
    crop_border,
    psnr,
    psnr_at_shifts,
    rgb_to_y,
    shift_grid,
    shift_overlap,
    shift_tolerant,
    ssim,
    ssim_at_shifts,
)


def smooth_image(b: int = 1, c: int = 3, h: int = 48, w: int = 64, seed: int = 0) -> torch.Tensor:
    """Random but image-like content (so a shift changes the score smoothly)."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, c, h // 8, w // 8, generator=gen)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def test_psnr_of_known_noise_level(device: torch.device) -> None:
    gen = torch.Generator().manual_seed(0)
    target = torch.full((2, 3, 128, 128), 0.5)
    noisy = target + 0.1 * torch.randn(target.shape, generator=gen)
    value = psnr(noisy.to(device), target.to(device))
    assert value.shape == (2,)
    # MSE = σ² = 0.01 -> 10 log10(1 / 0.01) = 20 dB.
    assert torch.allclose(value.cpu(), torch.full((2,), 20.0), atol=0.1)


def test_psnr_identical_is_capped_and_ssim_identical_is_one(device: torch.device) -> None:
    x = smooth_image(b=2).to(device)
    # Capped, not inf: a mean over images stays finite and still counts the perfect one.
    assert psnr(x, x).tolist() == [PSNR_CAP_DB, PSNR_CAP_DB] and PSNR_CAP_DB == 100.0
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert torch.isfinite(torch.stack([psnr(x, x), psnr(noisy, x)]).mean())
    assert float(psnr(noisy, x).max()) < PSNR_CAP_DB
    assert torch.allclose(ssim(x, x).cpu(), torch.ones(2), atol=1e-5)
    assert (ssim(x, 1 - x) < 0.5).all()


def test_rgb_to_y_studio_and_full_swing() -> None:
    x = torch.zeros(2, 3, 4, 4)
    x[1] = 1.0
    y = rgb_to_y(x)
    assert y.shape == (2, 1, 4, 4)
    assert torch.allclose(y[0], torch.full_like(y[0], 16 / 255), atol=1e-6)
    assert torch.allclose(y[1], torch.full_like(y[1], 235 / 255), atol=1e-4)
    assert torch.allclose(rgb_to_y(x, studio_swing=False)[1], torch.ones(1, 4, 4), atol=1e-6)
    gray = torch.rand(1, 1, 4, 4)
    assert rgb_to_y(gray) is gray
    with pytest.raises(ValueError, match="rgb_to_y"):
        rgb_to_y(torch.rand(1, 2, 4, 4))


def test_crop_border() -> None:
    x = torch.rand(1, 3, 10, 12)
    assert crop_border(x, 0) is x
    assert torch.equal(crop_border(x, 2), x[..., 2:8, 2:10])
    with pytest.raises(ValueError, match="cannot crop"):
        crop_border(x, 5)


def test_shift_tolerant_finds_injected_shift() -> None:
    target = smooth_image(h=64, w=64)
    # The restoration came out 2 px lower and 1 px left of the reference.
    pred = torch.roll(target, shifts=(2, -1), dims=(2, 3))
    plain = psnr(pred, target)
    assert float(plain) < 35
    assert shift_tolerant(psnr, pred, target, max_shift=2).tolist() == [PSNR_CAP_DB]
    assert float(shift_tolerant(psnr, pred, target, max_shift=1)) < 40
    assert best_shift(psnr, pred, target, 2).tolist() == [[2, -1]]
    assert float(shift_tolerant(ssim, pred, target, max_shift=2)) == pytest.approx(1.0, abs=1e-5)


def test_shift_tolerant_zero_shift_is_plain_metric_and_lower_is_better() -> None:
    pred, target = smooth_image(b=2, seed=1), smooth_image(b=2, seed=2)
    assert torch.allclose(shift_tolerant(psnr, pred, target, 0), psnr(pred, target))
    mse = lambda p, t: (p - t).pow(2).flatten(1).mean(1)  # noqa: E731
    best = shift_tolerant(mse, pred, target, 2, higher_is_better=False)
    assert (best <= mse(pred, target)).all()


def test_shift_overlap_shapes_and_errors() -> None:
    x = torch.rand(1, 1, 10, 12)
    p, t = shift_overlap(x, x, -2, 3)
    assert p.shape == t.shape == (1, 1, 8, 9)
    with pytest.raises(ValueError, match="no overlap"):
        shift_tolerant(psnr, x, x, 10)
    with pytest.raises(ValueError, match="differ"):
        shift_tolerant(psnr, x, x[..., :-1], 1)


@pytest.mark.parametrize(
    ("b", "c", "h", "w", "k"),
    [(2, 3, 64, 80, 3), (1, 1, 57, 49, 5), (1, 3, 26, 30, 2)],
    ids=["rgb_batch", "gray_odd_size", "small_no_interior"],
)
def test_all_shifts_at_once_equal_the_loop_over_shifts(
    b: int, c: int, h: int, w: int, k: int, device: torch.device
) -> None:
    """PSNR and SSIM of every shift, vectorised, against one call per shift on its overlap.

    The SSIM one splits each overlap into an interior and a frame (the small case falls back
    to one shift at a time); both must agree with kornia's SSIM of each cropped pair.
    """
    target = smooth_image(b=b, c=c, h=h, w=w, seed=3)
    gen = torch.Generator().manual_seed(4)
    pred = (target + 0.05 * torch.randn(target.shape, generator=gen)).clamp(0, 1)
    pred = torch.roll(pred, shifts=(1, -2), dims=(2, 3)).to(device)
    target = target.to(device)
    shifts = shift_grid(k)
    assert shifts[0] == (-k, -k) and shifts[1] == (-k, -k + 1) and len(shifts) == (2 * k + 1) ** 2
    for metric, at_shifts, atol in ((psnr, psnr_at_shifts, 1e-4), (ssim, ssim_at_shifts, 1e-5)):
        loop = torch.stack([metric(*shift_overlap(pred, target, dy, dx)) for dy, dx in shifts], 1)
        fast = at_shifts(pred, target, k)
        assert fast.shape == (b, len(shifts))
        torch.testing.assert_close(fast, loop, atol=atol, rtol=0)
        assert torch.equal(fast.argmax(1), loop.argmax(1))
    # The public entry points take the vectorised path for psnr and ssim.
    assert best_shift(psnr, pred, target, k).tolist() == [[1, -2]] * b
    torch.testing.assert_close(
        shift_tolerant(ssim, pred, target, k),
        torch.stack([ssim(*shift_overlap(pred, target, dy, dx)) for dy, dx in shifts], 1).amax(1),
        atol=1e-5,
        rtol=0,
    )


def test_identical_images_at_all_shifts() -> None:
    x = smooth_image(h=48, w=48)
    scores = psnr_at_shifts(x, x, 2)
    assert float(scores[0, len(scores[0]) // 2]) == PSNR_CAP_DB  # no shift: capped, not inf
    assert torch.isfinite(scores).all() and float(scores.max()) == PSNR_CAP_DB
    assert float(ssim_at_shifts(x, x, 2)[0, 12]) == pytest.approx(1.0, abs=1e-5)
