"""The camera-pipeline blur: tone curves, saturation, white balance, mosaic, noise, switches."""

from __future__ import annotations

import inspect
import math
import textwrap

import kornia
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from realblur_gan.camera import (
    BAYER_PATTERNS,
    TONE_CURVES,
    CameraPipelineBlur,
    convolve,
    demosaic_bilinear,
    from_linear,
    jpeg_compress,
    mosaic,
    to_linear,
)

# Every step off: what is left is the tone curve around a linear-light convolution.
BARE = {
    "saturation_factor": None,
    "wb_red": None,
    "wb_blue": None,
    "mosaic": False,
    "noise_shot": None,
    "noise_read": None,
    "jpeg_quality": None,
}


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def smooth_image(b: int, c: int, h: int, w: int, seed: int = 0, cells: int = 6) -> torch.Tensor:
    """Low-frequency random colours: what a bilinear demosaic should reproduce almost exactly."""
    coarse = torch.rand(b, c, cells, cells, generator=seeded(seed))
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True).clamp(0, 1)


def bright_spots(b: int = 2, size: int = 48) -> torch.Tensor:
    """A mid-gray scene with clipped (1.0) squares: the highlights a camera saturates."""
    x = torch.full((b, 3, size, size), 0.3)
    x[..., 10:18, 10:18] = 1.0
    x[..., 28:34, 30:38] = 1.0
    return x


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / F.mse_loss(a, b).item())


@pytest.mark.parametrize("curve", TONE_CURVES)
def test_tone_curves_invert_and_are_monotone(curve: str) -> None:
    y = torch.linspace(0, 1, 1001)
    lin = to_linear(y, curve)
    assert lin[0] == 0 and abs(lin[-1].item() - 1) < 1e-6
    assert (lin.diff() >= -1e-7).all() and lin[500] < 0.5  # darker mid-tones in linear light
    torch.testing.assert_close(from_linear(lin, curve), y, atol=2e-4, rtol=0)


def test_camera_curve_is_an_s_curve_over_gamma() -> None:
    x = torch.tensor([0.05, 0.9])
    gamma_only, camera = from_linear(x, "gamma"), from_linear(x, "camera")
    assert camera[0] < gamma_only[0] and camera[1] > gamma_only[1]  # more contrast
    with pytest.raises(ValueError, match="tone curve"):
        to_linear(x, "log")


@pytest.mark.parametrize("curve", TONE_CURVES)
def test_output_shape_range_and_kernels(curve: str, device: torch.device) -> None:
    camera = CameraPipelineBlur(kernel_size=(5, 15), tone_curve=curve, jpeg_quality=(70, 95))
    x = torch.rand(3, 3, 24, 20, device=device)
    out, kernels = camera.sample(x, generator=seeded())
    assert out.shape == x.shape and out.dtype == torch.float32 and out.device == x.device
    assert out.min() >= 0 and out.max() <= 1
    assert kernels.shape[0] == 3 and (kernels >= 0).all()
    torch.testing.assert_close(kernels.sum(dim=(-2, -1)), torch.ones(3), atol=1e-5, rtol=0)
    assert camera(x[0], generator=seeded()).shape == x[0].shape


def test_deterministic_per_generator_and_leaves_the_sharp_image_alone() -> None:
    camera = CameraPipelineBlur(kernel_size=(5, 15), jpeg_quality=(80, 95))
    x = torch.rand(2, 3, 32, 32)
    before = x.clone()
    a = camera(x, generator=seeded(1))
    b = camera(x, generator=seeded(1))
    c = camera(x, generator=seeded(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, before)  # the sharp target stays the plain sRGB image


@pytest.mark.parametrize("curve", ["srgb", "gamma", "camera"])
def test_all_steps_off_is_plain_linear_blur(curve: str) -> None:
    camera = CameraPipelineBlur(kernel_size=(7, 13), tone_curve=curve, **BARE)
    x = torch.rand(2, 3, 20, 24)
    out, kernels = camera.sample(x, generator=seeded())
    expected = from_linear(convolve(to_linear(x, curve), kernels), curve)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    # Unit white-balance gains and a unit saturation factor are the same no-ops.
    unit = CameraPipelineBlur(
        kernel_size=(7, 13),
        tone_curve=curve,
        **{**BARE, "wb_red": 1.0, "wb_blue": 1.0, "saturation_factor": 1.0},
    )
    torch.testing.assert_close(unit(x, generator=seeded()), out, atol=1e-6, rtol=0)


def test_linear_input_and_blur_switch() -> None:
    x = torch.rand(2, 3, 16, 16)
    raw = CameraPipelineBlur(kernel_size=9, tone_curve=None, **BARE)
    out, kernels = raw.sample(x, generator=seeded())
    torch.testing.assert_close(out, convolve(x, kernels).clamp(0, 1), atol=1e-6, rtol=0)
    still = CameraPipelineBlur(kernel_size=9, blur=False, **BARE)
    out, kernels = still.sample(x, generator=seeded())
    torch.testing.assert_close(out, x, atol=2e-4, rtol=0)  # only the tone-curve round trip
    assert kernels.shape == (2, 1, 1) and torch.equal(kernels, torch.ones(2, 1, 1))


@pytest.mark.parametrize(
    "step",
    [
        {"saturation_factor": (2.0, 3.0)},
        {"mosaic": True},
        {"noise_shot": 1e-3},
        {"noise_read": 2e-3},
        {"jpeg_quality": 60},
        {"tone_curve": "gamma"},
    ],
    ids=["saturation", "mosaic", "shot", "read", "jpeg", "tone-curve"],
)
def test_each_step_changes_the_output_when_on(step: dict) -> None:
    x = bright_spots()
    x[..., ::3, :] *= 0.8  # fine stripes: something for the mosaic to lose
    base = {"kernel_size": 9, "tone_curve": "srgb", **BARE}
    off = CameraPipelineBlur(**base)(x, generator=seeded())
    on = CameraPipelineBlur(**{**base, **step})(x, generator=seeded())
    assert (on - off).abs().max() > 1e-3


def test_switching_a_step_off_keeps_the_other_draws() -> None:
    """Parameters are drawn whatever the switches say: kernels and noise stay the same."""
    x = torch.rand(2, 3, 24, 24) * 0.9
    noisy = {"kernel_size": (5, 11), "saturation_factor": (2.0, 3.0)}
    a, ka = CameraPipelineBlur(**noisy, jpeg_quality=None).sample(x, seeded())
    b, kb = CameraPipelineBlur(**noisy, jpeg_quality=75).sample(x, seeded())
    assert torch.equal(ka, kb)
    assert torch.equal(b, jpeg_compress(a, 75))  # same noise field, JPEG on top
    # No pixel reaches the saturation threshold: the boost is a no-op, bit for bit.
    c = CameraPipelineBlur(**{**noisy, "saturation_factor": None})(x, seeded())
    assert torch.equal(a, c)


def test_saturation_makes_clipped_plateaus() -> None:
    x = bright_spots()
    base = {"kernel_size": 15, "intensity": 0.8, "tone_curve": "camera", **BARE}
    plain = CameraPipelineBlur(**base)(x, generator=seeded())
    hot = CameraPipelineBlur(**{**base, "saturation_factor": (3.0, 4.0)})(x, generator=seeded())
    at_white = (plain >= 1 - 1e-6).sum().item(), (hot >= 1 - 1e-6).sum().item()
    assert at_white[1] > 2 * max(at_white[0], 1)
    # The boost only spreads energy from the highlights: everything else gets brighter or stays.
    assert (hot >= plain - 1e-6).all()
    # Highlights below the threshold are not boosted.
    dim = CameraPipelineBlur(**{**base, "saturation_factor": 3.0, "saturation_threshold": 0.99})
    plain_dim = CameraPipelineBlur(**base)(x * 0.95, generator=seeded())
    assert torch.equal(dim(x * 0.95, generator=seeded()), plain_dim)


def test_mosaic_demosaic_round_trip_is_accurate() -> None:
    x = smooth_image(2, 3, 64, 80)
    for pattern in BAYER_PATTERNS:
        raw = mosaic(x, pattern)
        assert raw.shape == (2, 1, 64, 80)
        assert psnr(demosaic_bilinear(raw, pattern), x) > 35
    # Each photosite records the colour its pattern names, read row by row from the top left.
    planes = torch.arange(3.0).view(1, 3, 1, 1).expand(1, 3, 4, 6)
    for pattern in BAYER_PATTERNS:
        cell = mosaic(planes, pattern)[0, 0, :2, :2].flatten().tolist()
        assert cell == ["RGB".index(c) for c in pattern]
        assert torch.equal(
            mosaic(planes, pattern)[..., 2:, 2:], mosaic(planes, pattern)[..., :2, :4]
        )
    # Flat colour survives exactly, borders included.
    flat = torch.tensor([0.2, 0.5, 0.7]).view(1, 3, 1, 1).expand(1, 3, 7, 9)
    torch.testing.assert_close(demosaic_bilinear(mosaic(flat)), flat, atol=1e-6, rtol=0)


def test_kornia_srgb_curve_is_the_srgb_standard() -> None:
    """The "srgb" curve is kornia's; it must be the piecewise IEC 61966-2-1 curve, any shape."""
    y = torch.linspace(0, 1, 4097, dtype=torch.float64)
    to_lin = torch.where(y <= 0.04045, y / 12.92, ((y + 0.055) / 1.055) ** 2.4)
    to_srgb = torch.where(y <= 0.0031308, 12.92 * y, 1.055 * y ** (1 / 2.4) - 0.055)
    torch.testing.assert_close(to_linear(y, "srgb"), to_lin, atol=1e-12, rtol=0)
    torch.testing.assert_close(from_linear(y, "srgb"), to_srgb, atol=1e-12, rtol=0)
    rgb = torch.rand(2, 3, 5, 7)
    for curve in (to_linear, from_linear):  # gray images get the same per-value curve
        assert torch.equal(curve(rgb, "srgb")[:, :1], curve(rgb[:, :1], "srgb"))


def test_demosaic_agrees_with_kornia() -> None:
    """Our bilinear demosaic is kornia's raw_to_rgb (even sizes), extended to any size."""
    raw = torch.rand(2, 1, 16, 20)
    for pattern, cfa in zip(BAYER_PATTERNS, ("BG", "RG", "GB", "GR"), strict=True):
        theirs = kornia.color.raw_to_rgb(raw, kornia.color.CFA[cfa])
        torch.testing.assert_close(demosaic_bilinear(raw, pattern), theirs, atol=1e-6, rtol=0)
        assert torch.equal(mosaic(theirs, pattern), raw)  # and the mosaic keeps the RAW samples
    assert demosaic_bilinear(torch.rand(1, 1, 7, 9)).shape == (1, 3, 7, 9)


def test_pipeline_with_mosaic_keeps_smooth_images() -> None:
    x = smooth_image(2, 3, 48, 48, cells=4)
    camera = CameraPipelineBlur(kernel_size=9, blur=False, **{**BARE, "mosaic": True})
    assert psnr(camera(x, generator=seeded()), x) > 35


def test_noise_variance_grows_with_signal() -> None:
    levels = torch.tensor([0.05, 0.3, 0.6]).view(3, 1, 1, 1)
    flat = levels.expand(3, 3, 96, 96).contiguous()
    for use_mosaic in (False, True):
        camera = CameraPipelineBlur(
            kernel_size=9,
            blur=False,
            tone_curve=None,
            **{**BARE, "mosaic": use_mosaic, "noise_shot": 4e-3, "noise_read": 2e-3},
        )
        out = camera(flat, generator=seeded())
        var = out.var(dim=(1, 2, 3))
        assert (var.diff() > 0).all(), var
        if not use_mosaic:  # white noise: variance is shot * x + read^2
            expected = 4e-3 * levels.flatten() + 2e-3**2
            torch.testing.assert_close(var, expected, rtol=0.1, atol=0)


def test_white_balance_amplifies_red_and_blue_noise() -> None:
    flat = torch.full((1, 3, 96, 96), 0.3)
    kw = {"kernel_size": 9, "blur": False, "tone_curve": None, **BARE, "noise_read": 1e-2}
    out = CameraPipelineBlur(**{**kw, "wb_red": 2.0, "wb_blue": 3.0})(flat, generator=seeded())
    std = out.std(dim=(0, 2, 3))
    torch.testing.assert_close(std / std[1], torch.tensor([2.0, 1.0, 3.0]), rtol=0.1, atol=0)
    torch.testing.assert_close(out.mean(dim=(0, 2, 3)), torch.full((3,), 0.3), atol=2e-3, rtol=0)
    plain = CameraPipelineBlur(**kw)(flat, generator=seeded())
    unit = CameraPipelineBlur(**{**kw, "wb_red": 1.0, "wb_blue": 1.0})(flat, generator=seeded())
    assert torch.equal(plain, unit)


def test_gray_images_skip_mosaic_and_white_balance() -> None:
    x = torch.rand(2, 1, 24, 24)
    full = CameraPipelineBlur(kernel_size=(5, 9), jpeg_quality=90)
    out = full(x, generator=seeded())
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    no_colour = CameraPipelineBlur(
        kernel_size=(5, 9), jpeg_quality=90, mosaic=False, wb_red=None, wb_blue=None
    )
    assert torch.equal(no_colour(x, generator=seeded()), out)
    assert full(x[0], generator=seeded()).shape == (1, 24, 24)
    assert full(torch.rand(3, 1, 5), generator=seeded()).shape == (3, 1, 5)  # too small: no mosaic


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="tone_curve"):
        CameraPipelineBlur(tone_curve="linear")
    with pytest.raises(ValueError, match="saturation_factor"):
        CameraPipelineBlur(saturation_factor=(0.5, 2.0))
    with pytest.raises(ValueError, match="wb_red"):
        CameraPipelineBlur(wb_red=None)
    with pytest.raises(ValueError, match="bayer_pattern"):
        CameraPipelineBlur(bayer_pattern="RGBG")
    with pytest.raises(ValueError, match="jpeg"):
        CameraPipelineBlur(jpeg_quality=(90, 120))


def test_instantiates_from_the_documented_hydra_snippet() -> None:
    doc = inspect.getdoc(CameraPipelineBlur) or ""
    snippet = doc.split("synthetic_blur:\n", 1)[1].split("\n\n", 1)[0]
    cfg = OmegaConf.create(textwrap.dedent(snippet))
    camera = instantiate(cfg)
    assert isinstance(camera, CameraPipelineBlur)
    assert camera.kernel_size == (9, 33) and camera.jpeg_quality == (80, 95)
    assert camera(torch.rand(3, 32, 32), generator=seeded()).shape == (3, 32, 32)
    assert "CameraPipelineBlur(kernel_size=(9, 33)" in repr(camera)
